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
	e := startEnv(t)
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
