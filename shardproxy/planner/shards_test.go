package planner

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	"vitess.io/vitess/go/mysql"
	"vitess.io/vitess/go/sqltypes"
	querypb "vitess.io/vitess/go/vt/proto/query"
	"vitess.io/vitess/go/vt/sqlparser"

	"github.com/strata-db/strata/localdb"
	"github.com/strata-db/strata/shardproxy/engine"
	"github.com/strata-db/strata/shardproxy/planner/internal/difftest"
	"github.com/strata-db/strata/shardproxy/vschema"
)

// shardCursor is a VCursor over real backend connections, one per shard,
// for tests of the planner and engine before (and beside) the proxy server.
type shardCursor struct {
	conns map[string]*lockedConn
	mu    sync.Mutex
	sent  []engine.ShardQuery
}

type lockedConn struct {
	mu sync.Mutex
	c  *mysql.Conn
}

func (c *shardCursor) ExecuteShards(ctx context.Context, qs []engine.ShardQuery) ([]*sqltypes.Result, error) {
	c.mu.Lock()
	c.sent = append(c.sent, qs...)
	c.mu.Unlock()
	out := make([]*sqltypes.Result, len(qs))
	var g errgroup.Group
	for i, q := range qs {
		lc, ok := c.conns[q.Shard]
		if !ok {
			return nil, fmt.Errorf("no shard %q", q.Shard)
		}
		g.Go(func() error {
			lc.mu.Lock()
			defer lc.mu.Unlock()
			r, err := lc.c.ExecuteFetch(q.SQL, 1_000_000, true)
			out[i] = r
			return err
		})
	}
	return out, g.Wait()
}

func (c *shardCursor) takeSent() []engine.ShardQuery {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.sent
	c.sent = nil
	return s
}

// connect opens a backend connection as the application user.
func connect(t testing.TB, s *localdb.Server, db string) *mysql.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := mysql.Connect(ctx, &mysql.ConnParams{Host: "127.0.0.1", Port: s.Port, Uname: localdb.AppUser, DbName: db, Charset: 45})
	if err != nil {
		t.Fatalf("connect %s: %v", s.Name, err)
	}
	t.Cleanup(c.Close)
	return c
}

// testEnv is two shards behind the planner and engine, and a third server
// holding all rows, as one unsharded MariaDB would.
type testEnv struct {
	vs     *vschema.VSchema
	cursor *shardCursor
	single *mysql.Conn
	topo   *localdb.Topology
}

func startEnv(t testing.TB) *testEnv {
	t.Helper()
	return startEnvWith(t, difftest.Tables())
}

// startEnvWith is startEnv with another placement of the tables.
func startEnvWith(t testing.TB, tables []difftest.Table) *testEnv {
	t.Helper()
	topo := localdb.StartForTest(t, localdb.TestConfig(3, 0))
	shards := topo.Shards()
	ctx := context.Background()
	for _, sh := range shards {
		if err := sh.Primary().Exec(ctx, "CREATE DATABASE IF NOT EXISTS demo", "CREATE DATABASE IF NOT EXISTS test"); err != nil {
			t.Fatal(err)
		}
	}
	vs := diffVSchemaOf(tables, shards[0].Name, shards[1].Name)
	cur := &shardCursor{conns: map[string]*lockedConn{}}
	for _, sh := range shards[:2] {
		cur.conns[sh.Name] = &lockedConn{c: connect(t, sh.Primary(), "demo")}
	}
	return &testEnv{vs: vs, cursor: cur, single: connect(t, shards[2].Primary(), "demo"), topo: topo}
}

// diffVSchemaOf is the routing schema of the differential test.
func diffVSchemaOf(tables []difftest.Table, s0, s1 string) *vschema.VSchema {
	d := &vschema.Database{Name: "demo", Sharded: true, Tables: map[string]*vschema.Table{}}
	for _, tb := range tables {
		t := &vschema.Table{Name: tb.Name, Column: tb.Column, Type: vschema.KeyType(tb.Type), Func: vschema.ShardFunc(tb.Function)}
		switch tb.Kind {
		case "sharded":
			t.Kind = vschema.Sharded
		case "reference":
			t.Kind = vschema.Reference
		case "unsharded":
			t.Kind, t.Shard = vschema.Unsharded, s0
		}
		if t.Func == vschema.Range {
			t.Ranges = []vschema.RangeBound{{Shard: s0, Upper: difftest.RangeSplit}, {Shard: s1, Unbounded: true}}
		}
		if tb.SubTables > 0 {
			t.Sub = vschema.SubTables{By: vschema.SubHash, Count: tb.SubTables}
		}
		if tb.SubBy == "month" {
			from, _ := vschema.ParseMonth(tb.SubFrom)
			to, _ := vschema.ParseMonth(tb.SubTo)
			t.Sub = vschema.SubTables{By: vschema.SubMonth, Column: tb.SubColumn, From: from, To: to}
		}
		d.Tables[tb.Name] = t
	}
	vs := &vschema.VSchema{
		Shards:    []string{s0, s1},
		Databases: map[string]*vschema.Database{"demo": d, "test": {Name: "test", Shard: s0}},
	}
	if err := vs.Validate(); err != nil {
		panic(err)
	}
	return vs
}

// run plans and executes one statement through the planner and engine, as
// the proxy does: parse, normalize, Build, Execute. args are prepared
// statement parameters for the ? in sql.
func (e *testEnv) run(ctx context.Context, sql string, args ...any) (*sqltypes.Result, error) {
	return e.runWith(ctx, e.cursor, sql, args...)
}

// runWith is run through another VCursor.
func (e *testEnv) runWith(ctx context.Context, vc engine.VCursor, sql string, args ...any) (*sqltypes.Result, error) {
	stmt, known, err := sqlparser.NewTestParser().Parse2(sql)
	if err != nil {
		return nil, err
	}
	bv := map[string]*querypb.BindVariable{}
	for i, a := range args {
		if i, ok := a.(int); ok {
			a = int64(i)
		}
		v, err := sqltypes.BuildBindVariable(a)
		if err != nil {
			return nil, err
		}
		bv[fmt.Sprintf("v%d", i+1)] = v
	}
	res, err := sqlparser.Normalize(stmt, sqlparser.NewReservedVars("vtg", known), bv, true, "demo", -1, "", nil, nil, nil)
	if err != nil {
		return nil, err
	}
	p, err := Build(res.AST, e.vs, "demo")
	if err != nil {
		return nil, err
	}
	return p.Execute(engine.WithSQL(ctx, sql), vc, bv)
}

// runSingle runs sql (with args interpolated) on the unsharded server.
func (e *testEnv) runSingle(sql string, args ...any) (*sqltypes.Result, error) {
	return e.single.ExecuteFetch(interpolate(sql, args), 1_000_000, true)
}

func interpolate(sql string, args []any) string {
	if len(args) == 0 {
		return sql
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(sql); i++ {
		if sql[i] == '?' && n < len(args) {
			a := args[n]
			if i, ok := a.(int); ok {
				a = int64(i)
			}
			v, err := sqltypes.InterfaceToValue(a)
			if err != nil {
				panic(err)
			}
			switch x := args[n].(type) {
			case nil:
				b.WriteString("NULL")
			case float64:
				// A DOUBLE parameter is a DOUBLE: 1e0, not the integer 1.
				b.WriteString(strconv.FormatFloat(x, 'e', -1, 64))
			default:
				v.EncodeSQLStringBuilder(&b)
			}
			n++
			continue
		}
		b.WriteByte(sql[i])
	}
	return b.String()
}
