package planner

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"vitess.io/vitess/go/mysql/sqlerror"

	"github.com/strata-db/strata/shardproxy/engine"
	"github.com/strata-db/strata/shardproxy/hotrow"
	"github.com/strata-db/strata/shardproxy/vschema"
)

// hotCursor is a session's VCursor with the server's hot-row combiner.
type hotCursor struct {
	*shardCursor
	comb *engine.HotCombiner
}

func (h hotCursor) HotRowCombiner() *engine.HotCombiner { return h.comb }

// TestCombineWrites: sessions (each with its own connections) increment
// one row of a table that combines writes, over real shards; the row ends
// with the sum of the acknowledged increments, and a CHECK that some
// decrements must fail fails exactly those.
func TestCombineWrites(t *testing.T) {
	e := startEnv(t)
	vs := diffVSchemaOf(nil, e.vs.Shards[0], e.vs.Shards[1])
	vs.Databases["demo"].Tables["stock"] = &vschema.Table{Name: "stock", Kind: vschema.Sharded, Column: "id", Func: vschema.Hash,
		Sub: vschema.SubTables{By: vschema.SubHash, Count: 2}, CombineWrites: true}
	e.vs = vs
	ctx := context.Background()
	for _, q := range []string{
		"create table stock (id bigint primary key, n int not null, sold int not null default 0, check (n >= 0))",
		"insert into stock (id, n) values (1, 0), (2, 10)",
	} {
		if _, err := e.run(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	comb, err := engine.NewHotCombiner(hotrow.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	cursor := func() *shardCursor {
		c := &shardCursor{conns: map[string]*lockedConn{}}
		for _, sh := range e.topo.Shards()[:2] {
			c.conns[sh.Name] = &lockedConn{c: connect(t, sh.Primary(), "demo")}
		}
		return c
	}
	const sessions = 32
	cursors := make([]*shardCursor, sessions)
	for i := range cursors {
		cursors[i] = cursor()
	}
	// Increments for a fixed time, combined and plain.
	rate := func(combine bool) float64 {
		var acked atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for i := 0; i < sessions; i++ {
			var vc engine.VCursor = cursors[i]
			if combine {
				vc = hotCursor{cursors[i], comb}
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Since(start) < time.Second {
					if _, err := e.runWith(ctx, vc, "update stock set n = n + ?, sold = sold - ? where id = ?", 2, 1, 1); err != nil {
						t.Errorf("update: %v", err)
						return
					}
					acked.Add(1)
				}
			}()
		}
		wg.Wait()
		return float64(acked.Load()) / time.Since(start).Seconds()
	}
	plain := rate(false)
	combined := rate(true)
	t.Logf("%d sessions incrementing one row: %.0f/s plain, %.0f/s combined (%.1fx; shared machine)", sessions, plain, combined, combined/plain)
	res, err := e.run(ctx, "select n, sold from stock where id = 1")
	if err != nil {
		t.Fatal(err)
	}
	n, _ := res.Rows[0][0].ToInt64()
	sold, _ := res.Rows[0][1].ToInt64()
	if n != -2*sold {
		t.Errorf("n = %d, sold = %d: some acknowledged increment is missing", n, sold)
	}

	// 10 in stock, 30 sessions take one each: 10 succeed, 20 fail the
	// CHECK, whatever rounds they fell into.
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 30; i++ {
		vc := hotCursor{cursors[i], comb}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := e.runWith(ctx, vc, "update stock set n = n - 1 where id = 2")
			var se *sqlerror.SQLError
			switch {
			case err == nil && r.RowsAffected == 1:
				ok.Add(1)
			case errors.As(err, &se) && se.Num == 4025:
				failed.Add(1)
			default:
				t.Errorf("update: %v %v", r, err)
			}
		}()
	}
	wg.Wait()
	res, err = e.run(ctx, "select n from stock where id = 2")
	if err != nil {
		t.Fatal(err)
	}
	if ok.Load() != 10 || failed.Load() != 20 || res.Rows[0][0].ToString() != "0" {
		t.Errorf("%d succeeded, %d failed the CHECK, %s left; want 10, 20, 0", ok.Load(), failed.Load(), res.Rows[0][0].ToString())
	}
}
