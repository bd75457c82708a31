package xa

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"vitess.io/vitess/go/mysql/sqlerror"

	"github.com/strata-db/strata/localdb"
	"github.com/strata-db/strata/txcoord"
	"github.com/strata-db/strata/txcoord/client"
)

// sqlErr turns the driver's error into the vitess error the package reads.
func sqlErr(err error) error {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return sqlerror.NewSQLError(sqlerror.ErrorCode(me.Number), string(me.SQLState[:]), me.Message)
	}
	return err
}

// dbConn is a Conn and a Querier over one database/sql connection.
type dbConn struct {
	c         *sql.Conn
	discarded bool
	mu        sync.Mutex
}

func openConn(t *testing.T, s *localdb.Server, db string) *dbConn {
	t.Helper()
	pool, err := s.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	c, err := pool.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return &dbConn{c: c}
}

func (d *dbConn) Exec(ctx context.Context, stmts ...string) error {
	for _, s := range stmts {
		if _, err := d.c.ExecContext(ctx, s); err != nil {
			return sqlErr(err)
		}
	}
	return nil
}

func (d *dbConn) Query(ctx context.Context, q string) ([][]string, error) {
	rows, err := d.c.QueryContext(ctx, q)
	if err != nil {
		return nil, sqlErr(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out [][]string
	for rows.Next() {
		vals := make([]sql.RawBytes, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		row := make([]string, len(cols))
		for i, v := range vals {
			row[i] = string(v)
		}
		out = append(out, row)
	}
	return out, rows.Err()
}

// Discard closes the connection itself (not back to a pool): the server
// sees the client go.
func (d *dbConn) Discard() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.discarded {
		return
	}
	d.discarded = true
	_ = d.c.Raw(func(any) error { return driver.ErrBadConn })
	d.c.Close()
}

func (d *dbConn) Close() error { d.Discard(); return nil }

// primaries is Primaries over a local topology.
type primaries struct {
	topo *localdb.Topology
}

func (p primaries) Shards() []string {
	var out []string
	for _, sh := range p.topo.Shards() {
		out = append(out, sh.Name)
	}
	return out
}

func (p primaries) Open(ctx context.Context, shard string) (Querier, error) {
	s := p.topo.Shard(shard).Primary()
	pool, err := s.OpenAdmin("")
	if err != nil {
		return nil, err
	}
	c, err := pool.Conn(ctx)
	if err != nil {
		pool.Close()
		return nil, err
	}
	return &poolConn{dbConn: dbConn{c: c}, pool: pool}, nil
}

type poolConn struct {
	dbConn
	pool *sql.DB
}

func (p *poolConn) Exec(ctx context.Context, q string) error { return p.dbConn.Exec(ctx, q) }
func (p *poolConn) Close() error                             { p.Discard(); return p.pool.Close() }

// env is two shards (with a replica each when replicas) and a coordinator.
type env struct {
	topo  *localdb.Topology
	coord *client.Client
	group *txcoord.TestGroup
}

func newEnv(t *testing.T, replicas int) *env {
	t.Helper()
	topo := localdb.StartForTest(t, localdb.TestConfig(2, replicas))
	ctx := context.Background()
	for _, sh := range topo.Shards() {
		if err := sh.Primary().Exec(ctx, "CREATE DATABASE IF NOT EXISTS bank", "CREATE TABLE bank.t (id INT PRIMARY KEY, v INT NOT NULL)"); err != nil {
			t.Fatal(err)
		}
	}
	g := txcoord.NewXATestGroup(t, 1)
	cfg := client.DefaultConfig()
	cfg.Addrs, cfg.Owner = g.GRPCAddrs(), "test"
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &env{topo: topo, coord: c, group: g}
}

// begin opens a branch on every shard under txid and inserts (id, v) on
// each shard listed in writes.
func (e *env) begin(t *testing.T, txid uint64, writes map[string]int) []Branch {
	t.Helper()
	var out []Branch
	for _, sh := range e.topo.Shards() {
		c := openConn(t, sh.Primary(), "bank")
		x := XID{TxID: txid, Shard: sh.Name}
		if err := c.Exec(context.Background(), x.Start()); err != nil {
			t.Fatal(err)
		}
		b := Branch{Shard: sh.Name, Conn: c}
		if id, ok := writes[sh.Name]; ok {
			if err := c.Exec(context.Background(), fmt.Sprintf("INSERT INTO t VALUES (%d, %d)", id, txid)); err != nil {
				t.Fatal(err)
			}
			b.Wrote = true
		} else if _, err := c.Query(context.Background(), "SELECT COUNT(*) FROM t"); err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func (e *env) rows(t *testing.T, s *localdb.Server, id int) int {
	t.Helper()
	n, err := s.QueryString(context.Background(), fmt.Sprintf("SELECT COUNT(*) FROM bank.t WHERE id = %d", id))
	if err != nil {
		t.Fatal(err)
	}
	return map[string]int{"0": 0, "1": 1}[n]
}

// prepared lists our prepared XIDs on s.
func prepared(t *testing.T, s *localdb.Server) []XID {
	t.Helper()
	pool, err := s.OpenAdmin("")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	c, err := pool.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	d := &dbConn{c: c}
	defer d.Discard()
	rows, err := d.Query(context.Background(), "XA RECOVER")
	if err != nil {
		t.Fatal(err)
	}
	var out []XID
	for _, r := range rows {
		if x, ok := ParseRecovered(r[0], r[1], r[2], r[3]); ok {
			out = append(out, x)
		}
	}
	return out
}

func waitFor(t *testing.T, what string, timeout time.Duration, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
