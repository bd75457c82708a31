package executor

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/strata-db/strata/shardproxy/mysqlerr"
	querypb "vitess.io/vitess/go/vt/proto/query"
	"vitess.io/vitess/go/vt/sqlparser"
)

// TestNormalizerPanic: a panic of vitess's normalizer (here on SELECT ...
// INTO @v, which planFor refuses before normalizing) refuses the statement
// with 1235.
func TestNormalizerPanic(t *testing.T) {
	srv := &Executor{log: slog.New(slog.DiscardHandler)}
	stmt, known, err := sqlparser.NewTestParser().Parse2("SELECT 1 INTO @v")
	if err != nil {
		t.Fatal(err)
	}
	_, err = srv.normalize(stmt, known, map[string]*querypb.BindVariable{}, "demo")
	if se := mysqlerr.From(err); se == nil || se.Num != 1235 || !strings.Contains(se.Message, "normalizer") {
		t.Fatalf("got %v", err)
	}
}
