package engine

import (
	"context"
	"testing"

	"vitess.io/vitess/go/sqltypes"
	querypb "vitess.io/vitess/go/vt/proto/query"
)

// sendAll is a primitive that sends one statement to each shard.
type sendAll struct{ shards []string }

func (p sendAll) Execute(ctx context.Context, vc VCursor, _ map[string]*querypb.BindVariable) (*sqltypes.Result, error) {
	qs := make([]ShardQuery, len(p.shards))
	for i, s := range p.shards {
		qs[i] = ShardQuery{Shard: s, SQL: "delete from t"}
	}
	res, err := vc.ExecuteShards(ctx, qs)
	if err != nil {
		return nil, err
	}
	return mergeResults(res, nil)
}

func (p sendAll) Explain() []ExplainRow { return []ExplainRow{{Operator: "SendAll"}} }

// rowsCursor answers each statement with two rows naming its shard, and
// records the statements.
type rowsCursor struct{ got []string }

func (c *rowsCursor) ExecuteShards(_ context.Context, qs []ShardQuery) ([]*sqltypes.Result, error) {
	out := make([]*sqltypes.Result, len(qs))
	for i, q := range qs {
		c.got = append(c.got, q.Shard+": "+q.SQL)
		out[i] = &sqltypes.Result{
			Fields: []*querypb.Field{{Name: "id", Type: sqltypes.VarChar}},
			Rows:   [][]sqltypes.Value{{sqltypes.NewVarChar(q.Shard + "-1")}, {sqltypes.NewVarChar(q.Shard + "-2")}},
		}
	}
	return out, nil
}

func TestReturningMergesRows(t *testing.T) {
	for _, oneCopy := range []bool{false, true} {
		vc := &rowsCursor{}
		r := &Returning{Input: sendAll{[]string{"s0", "s1"}}, Clause: " RETURNING id", OneCopy: oneCopy}
		res, err := r.Execute(context.Background(), vc, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(vc.got) != 2 || vc.got[0] != "s0: delete from t RETURNING id" || vc.got[1] != "s1: delete from t RETURNING id" {
			t.Errorf("statements sent: %q", vc.got)
		}
		want := []string{"s0-1", "s0-2", "s1-1", "s1-2"}
		if oneCopy {
			want = want[:2]
		}
		if len(res.Fields) != 1 || res.Fields[0].Name != "id" || len(res.Rows) != len(want) {
			t.Fatalf("oneCopy %v: %v", oneCopy, res)
		}
		for i, w := range want {
			if res.Rows[i][0].ToString() != w {
				t.Errorf("oneCopy %v: row %d = %s, want %s", oneCopy, i, res.Rows[i][0].ToString(), w)
			}
		}
		if ex := r.Explain(); len(ex) != 2 || ex[0].Operator != "Returning" {
			t.Errorf("explain %+v", ex)
		}
	}
}
