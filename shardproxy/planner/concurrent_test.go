package planner

import (
	"context"
	"sync"
	"testing"

	"vitess.io/vitess/go/sqltypes"
	querypb "vitess.io/vitess/go/vt/proto/query"

	"github.com/strata-db/strata/shardproxy/engine"
)

// rowsCursor answers each query with a fresh copy of its rows.
type rowsCursor struct{ res *sqltypes.Result }

func (c rowsCursor) ExecuteShards(_ context.Context, qs []engine.ShardQuery) ([]*sqltypes.Result, error) {
	out := make([]*sqltypes.Result, len(qs))
	for i := range out {
		out[i] = c.res.Copy()
	}
	return out, nil
}

// TestPlansAreShared executes plans of every kind from many goroutines at
// once, as sessions sharing the plan cache do; run with -race, it shows
// that Execute does not modify a plan.
func TestPlansAreShared(t *testing.T) {
	vs := testVSchema()
	fields := []*querypb.Field{
		{Name: "a", Type: querypb.Type_VARCHAR, Charset: 45}, {Name: "b", Type: querypb.Type_INT64},
		{Name: "c", Type: querypb.Type_DECIMAL, Decimals: 2}, {Name: "d", Type: querypb.Type_INT64},
		{Name: "e", Type: querypb.Type_VARCHAR, Charset: 45}, {Name: "f", Type: querypb.Type_VARCHAR, Charset: 45},
	}
	res := &sqltypes.Result{Fields: fields}
	for i := 0; i < 20; i++ {
		res.Rows = append(res.Rows, []sqltypes.Value{sqltypes.NewVarChar(string(rune('a' + i%5))), sqltypes.NewInt64(int64(i)),
			sqltypes.NewDecimal("1.50"), sqltypes.NewInt64(2), sqltypes.NewVarChar("utf8mb4_general_ci"), sqltypes.NewVarChar("utf8mb4_general_ci")})
	}
	var plans []engine.Primitive
	var bvs []map[string]*querypb.BindVariable
	for _, q := range []string{
		"select name, id from users order by name, id limit 5, 3",
		"select name, count(*), sum(balance), avg(score) from users group by name having count(*) > 1 order by 2 desc",
		"select count(distinct name) from users",
		"select distinct name from users",
		"insert into users(id, name) values (1, 'a'), (2, 'b')",
		"select * from users where id in (1, 2, 3)",
	} {
		stmt, bv := normalize(t, q)
		p, err := Build(stmt, vs, "demo")
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		plans, bvs = append(plans, p), append(bvs, bv)
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < 50; n++ {
				for i, p := range plans {
					if _, err := p.Execute(context.Background(), rowsCursor{res}, bvs[i]); err != nil {
						t.Errorf("plan %d: %v", i, err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
}
