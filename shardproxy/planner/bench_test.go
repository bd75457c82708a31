package planner

import (
	"context"
	"syscall"
	"testing"
	"time"

	"vitess.io/vitess/go/sqltypes"
	querypb "vitess.io/vitess/go/vt/proto/query"
	"vitess.io/vitess/go/vt/sqlparser"

	"github.com/strata-db/strata/shardproxy/engine"
)

// cannedCursor answers every query with the same result, without I/O, so
// the benchmarks measure the proxy's own CPU.
type cannedCursor struct {
	res *sqltypes.Result
	out []*sqltypes.Result
}

func (c *cannedCursor) ExecuteShards(_ context.Context, qs []engine.ShardQuery) ([]*sqltypes.Result, error) {
	if cap(c.out) < len(qs) {
		c.out = make([]*sqltypes.Result, len(qs))
	}
	out := c.out[:len(qs)]
	for i := range out {
		out[i] = c.res
	}
	return out, nil
}

func pointResult() *sqltypes.Result {
	return &sqltypes.Result{
		Fields: []*querypb.Field{{Name: "c", Type: querypb.Type_CHAR, Charset: 45}},
		Rows:   [][]sqltypes.Value{{sqltypes.NewVarChar("68487932199-96439406143-93774651418-41631865787-96406072701")}},
	}
}

// cpuClock reports the CPU time (user + system, all threads, GC included)
// per operation as cpu-ns/op: on a shared 2-core machine wall-clock ns/op
// also counts the time other processes held the cores.
type cpuClock struct{ start time.Duration }

func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func startCPU() cpuClock { return cpuClock{start: processCPU()} }

func (c cpuClock) report(b *testing.B) {
	b.ReportMetric(float64(processCPU()-c.start)/float64(b.N), "cpu-ns/op")
}

// BenchmarkPointSelect is the proxy's CPU for sysbench's point select with
// a warm plan cache: parse, normalize, the cache lookup by normalized text,
// routing by the shard key and generating the shard's SQL. The budget is
// 10 µs.
func BenchmarkPointSelect(b *testing.B) {
	vs := testVSchema()
	vs.Databases["demo"].Tables["sbtest1"] = vs.Databases["demo"].Tables["users"]
	parser := sqlparser.NewTestParser()
	cache := map[string]engine.Primitive{}
	vc := &cannedCursor{res: pointResult()}
	ctx := context.Background()
	queries := []string{
		"SELECT c FROM sbtest1 WHERE id=5012",
		"SELECT c FROM sbtest1 WHERE id=49913",
		"SELECT c FROM sbtest1 WHERE id=7",
	}
	b.ReportAllocs()
	cpu := startCPU()
	for i := 0; b.Loop(); i++ {
		stmt, known, err := parser.Parse2(queries[i%len(queries)])
		if err != nil {
			b.Fatal(err)
		}
		bv := make(map[string]*querypb.BindVariable, 2)
		res, err := sqlparser.Normalize(stmt, sqlparser.NewReservedVars("vtg", known), bv, true, "demo", -1, "", nil, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		key := sqlparser.String(res.AST)
		p, ok := cache[key]
		if !ok {
			if p, err = Build(res.AST, vs, "demo"); err != nil {
				b.Fatal(err)
			}
			cache[key] = p
		}
		if _, err := p.Execute(ctx, vc, bv); err != nil {
			b.Fatal(err)
		}
	}
	cpu.report(b)
}

// BenchmarkPointSelectExecute is routing and SQL generation alone, from a
// cached plan with the bind variables at hand.
func BenchmarkPointSelectExecute(b *testing.B) {
	vs := testVSchema()
	stmt, bv := normalize(b, "SELECT c FROM users WHERE id=5012")
	p, err := Build(stmt, vs, "demo")
	if err != nil {
		b.Fatal(err)
	}
	vc := &cannedCursor{res: pointResult()}
	ctx := context.Background()
	b.ReportAllocs()
	cpu := startCPU()
	for b.Loop() {
		if _, err := p.Execute(ctx, vc, bv); err != nil {
			b.Fatal(err)
		}
	}
	cpu.report(b)
}

// BenchmarkBuild is the cost of a plan-cache miss for a few shapes.
func BenchmarkBuild(b *testing.B) {
	vs := testVSchema()
	for name, sql := range map[string]string{
		"point":     "select c from users where id = 5",
		"orderby":   "select id, name from users where score > 10 order by name desc, id limit 10",
		"aggregate": "select region, count(*), avg(score) from users group by region having count(*) > 2 order by 2 desc",
		"insert":    "insert into users(id, name) values (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd')",
	} {
		stmt, _ := normalize(b, sql)
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Build(stmt, vs, "demo"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkScatterMerge is a scatter ORDER BY ... LIMIT over two shards of
// 100 rows each: SQL generation, merge sort with collation, limit, trim.
func BenchmarkScatterMerge(b *testing.B) {
	vs := testVSchema()
	stmt, bv := normalize(b, "select id, name from users order by name, id limit 50")
	p, err := Build(stmt, vs, "demo")
	if err != nil {
		b.Fatal(err)
	}
	res := &sqltypes.Result{Fields: []*querypb.Field{
		{Name: "id", Type: querypb.Type_INT64, Charset: 63},
		{Name: "name", Type: querypb.Type_VARCHAR, Charset: 45},
		{Name: "collation(name)", Type: querypb.Type_VARCHAR, Charset: 45},
	}}
	for i := 0; i < 100; i++ {
		res.Rows = append(res.Rows, []sqltypes.Value{sqltypes.NewInt64(int64(i)),
			sqltypes.NewVarChar(string(rune('a'+i%26)) + "name"), sqltypes.NewVarChar("utf8mb4_general_ci")})
	}
	vc := &cannedCursor{res: res}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Execute(ctx, vc, bv); err != nil {
			b.Fatal(err)
		}
	}
}
