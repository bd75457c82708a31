package shardproxy_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"vitess.io/vitess/go/sqltypes"

	"github.com/strata-db/strata/idserver"
	"github.com/strata-db/strata/idserver/client"
	"github.com/strata-db/strata/localdb"
	"github.com/strata-db/strata/raftstore"
	"github.com/strata-db/strata/shardproxy/config"
	"github.com/strata-db/strata/shardproxy/proxytest"
	"github.com/strata-db/strata/shardproxy/vschema"
)

// startIDNode starts a real one-node ID service (Raft on disk, gRPC on a
// free port), as `strata up` does; stop (or the test's end) stops it.
func startIDNode(t *testing.T) (n *idserver.Node, stop func()) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := idserver.DefaultConfig()
	svc.Logger = log
	rc := raftstore.DefaultConfig()
	rc.NodeID, rc.DataDir, rc.BindAddr, rc.Bootstrap, rc.Logger = "id1", t.TempDir(), "127.0.0.1:0", true, log
	n, err := idserver.StartNode(idserver.NodeConfig{Service: svc, Raft: rc, HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			if err := n.Close(); err != nil {
				t.Errorf("ID service node: close: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return n, stop
}

// withKeygen adds database keygen to a test proxy's config, with the ID
// service at addrs: items (hash), ranged (range: keys below 6 on the first
// shard), notes and memos (sharing the sequence "shared"), plain.
func withKeygen(topo *localdb.Topology, addrs []string, timeout time.Duration) func(*config.Config) {
	six := int64(6)
	return func(c *config.Config) {
		c.IDService.Addrs = addrs
		if timeout > 0 {
			c.IDService.Timeout = timeout
		}
		c.Databases["keygen"] = &config.Database{Sharded: true, Tables: map[string]*config.Table{
			"items": {Kind: "sharded", Column: "id"},
			"ranged": {Kind: "sharded", Column: "id", Function: "range", Ranges: []config.Range{
				{Shard: topo.Shards()[0].Name, Upper: &six}, {Shard: topo.Shards()[1].Name},
			}},
			"notes": {Kind: "sharded", Column: "id", Sequence: "shared"},
			"memos": {Kind: "sharded", Column: "id", Sequence: "shared"},
			"plain": {Kind: "sharded", Column: "id"},
		}}
	}
}

// recreate drops and creates keygen tables through the proxy (the tests
// share the servers; each test's ID service starts its sequences at 1).
func recreate(t *testing.T, db *sql.DB, tables ...string) {
	t.Helper()
	for _, tb := range tables {
		proxytest.MustExec(t, db, "DROP TABLE IF EXISTS "+tb)
		proxytest.MustExec(t, db, "CREATE TABLE "+tb+" (id BIGINT PRIMARY KEY, name VARCHAR(40) NOT NULL)")
	}
}

// placed is a row as found on a shard's server.
type placed struct {
	id    int64
	shard string
}

// rowsOnShards reads table from every shard's primary directly: name ->
// where the row is. A name on two shards, or twice, fails the test.
func rowsOnShards(t *testing.T, topo *localdb.Topology, table string) map[string]placed {
	t.Helper()
	out := map[string]placed{}
	for _, sh := range topo.Shards() {
		db, err := sh.Primary().Open("keygen")
		if err != nil {
			t.Fatal(err)
		}
		rows, err := db.Query("SELECT id, name FROM " + table)
		if err != nil {
			db.Close()
			t.Fatalf("%s on %s: %v", table, sh.Name, err)
		}
		for rows.Next() {
			var id int64
			var name string
			if err := rows.Scan(&id, &name); err != nil {
				t.Fatal(err)
			}
			if prev, dup := out[name]; dup {
				t.Fatalf("%s: row %s twice: id %d on %s and id %d on %s", table, name, prev.id, prev.shard, id, sh.Name)
			}
			out[name] = placed{id: id, shard: sh.Name}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
		db.Close()
	}
	return out
}

// checkPlacement fails unless every row is on the shard its key maps to
// (the proxy's own shard function over the vschema), and returns how many
// rows each shard holds.
func checkPlacement(t *testing.T, p *proxytest.Proxy, table string, rows map[string]placed) map[string]int {
	t.Helper()
	_, tb, err := p.Server.VSchema().FindTable("keygen", table)
	if err != nil {
		t.Fatal(err)
	}
	per := map[string]int{}
	for name, r := range rows {
		want, err := p.Server.VSchema().KeyShard(tb, sqltypes.NewInt64(r.id), vschema.ForInsert)
		if err != nil {
			t.Fatalf("%s key %d: %v", table, r.id, err)
		}
		if r.shard != want {
			t.Errorf("%s row %s (key %d) is on %s, its key maps to %s", table, name, r.id, r.shard, want)
		}
		per[r.shard]++
	}
	return per
}

// insertRows inserts rows named prefix0 .. prefix<n-1> without their keys in
// one statement and returns the statement's LastInsertId.
func insertRows(t *testing.T, c interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, table, prefix string, n int, prepared bool) int64 {
	t.Helper()
	var q strings.Builder
	var args []any
	fmt.Fprintf(&q, "INSERT INTO %s (name) VALUES ", table)
	for i := range n {
		if i > 0 {
			q.WriteString(", ")
		}
		name := fmt.Sprintf("%s%03d", prefix, i)
		if prepared {
			q.WriteString("(?)")
			args = append(args, name)
		} else {
			fmt.Fprintf(&q, "('%s')", name)
		}
	}
	res, err := c.ExecContext(context.Background(), q.String(), args...)
	if err != nil {
		t.Fatalf("%s: %v", q.String(), err)
	}
	if got, err := res.RowsAffected(); err != nil || got != int64(n) {
		t.Fatalf("%s: %d rows affected, %v", q.String(), got, err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// keysOf returns the keys of the rows named prefix000 .. in row order,
// failing unless they increase and the first is first.
func keysOf(t *testing.T, rows map[string]placed, prefix string, n int, first int64) []int64 {
	t.Helper()
	keys := make([]int64, n)
	for i := range keys {
		r, ok := rows[fmt.Sprintf("%s%03d", prefix, i)]
		if !ok {
			t.Fatalf("row %s%03d is on no shard", prefix, i)
		}
		keys[i] = r.id
		if i > 0 && keys[i] <= keys[i-1] {
			t.Errorf("row %s%03d got key %d after %d: keys of a statement must increase", prefix, i, keys[i], keys[i-1])
		}
	}
	if keys[0] != first {
		t.Errorf("LastInsertId %d, the first row %s000 got %d", first, prefix, keys[0])
	}
	return keys
}

// TestGeneratedKeys: INSERTs that leave out the shard key get distinct,
// increasing keys from a real ID service; each row is on the shard its key
// hashes or ranges to (read on the shards' servers); LastInsertId and
// LAST_INSERT_ID() are the first key; each table draws from its sequence.
func TestGeneratedKeys(t *testing.T) {
	topo := proxytest.SharedTopology(t)
	node, _ := startIDNode(t)
	p := proxytest.Start(t, topo, withKeygen(topo, []string{node.GRPCAddr}, 0))
	db := p.Open(t, "keygen", "interpolateParams=true")
	recreate(t, db, "items", "ranged", "notes", "memos", "plain")

	// Text protocol, one session: 20 rows in one statement.
	c := conn(t, db)
	first := insertRows(t, c, "items", "a", 20, false)
	if got := query1(t, c, "SELECT LAST_INSERT_ID()"); got != fmt.Sprint(first) {
		t.Errorf("LAST_INSERT_ID() %s after an insert whose LastInsertId is %d", got, first)
	}
	// Prepared statement, another session: keys go on above.
	prep := p.Open(t, "keygen")
	second := insertRows(t, prep, "items", "b", 5, true)

	rows := rowsOnShards(t, topo, "items")
	if len(rows) != 25 {
		t.Fatalf("%d rows of items on the shards, want 25", len(rows))
	}
	a := keysOf(t, rows, "a", 20, first)
	b := keysOf(t, rows, "b", 5, second)
	if b[0] <= a[19] {
		t.Errorf("second statement's keys %v are not above the first's %v", b, a)
	}
	per := checkPlacement(t, p, "items", rows)
	if len(per) != 2 {
		t.Errorf("items rows per shard %v: want rows on both shards", per)
	}
	t.Logf("items: keys %v then %v, rows per shard %v", a, b, per)

	// Range sharding: keys 1..5 go to the first shard, the rest to the second.
	rfirst := insertRows(t, db, "ranged", "r", 10, false)
	rrows := rowsOnShards(t, topo, "ranged")
	rk := keysOf(t, rrows, "r", 10, rfirst)
	if per := checkPlacement(t, p, "ranged", rrows); len(per) != 2 || rk[0] != 1 {
		t.Errorf("ranged: keys %v, rows per shard %v: want a fresh sequence from 1 over both ranges", rk, per)
	}

	// Tables that name one sequence share it.
	nfirst := insertRows(t, db, "notes", "n", 3, false)
	mfirst := insertRows(t, db, "memos", "m", 3, false)
	nk := keysOf(t, rowsOnShards(t, topo, "notes"), "n", 3, nfirst)
	mk := keysOf(t, rowsOnShards(t, topo, "memos"), "m", 3, mfirst)
	if mk[0] <= nk[2] {
		t.Errorf("memos keys %v not above notes keys %v: they share sequence \"shared\"", mk, nk)
	}

	// The service agrees on the tags: the default "<db>.<table>" and the
	// named one are above what the proxy handed out; "keygen.notes" was
	// never used.
	ic, err := client.New(func() client.Config { cc := client.DefaultConfig(); cc.Addrs = []string{node.GRPCAddr}; return cc }())
	if err != nil {
		t.Fatal(err)
	}
	defer ic.Close()
	for tag, above := range map[string]int64{"keygen.items": b[4], "keygen.ranged": rk[9], "shared": mk[2], "keygen.notes": 0} {
		rs, err := ic.Fetch(context.Background(), tag, 1)
		if err != nil {
			t.Fatal(err)
		}
		if got := int64(rs[0].Start); got <= above || above == 0 && got != 1 {
			t.Errorf("tag %s: service's next ID %d, the proxy handed out up to %d", tag, got, above)
		}
	}
	if got := p.Metric(t, "strata_proxy_generated_keys_total"); got != 20+5+10+3+3 {
		t.Errorf("strata_proxy_generated_keys_total %v, want 41", got)
	}

	// Given keys still work beside generated ones, and EXPLAIN says which.
	proxytest.MustExec(t, db, "INSERT INTO plain (id, name) VALUES (1000000, 'given')")
	var id, op, shards, q, detail string
	if err := db.QueryRow("EXPLAIN INSERT INTO plain (name) VALUES ('x')").Scan(&id, &op, &shards, &q, &detail); err != nil || !strings.Contains(detail, "(generated)") {
		t.Errorf("EXPLAIN of an insert without the key: %s %s %q, %v", op, shards, detail, err)
	}
}

// TestGeneratedKeysConcurrentSessions: sessions of two proxies on one ID
// service insert at once; no key is handed out twice, each statement's keys
// increase, and every row is on its key's shard.
func TestGeneratedKeysConcurrentSessions(t *testing.T) {
	topo := proxytest.SharedTopology(t)
	node, _ := startIDNode(t)
	mut := withKeygen(topo, []string{node.GRPCAddr}, 0)
	proxies := []*proxytest.Proxy{proxytest.Start(t, topo, mut), proxytest.Start(t, topo, mut)}
	recreate(t, proxies[0].Open(t, "keygen"), "items")

	const sessions, stmts, perStmt = 4, 25, 3
	type stmt struct {
		prefix string
		first  int64
	}
	var mu sync.Mutex
	var done []stmt
	var wg sync.WaitGroup
	errs := make(chan error, len(proxies)*sessions)
	for pi, p := range proxies {
		db := p.Open(t, "keygen", "interpolateParams=true")
		for si := range sessions {
			c := conn(t, db)
			wg.Add(1)
			go func() {
				defer wg.Done()
				last := int64(0)
				for k := range stmts {
					prefix := fmt.Sprintf("p%ds%dk%02d-", pi, si, k)
					res, err := c.ExecContext(context.Background(), fmt.Sprintf("INSERT INTO items (name) VALUES ('%s000'), ('%s001'), ('%s002')", prefix, prefix, prefix))
					if err != nil {
						errs <- fmt.Errorf("%s: %w", prefix, err)
						return
					}
					first, _ := res.LastInsertId()
					if first <= last {
						errs <- fmt.Errorf("session %s: statement's first key %d not above the session's previous %d", prefix, first, last)
						return
					}
					last = first
					mu.Lock()
					done = append(done, stmt{prefix, first})
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	rows := rowsOnShards(t, topo, "items")
	want := len(proxies) * sessions * stmts * perStmt
	if len(rows) != want || len(done) != len(proxies)*sessions*stmts {
		t.Fatalf("%d rows on the shards after %d statements, want %d", len(rows), len(done), want)
	}
	seen := map[int64]string{}
	for name, r := range rows {
		if other, dup := seen[r.id]; dup {
			t.Fatalf("key %d given to rows %s and %s", r.id, other, name)
		}
		seen[r.id] = name
	}
	for _, s := range done {
		keysOf(t, rows, s.prefix, perStmt, s.first)
	}
	per := checkPlacement(t, proxies[0], "items", rows)
	keys := make([]int64, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	t.Logf("%d distinct keys from %d to %d, rows per shard %v", len(keys), keys[0], keys[len(keys)-1], per)
}

// TestGeneratedKeysIDServiceDown: with the ID service unreachable (nothing
// listening, a node that accepts and never answers, a node stopped after
// use) an INSERT without its key fails within id_service.timeout with a
// MySQL error that says so, and inserts nothing. Keys already buffered keep
// serving the tables that fetched them.
func TestGeneratedKeysIDServiceDown(t *testing.T) {
	topo := proxytest.SharedTopology(t)
	const timeout = 500 * time.Millisecond

	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := closed.Addr().String()
	closed.Close()

	hung, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var hmu sync.Mutex
	var held []net.Conn
	go func() {
		for {
			c, err := hung.Accept()
			if err != nil {
				return
			}
			hmu.Lock()
			held = append(held, c)
			hmu.Unlock()
		}
	}()
	t.Cleanup(func() {
		hung.Close()
		hmu.Lock()
		for _, c := range held {
			c.Close()
		}
		hmu.Unlock()
	})

	stopped, stopNode := startIDNode(t)

	for _, tc := range []struct{ name, addr string }{
		{"nothing listening", refused},
		{"node never answers", hung.Addr().String()},
		{"node stopped after use", stopped.GRPCAddr},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := proxytest.Start(t, topo, withKeygen(topo, []string{tc.addr}, timeout))
			db := p.Open(t, "keygen", "interpolateParams=true")
			recreate(t, db, "items", "plain")
			if tc.addr == stopped.GRPCAddr {
				insertRows(t, db, "items", "before", 2, false)
				stopNode()
				// The proxy's buffer still holds keys for items.
				insertRows(t, db, "items", "after", 2, false)
			}
			start := time.Now()
			_, err := db.Exec("INSERT INTO plain (name) VALUES ('x'), ('y')")
			took := time.Since(start)
			var me *mysql.MySQLError
			if !errors.As(err, &me) || me.Number != 1105 || !strings.Contains(me.Message, "ID service at "+tc.addr+" gave no key for keygen.plain") || !strings.Contains(me.Message, "nothing was inserted") {
				t.Fatalf("INSERT without the key, ID service down: %v; want error 1105 naming the ID service and the table", err)
			}
			if took > timeout+2*time.Second {
				t.Errorf("the error took %v; id_service.timeout is %v", took, timeout)
			}
			t.Logf("after %v: %v", took.Round(time.Millisecond), err)
			if n := len(rowsOnShards(t, topo, "plain")); n != 0 {
				t.Errorf("%d rows of plain on the shards after the failed insert", n)
			}
			if got := p.Metric(t, "strata_proxy_generated_key_errors_total"); got != 1 {
				t.Errorf("strata_proxy_generated_key_errors_total %v, want 1", got)
			}
			// The proxy goes on: keys given by the client still work.
			proxytest.MustExec(t, db, "INSERT INTO plain (id, name) VALUES (7, 'given')")
		})
	}
}

// TestGeneratedKeysWithoutIDService: with no id_service configured an
// INSERT without the key is refused with 1235, saying how to configure it.
func TestGeneratedKeysWithoutIDService(t *testing.T) {
	topo := proxytest.SharedTopology(t)
	p := proxytest.Start(t, topo, withKeygen(topo, nil, 0))
	db := p.Open(t, "keygen")
	recreate(t, db, "plain")
	_, err := db.Exec("INSERT INTO plain (name) VALUES ('x')")
	var me *mysql.MySQLError
	if !errors.As(err, &me) || me.Number != 1235 || !strings.Contains(me.Message, "id_service.addrs") || !strings.Contains(me.Message, "keygen.plain without its shard key column id") {
		t.Fatalf("got %v, want 1235 saying to set id_service.addrs", err)
	}
	if n := len(rowsOnShards(t, topo, "plain")); n != 0 {
		t.Errorf("%d rows inserted", n)
	}
}
