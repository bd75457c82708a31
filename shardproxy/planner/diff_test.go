package planner

import (
	"context"
	"errors"
	"testing"

	"vitess.io/vitess/go/mysql/sqlerror"

	"github.com/strata-db/strata/shardproxy/planner/internal/difftest"
)

// TestDifferential runs the corpus through the planner and engine over two
// real MariaDB shards and on one MariaDB server holding the same rows, and
// requires equal answers: column names and types, and rows (in order when
// the query orders, as multisets otherwise).
func TestDifferential(t *testing.T) {
	runDifferential(t, startEnv(t), true)
}

// TestDifferentialSubTables is TestDifferential with every sharded table in
// 4 sub-tables per shard and visits in a sub-table per month; then the
// writes of difftest.Writes leave both sides with the same rows.
func TestDifferentialSubTables(t *testing.T) {
	e := startEnvWith(t, difftest.SubTableTables())
	runDifferential(t, e, false)
	// The rows are in the physical sub-tables, spread over all of them.
	for shard, lc := range e.cursor.conns {
		for _, tb := range []string{"users_0000", "users_0001", "users_0002", "users_0003", "orders_0003", "visits_202401", "visits_202412"} {
			r, err := lc.c.ExecuteFetch("select count(*) from "+tb, 1, false)
			if err != nil {
				t.Fatalf("%s on %s: %v", tb, shard, err)
			}
			if n, _ := r.Rows[0][0].ToInt(); n == 0 {
				t.Errorf("%s on %s holds no rows", tb, shard)
			}
		}
		// The table of the logical name holds the definition, no rows.
		if r, err := lc.c.ExecuteFetch("select count(*) from users", 1, false); err != nil || r.Rows[0][0].ToString() != "0" {
			t.Errorf("table users on %s: %v %v, want it empty", shard, r, err)
		}
	}
	ctx := context.Background()
	for _, w := range difftest.Writes() {
		if _, err := e.run(ctx, w); err != nil {
			t.Fatalf("%s: through the shards: %v", w, err)
		}
		if _, err := e.runSingle(w); err != nil {
			t.Fatalf("%s: single server: %v", w, err)
		}
	}
	for _, q := range difftest.Dump() {
		want, err := e.runSingle(q)
		if err != nil {
			t.Fatal(err)
		}
		got, err := e.run(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if d := difftest.Diff(q, difftest.FromSQLTypes(want), difftest.FromSQLTypes(got)); d != "" {
			t.Errorf("after the writes, %s:\n%s", q, d)
		}
	}
}

func runDifferential(t *testing.T, e *testEnv, refused bool) {
	t.Helper()
	loadDiff(t, e)
	ctx := context.Background()
	corpus := difftest.Corpus()
	if len(corpus) < 200 {
		t.Fatalf("corpus has %d queries, want at least 200", len(corpus))
	}
	failed := 0
	for _, dc := range corpus {
		want, err := e.runSingle(dc.Q, dc.Args...)
		if err != nil {
			t.Errorf("%s: single server: %v", dc.Q, err)
			failed++
			continue
		}
		got, err := e.run(ctx, dc.Q, dc.Args...)
		if err != nil {
			t.Errorf("%s %v: through the shards: %v", dc.Q, dc.Args, err)
			failed++
			continue
		}
		if d := difftest.Diff(dc.Q, difftest.FromSQLTypes(want), difftest.FromSQLTypes(got)); d != "" {
			t.Errorf("%s %v:\n%s", dc.Q, dc.Args, d)
			failed++
		}
	}
	t.Logf("%d queries, %d differ", len(corpus), failed)
	if !refused {
		return
	}
	for _, q := range difftest.Refused() {
		_, err := e.run(ctx, q)
		var se *sqlerror.SQLError
		if !errors.As(err, &se) || se.Num != sqlerror.ERNotSupportedYet {
			t.Errorf("%s: got %v, want error 1235", q, err)
		}
	}
}

// loadDiff creates the schema and rows on both sides: through the planner
// for the shards (DDL broadcast, inserts split by shard key) and directly on
// the single server.
func loadDiff(t testing.TB, e *testEnv) {
	t.Helper()
	ctx := context.Background()
	for _, s := range append(difftest.Schema(), difftest.Data()...) {
		if _, err := e.run(ctx, s); err != nil {
			t.Fatalf("through the planner: %s: %v", s[:min(len(s), 120)], err)
		}
		if _, err := e.runSingle(s); err != nil {
			t.Fatalf("on the single server: %s: %v", s[:min(len(s), 120)], err)
		}
	}
}
