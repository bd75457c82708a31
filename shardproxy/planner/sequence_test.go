package planner

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"

	"vitess.io/vitess/go/sqltypes"

	"github.com/strata-db/strata/shardproxy/engine"
)

// idCursor records the shard queries and hands out IDs from 100 up per tag.
type idCursor struct {
	mu   sync.Mutex
	sent []string
	next map[string]int64
}

func (c *idCursor) ExecuteShards(_ context.Context, qs []engine.ShardQuery) ([]*sqltypes.Result, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*sqltypes.Result, len(qs))
	for i, q := range qs {
		c.sent = append(c.sent, q.SQL)
		out[i] = &sqltypes.Result{RowsAffected: uint64(strings.Count(q.SQL, "("))}
	}
	return out, nil
}

func (c *idCursor) GenerateIDs(_ context.Context, tag string, n int) ([]int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.next == nil {
		c.next = map[string]int64{}
	}
	out := make([]int64, n)
	for i := range out {
		c.next[tag]++
		out[i] = 99 + c.next[tag]
	}
	return out, nil
}

// Generated columns: a column left out gets an ID per row, NULL gets one,
// an explicit value is kept, and LAST_INSERT_ID() is the first generated.
func TestSequenceInsert(t *testing.T) {
	vs := testVSchema()
	for _, c := range []struct {
		q      string
		rows   []string // the values each row is sent with, sorted
		lastID uint64
	}{
		{"insert into items (user_id, name) values (1, 'a'), (2, 'b'), (3, 'c')", []string{"(1, 'a', 100)", "(2, 'b', 101)", "(3, 'c', 102)"}, 100},
		{"insert into items (id, user_id) values (null, 1), (7, 2), (null, 3)", []string{"(100, 1)", "(101, 3)", "(7, 2)"}, 100},
		{"insert into items (id, user_id) values (7, 2)", []string{"(7, 2)"}, 0},
	} {
		stmt, bv := normalize(t, c.q)
		p, err := Build(stmt, vs, "demo")
		if err != nil {
			t.Fatalf("%s: %v", c.q, err)
		}
		vc := &idCursor{}
		res, err := p.Execute(context.Background(), vc, bv)
		if err != nil {
			t.Fatalf("%s: %v", c.q, err)
		}
		var rows []string
		for _, s := range vc.sent {
			_, vals, _ := strings.Cut(s, " values ")
			for _, r := range strings.Split(vals, "), (") {
				rows = append(rows, "("+strings.Trim(r, "()")+")")
			}
		}
		sort.Strings(rows)
		if fmt.Sprint(rows) != fmt.Sprint(c.rows) || res.InsertID != c.lastID {
			t.Errorf("%s:\n sent %v (%v), insert id %d\n want %v, insert id %d", c.q, rows, vc.sent, res.InsertID, c.rows, c.lastID)
		}
	}
}
