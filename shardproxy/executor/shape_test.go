package executor

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"vitess.io/vitess/go/mysql"
	"vitess.io/vitess/go/sqltypes"
	querypb "vitess.io/vitess/go/vt/proto/query"

	"github.com/strata-db/strata/shardproxy/config"
	"github.com/strata-db/strata/shardproxy/engine"
)

// offlineServer is an Executor whose backends do not exist: enough to
// parse, plan and route in process, for the fast path's tests, fuzzing and
// benchmarks (a recording VCursor stands in for the shards).
func offlineServer(t testing.TB) *Executor {
	t.Helper()
	c := config.DefaultConfig()
	c.Listen, c.AdminListen = "127.0.0.1:0", "off"
	c.CreateDatabases = false
	c.ServerVersion = "10.11.0-MariaDB-test"
	c.Shards = []config.Shard{{Name: "s0", Primary: "127.0.0.1:1"}, {Name: "s1", Primary: "127.0.0.1:2"}}
	c.Databases = map[string]*config.Database{
		"demo": {Sharded: true, Tables: map[string]*config.Table{
			"customers":    {Kind: "sharded", Column: "id"},
			"orders":       {Kind: "sharded", Column: "customer_id"},
			"names":        {Kind: "sharded", Column: "name", Type: "string"},
			"countries":    {Kind: "reference"},
			"sbtest{1..4}": {Kind: "sharded", Column: "id"},
		}},
		"test": {Shard: "s0"},
	}
	return newTestExecutor(t, c)
}

// recorder is a VCursor that records what would be sent to the shards.
type recorder struct {
	mu   sync.Mutex
	sent []string
}

func (r *recorder) ExecuteShards(_ context.Context, qs []engine.ShardQuery) ([]*sqltypes.Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*sqltypes.Result, len(qs))
	for i, q := range qs {
		r.sent = append(r.sent, fmt.Sprintf("%s|%v|%s", q.Shard, q.Read, q.SQL))
		out[i] = &sqltypes.Result{}
	}
	return out, nil
}

func offlineSession(srv *Executor, db string) (*Session, *recorder) {
	s := newSession(srv, nil)
	s.DB = db
	r := &recorder{}
	s.vc = r
	return s, r
}

// slowSent runs sql the ordinary way (parse, normalize, plan) and returns
// what reaches the shards.
func slowSent(t testing.TB, srv *Executor, db, sql string) ([]string, error) {
	s, r := offlineSession(srv, db)
	stmt, known, err := srv.parser.Parse2(sql)
	if err != nil {
		return nil, err
	}
	bv := map[string]*querypb.BindVariable{}
	cp, err := s.planFor(stmt, known, bv)
	if err != nil {
		return nil, err
	}
	if _, err := s.execPlan(context.Background(), cp, bv, sql); err != nil {
		return nil, err
	}
	return r.sent, nil
}

// fastSent runs sql on the fast path; ok false if the fast path does not
// take it.
func fastSent(srv *Executor, db, sql string) (sent []string, ok bool, err error) {
	s, r := offlineSession(srv, db)
	_, _, err, ok = s.fastExecute(context.Background(), sql)
	return r.sent, ok, err
}

func TestScanShape(t *testing.T) {
	cases := []struct{ sql, shape string }{
		{"SELECT c FROM sbtest1 WHERE id=5", "select c FROM sbtest1 WHERE id=?i"},
		{"  select c from t where id = -5 and k=-3.25e2", "select c from t where id = ?i and k=?f"},
		{"SELECT a - 5, b -2 FROM t", "select a - ?i, b -?i FROM t"},
		{"SELECT * FROM t WHERE s = 'it''s' AND d = \"x\\\"y\" AND n IN (1, 2.50, 3)", "select * FROM t WHERE s = ?s AND d = ?s AND n IN (?i, ?d1.2, ?i)"},
		{"SELECT a FROM t ORDER BY 2 DESC, a LIMIT 10", "select a FROM t ORDER BY 2 DESC, a LIMIT ?i"},
		{"SELECT COUNT(*) FROM t GROUP BY 1 HAVING COUNT(*) > 3", "select COUNT(*) FROM t GROUP BY 1 HAVING COUNT(*) > ?i"},
		{"SELECT _utf8mb4'x', N'y', X'ff', 0x1F, DATE '2020-01-01', @'v' FROM t1", "select _utf8mb4'x', N'y', X'ff', 0x1F, DATE '2020-01-01', @'v' FROM t1"},
		{"INSERT INTO t (id, c) VALUES (1, 'a'), (2, 'b');", "insert INTO t (id, c) VALUES (?i, ?s), (?i, ?s)"},
		{"UPDATE t /* hint */ SET k=k+1 WHERE id=7", "update t /* hint */ SET k=k+?i WHERE id=?i"},
		{"DELETE FROM `my table` WHERE id=1", "delete FROM `my table` WHERE id=?i"},
	}
	for _, tc := range cases {
		key, lits, _, ok := scanShape(tc.sql, "db", nil, nil)
		if !ok {
			t.Errorf("%q: not scanned", tc.sql)
			continue
		}
		got := string(key[3:])
		// The shape keeps the statement's own case; compare the keyword
		// case-insensitively.
		if !strings.EqualFold(got, tc.shape) {
			t.Errorf("%q:\n got %q\nwant %q (%d literals)", tc.sql, got, tc.shape, len(lits))
		}
	}
	for _, sql := range []string{"SET x = 1", "SHOW TABLES", "SELECT 1; SELECT 2", "SELECT 'unterminated", "BEGIN"} {
		if _, _, _, ok := scanShape(sql, "db", nil, nil); ok {
			t.Errorf("%q: scanned", sql)
		}
	}
}

// fastCorpus are statements whose fast and slow executions must agree.
var fastCorpus = []string{
	"SELECT c FROM sbtest1 WHERE id=5",
	"SELECT c FROM sbtest1 WHERE id=-5",
	"SELECT c FROM sbtest1 WHERE id BETWEEN 10 AND 110",
	"SELECT SUM(k) FROM sbtest1 WHERE id BETWEEN 10 AND 110",
	"SELECT c FROM sbtest1 WHERE id BETWEEN 10 AND 110 ORDER BY c",
	"SELECT DISTINCT c FROM sbtest1 WHERE id BETWEEN 10 AND 110 ORDER BY c",
	"UPDATE sbtest1 SET k=k+1 WHERE id=42",
	"UPDATE sbtest1 SET c='xyz' WHERE id=42",
	"DELETE FROM sbtest1 WHERE id=42",
	"INSERT INTO sbtest1 (id, k, c, pad) VALUES (42, 7, 'abc', 'def')",
	"INSERT INTO sbtest1 (id, k, c, pad) VALUES (-1453920500, 7, 'abc', 'def')",
	"INSERT INTO customers (id, name) VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'it''s')",
	"SELECT id, name FROM customers WHERE id IN (1, 2, 3, 4, 5) ORDER BY name DESC LIMIT 3",
	"SELECT * FROM customers WHERE id = 3 AND name = 'x\\'y\\n'",
	"SELECT * FROM customers WHERE name LIKE 'a\\_b%'",
	"SELECT * FROM names WHERE name = 'Alice'",
	"SELECT * FROM names WHERE name IN ('a', 'b')",
	"SELECT c.id, k.name FROM customers c JOIN countries k ON k.code = c.name WHERE c.id = 9",
	"SELECT COUNT(*), MAX(id) FROM customers WHERE id > 100",
	"SELECT id FROM customers ORDER BY 1 LIMIT 5",
	"SELECT id FROM customers ORDER BY id LIMIT 5, 10",
	"SELECT 1.50 * id FROM customers WHERE id = 2",
	"SELECT id FROM customers WHERE id = 1.0",
	"SELECT id FROM customers WHERE id = 1e3",
	"SELECT 1",
	"SELECT 'abc', 2 + 3",
	"SELECT name FROM customers WHERE id = 5 FOR UPDATE",
	"SELECT * FROM orders WHERE customer_id = 12 AND id > 3",
	"SELECT table_name FROM information_schema.tables WHERE table_schema = 'demo'",
	"SELECT a FROM test_table WHERE a = 1",
	"SELECT id FROM customers WHERE id = 99999999999999999999",
	"select /*+ strata:primary */ id from customers where id = 1",
	"SELECT id FROM customers WHERE id = 'a' 'b'",
}

// TestFastPathDifferential: for every statement the fast path takes, the
// shards get exactly what the ordinary path sends them.
func TestFastPathDifferential(t *testing.T) {
	srv := offlineServer(t)
	fast := 0
	for _, db := range []string{"demo", "test"} {
		for _, sql := range fastCorpus {
			want, werr := slowSent(t, srv, db, sql)
			for round := 0; round < 2; round++ { // learn, then hit
				got, ok, gerr := fastSent(srv, db, sql)
				if !ok {
					continue
				}
				fast++
				if (werr == nil) != (gerr == nil) || !reflect.DeepEqual(got, want) {
					t.Errorf("%s: %q (round %d)\nfast %v %q\nslow %v %q", db, sql, round, gerr, got, werr, want)
				}
			}
		}
	}
	if fast < len(fastCorpus) {
		t.Errorf("the fast path took only %d of %d runs", fast, 4*len(fastCorpus))
	}
	t.Logf("fast path took %d of %d runs", fast, 4*len(fastCorpus))
	// A shape learned from one statement serves another with other values.
	want, _ := slowSent(t, srv, "demo", "SELECT c FROM sbtest1 WHERE id=77")
	got, ok, _ := fastSent(srv, "demo", "SELECT c FROM sbtest1 WHERE id=77")
	if !ok || !reflect.DeepEqual(got, want) {
		t.Errorf("other value: %v %q vs %q", ok, got, want)
	}
}

// FuzzFastPath: whatever the statement, the fast path never panics, and
// when it takes a statement it sends the shards what the ordinary path
// would.
func FuzzFastPath(f *testing.F) {
	for _, s := range fastCorpus {
		f.Add(s)
	}
	srv := offlineServer(f)
	f.Fuzz(func(t *testing.T, sql string) {
		if len(sql) > 2000 {
			return
		}
		got, ok, gerr := fastSent(srv, "demo", sql)
		if !ok {
			return
		}
		want, werr := slowSent(t, srv, "demo", sql)
		if (werr == nil) != (gerr == nil) || !reflect.DeepEqual(got, want) {
			t.Errorf("%q\nfast %v %q\nslow %v %q", sql, gerr, got, werr, want)
		}
	})
}

// canned is a VCursor that answers every query with one sysbench row.
type canned struct{ res *sqltypes.Result }

func (c canned) ExecuteShards(_ context.Context, qs []engine.ShardQuery) ([]*sqltypes.Result, error) {
	out := make([]*sqltypes.Result, len(qs))
	for i := range qs {
		out[i] = c.res
	}
	return out, nil
}

// processCPU is the process's CPU time (user + system, every thread, GC
// included): on the shared 2-core machine wall-clock ns/op also counts the
// time other processes held the cores, so the benchmark reports cpu-ns/op.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPointSelect is the proxy's CPU for one sysbench point select
// with a warm plan cache: everything a statement costs between the client's
// packet and the backend's (scan or parse, plan lookup, bind variables,
// routing, the shard's SQL, session bookkeeping and metrics), with a canned
// shard answer in place of the network. The budget is 10 µs.
func BenchmarkPointSelect(b *testing.B) {
	srv := offlineServer(b)
	s, _ := offlineSession(srv, "demo")
	s.vc = canned{res: &sqltypes.Result{
		Fields: []*querypb.Field{{Name: "c", Type: querypb.Type_CHAR, Charset: 45}},
		Rows:   [][]sqltypes.Value{{sqltypes.NewVarChar("68487932199-96439406143-93774651418-41631865787-96406072701")}},
	}}
	ctx := context.Background()
	queries := make([]string, 1024)
	for i := range queries {
		queries[i] = fmt.Sprintf("SELECT c FROM sbtest1 WHERE id=%d", i*7919%100000)
	}
	run := func(b *testing.B, one func(i int) error) {
		b.ReportAllocs()
		cpu := processCPU()
		for i := 0; b.Loop(); i++ {
			if err := one(i); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
	}
	b.Run("text", func(b *testing.B) {
		// sysbench --db-ps-mode=disable: the fast path.
		run(b, func(i int) error {
			_, err := s.execute(ctx, queries[i%len(queries)])
			return err
		})
	})
	b.Run("text-parsed", func(b *testing.B) {
		// The ordinary path, for statements the fast path does not take:
		// parse, normalize, plan cache by normalized text.
		run(b, func(i int) error {
			q := queries[i%len(queries)]
			stmt, known, err := srv.parser.Parse2(q)
			if err != nil {
				return err
			}
			_, _, err = s.dispatchStmt(ctx, q, stmt, known)
			return err
		})
	})
	b.Run("prepared", func(b *testing.B) {
		// sysbench --db-ps-mode=auto: the plan is the statement's own.
		const q = "SELECT c FROM sbtest1 WHERE id=?"
		if _, err := s.prepare(ctx, q, 1); err != nil {
			b.Fatal(err)
		}
		prep := &mysql.PrepareData{StatementID: 1, PrepareStmt: q, ParamsCount: 1}
		run(b, func(i int) error {
			prep.BindVars = map[string]*querypb.BindVariable{"v1": sqltypes.Int64BindVariable(int64(i % 100000))}
			_, err := s.executePrepared(ctx, prep)
			return err
		})
	})
}

// TestFastPathFuzzShort is a short, bounded, deterministic run of
// FuzzFastPath's property on mutations of its corpus, so that every `go
// test` exercises it beyond the seeds.
func TestFastPathFuzzShort(t *testing.T) {
	srv := offlineServer(t)
	rng := rand.New(rand.NewPCG(1, 2))
	mutate := func(b []byte) []byte {
		b = append([]byte{}, b...)
		for n := rng.IntN(4) + 1; n > 0; n-- {
			switch op := rng.IntN(4); {
			case op == 0 && len(b) > 0:
				b[rng.IntN(len(b))] = byte(rng.IntN(256))
			case op == 1 && len(b) > 0:
				i := rng.IntN(len(b))
				b = append(b[:i], b[i+1:]...)
			case op == 2:
				i := rng.IntN(len(b) + 1)
				b = append(b[:i], append([]byte{byte(rng.IntN(256))}, b[i:]...)...)
			default:
				if len(b) > 2 {
					i, j := rng.IntN(len(b)), rng.IntN(len(b))
					b[i], b[j] = b[j], b[i]
				}
			}
		}
		return b
	}
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; i < 3000 && time.Now().Before(deadline); i++ {
		sql := string(mutate([]byte(fastCorpus[rng.IntN(len(fastCorpus))])))
		got, ok, gerr := fastSent(srv, "demo", sql)
		if !ok {
			continue
		}
		want, werr := slowSent(t, srv, "demo", sql)
		if (werr == nil) != (gerr == nil) || len(got) != len(want) {
			t.Fatalf("%q\nfast %v %q\nslow %v %q", sql, gerr, got, werr, want)
		}
		for k := range got {
			if got[k] != want[k] {
				t.Fatalf("%q\nfast %q\nslow %q", sql, got, want)
			}
		}
	}
}
