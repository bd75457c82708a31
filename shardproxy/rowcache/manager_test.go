package rowcache

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"vitess.io/vitess/go/mysql"
	"vitess.io/vitess/go/sqltypes"

	"github.com/strata-db/strata/cachetier"
	"github.com/strata-db/strata/localdb"
)

// shardConn is one locked vitess connection to a shard primary, standing in
// for the proxy's executor.
type shardConn struct {
	mu sync.Mutex
	c  *mysql.Conn
}

func (s *shardConn) exec(t testing.TB, q string) *sqltypes.Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.c.ExecuteFetch(q, 1000, true)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return r
}

func TestManagerOverMariaDB(t *testing.T) {
	topo := localdb.StartForTest(t, localdb.TestConfig(2, 0))
	var conns []*shardConn
	var shards []Shard
	for _, sh := range topo.Shards() {
		p := sh.Primary()
		c, err := mysql.Connect(context.Background(), &mysql.ConnParams{Host: "127.0.0.1", Port: p.Port, Uname: "root"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		sc := &shardConn{c: c}
		conns = append(conns, sc)
		sc.exec(t, "CREATE DATABASE demo")
		sc.exec(t, "CREATE TABLE demo.customers (id BIGINT PRIMARY KEY, name VARCHAR(100), email VARBINARY(100) UNIQUE)")
		sc.exec(t, "USE demo")
		shards = append(shards, Shard{Name: sh.Name, Primary: func(context.Context) (string, error) { return sh.Primary().Addr(), nil }})
	}
	shardOf := func(id int) *shardConn { return conns[id%2] }
	for id := 1; id <= 200; id++ {
		shardOf(id).exec(t, fmt.Sprintf("INSERT INTO demo.customers VALUES (%d, 'n%d', 'e%d@x')", id, id, id))
	}
	cc := cachetier.DefaultConfig()
	cc.MaxBytes = 8 << 20
	m, err := New(Config{
		Tables: []TableConfig{{DB: "demo", Table: "customers", Unique: []string{"email"}, Cache: cc}, {DB: "demo", Table: "later", Cache: cc}},
		Shards: shards, User: "root", Binlog: true, Logger: localdb.TestLogger(t),
		BloomRebuildDelay: 100 * time.Millisecond, MaxLag: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)

	var loads atomic.Int64
	get := func(q string, id int) *sqltypes.Result {
		t.Helper()
		stmt := parse(t, q)
		p, ok := m.Point(stmt, "demo", nil, "utf8mb4")
		// On a loaded machine a lag probe may pass MaxLag for a moment,
		// and the cache steps aside: wait that out.
		for deadline := time.Now().Add(10 * time.Second); !ok && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
			p, ok = m.Point(stmt, "demo", nil, "utf8mb4")
		}
		if !ok {
			t.Fatalf("%s: not a point select", q)
		}
		r, err := m.Get(context.Background(), p, func(context.Context) (*sqltypes.Result, error) {
			loads.Add(1)
			return shardOf(id).exec(t, q), nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	name := func(r *sqltypes.Result) string {
		if len(r.Rows) == 0 {
			return "<none>"
		}
		return r.Rows[0][0].ToString()
	}
	q5 := "SELECT name FROM customers WHERE id = 5"
	for range 3 {
		if n := name(get(q5, 5)); n != "n5" {
			t.Fatalf("id 5 = %s", n)
		}
	}
	if loads.Load() != 1 {
		t.Fatalf("loads = %d, want 1", loads.Load())
	}

	// A write through the proxy: backend OK, Invalidate, then the client's
	// OK; the next read sees it at once.
	upd := "UPDATE customers SET name = 'p5' WHERE id = 5"
	shardOf(5).exec(t, upd)
	m.Invalidate(m.Writes(parse(t, upd), "demo", nil, ""))
	if n := name(get(q5, 5)); n != "p5" {
		t.Fatalf("after a proxy write: %s", n)
	}

	// A direct write: seen through the binlog within the measured lag.
	t0 := time.Now()
	shardOf(5).exec(t, "UPDATE demo.customers SET name = 'd5' WHERE id = 5")
	acked := time.Since(t0)
	for name(get(q5, 5)) != "d5" {
		if time.Since(t0) > 10*time.Second {
			t.Fatal("direct write never visible")
		}
		time.Sleep(time.Millisecond)
	}
	p99, connected := m.BinlogLag()
	t.Logf("direct write visible %v after it was sent (%v after its OK); binlog lag p99 %.6fs, connected %v", time.Since(t0), time.Since(t0)-acked, p99, connected)

	// Unique key: cached, and a direct update of the email moves it.
	qe := "SELECT id, name FROM customers WHERE email = 'e8@x'"
	if n := name(get(qe, 8)); n != "8" {
		t.Fatalf("email e8@x = %s", n)
	}
	shardOf(8).exec(t, "UPDATE demo.customers SET email = 'new8@x' WHERE id = 8")
	deadline := time.Now().Add(10 * time.Second)
	for name(get(qe, 8)) != "<none>" {
		if time.Now().After(deadline) {
			t.Fatal("unique key change never visible")
		}
		time.Sleep(time.Millisecond)
	}

	// Penetration: 10,000 lookups of missing keys reach the shards at most
	// 1% of the time (a first load per shape learns the columns).
	before := loads.Load()
	for i := range 10_000 {
		id := 1_000_000 + i
		if r := get("SELECT name FROM customers WHERE id = "+strconv.Itoa(id), id); len(r.Rows) != 0 {
			t.Fatalf("missing id %d found", id)
		}
	}
	if n := loads.Load() - before; n > 100 {
		t.Fatalf("%d of 10000 missing-key lookups reached a shard", n)
	} else {
		t.Logf("%d of 10000 missing-key lookups reached a shard", n)
	}
	// A direct insert of a key the bloom filter had not seen.
	shardOf(1_000_001).exec(t, "INSERT INTO demo.customers VALUES (1000001, 'late', 'late@x')")
	deadline = time.Now().Add(10 * time.Second)
	for name(get("SELECT name FROM customers WHERE id = 1000001", 1_000_001)) != "late" {
		if time.Now().After(deadline) {
			t.Fatal("direct insert never visible")
		}
		time.Sleep(time.Millisecond)
	}

	// A table created after Start is cached once it exists.
	if _, ok := m.Point(parse(t, "SELECT * FROM later WHERE id = 1"), "demo", nil, ""); ok {
		t.Fatal("a missing table is cached")
	}
	for _, c := range conns {
		c.exec(t, "CREATE TABLE demo.later (id INT PRIMARY KEY)")
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		if _, ok := m.Point(parse(t, "SELECT * FROM later WHERE id = 1"), "demo", nil, ""); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a table created after Start is never cached")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// A shard whose binlog falls behind MaxLag (its primary frozen): the
	// cache steps aside until the tailer catches up.
	stmt5 := parse(t, q5)
	get(q5, 5) // cached (it waits out a passing lag)
	frozen := topo.Shards()[1].Primary()
	if err := frozen.Pause(); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		if _, ok := m.Point(stmt5, "demo", nil, "utf8mb4"); !ok {
			break
		}
		if time.Now().After(deadline) {
			frozen.Resume()
			t.Fatal("cache still used with a binlog stuck past MaxLag")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := frozen.Resume(); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(15 * time.Second)
	for {
		if _, ok := m.Point(stmt5, "demo", nil, "utf8mb4"); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("cache not back after the binlog caught up")
		}
		time.Sleep(20 * time.Millisecond)
	}

	for _, r := range []*sqltypes.Result{m.ShowCache(), m.ShowHotKeys(), m.ShowBinlog()} {
		if len(r.Rows) == 0 {
			t.Fatalf("empty SHOW answer: %v", r.Fields)
		}
	}
	t.Logf("cache: %v", m.ShowCache().Rows[0])
	t.Logf("hot: %v", m.ShowHotKeys().Rows[0])
	t.Logf("binlog: %v", m.ShowBinlog().Rows)
}
