package planner

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"

	"vitess.io/vitess/go/mysql/collations/colldata"
	"vitess.io/vitess/go/mysql/sqlerror"
	"vitess.io/vitess/go/sqltypes"
	querypb "vitess.io/vitess/go/vt/proto/query"
	"vitess.io/vitess/go/vt/sqlparser"
)

// TestDifferential runs the corpus through the planner and engine over two
// real MariaDB shards and on one MariaDB server holding the same rows, and
// requires equal answers: column names and types, and rows (in order when
// the query orders, as multisets otherwise).
func TestDifferential(t *testing.T) {
	e := startEnv(t)
	loadDiff(t, e)
	ctx := context.Background()
	corpus := diffCorpus()
	if len(corpus) < 200 {
		t.Fatalf("corpus has %d queries, want at least 200", len(corpus))
	}
	failed := 0
	for _, dc := range corpus {
		want, err := e.runSingle(dc.q, dc.args...)
		if err != nil {
			t.Errorf("%s: single server: %v", dc.q, err)
			failed++
			continue
		}
		got, err := e.run(ctx, dc.q, dc.args...)
		if err != nil {
			t.Errorf("%s %v: through the shards: %v", dc.q, dc.args, err)
			failed++
			continue
		}
		if d := diffResults(dc.q, want, got); d != "" {
			t.Errorf("%s %v:\n%s", dc.q, dc.args, d)
			failed++
		}
	}
	t.Logf("%d queries, %d differ", len(corpus), failed)

	for _, q := range refusedCorpus() {
		_, err := e.run(ctx, q)
		var se *sqlerror.SQLError
		if !errors.As(err, &se) || se.Num != sqlerror.ERNotSupportedYet {
			t.Errorf("%s: got %v, want error 1235", q, err)
		}
	}
}

// queryShape reports whether the query's outermost SELECT has an ORDER BY
// (the corpus only uses total orders) and whether its text values may be
// any of several spellings equal under the collation (grouping, DISTINCT,
// MIN/MAX pick one of the equal values, which one is unspecified).
func queryShape(q string) (ordered, fold bool) {
	stmt, err := sqlparser.NewTestParser().Parse(q)
	if err == nil {
		if sel, ok := stmt.(*sqlparser.Select); ok {
			for _, o := range sel.OrderBy {
				if _, isNull := o.Expr.(*sqlparser.NullVal); !isNull {
					ordered = true
				}
			}
		}
	}
	lq := strings.ToLower(q)
	fold = strings.Contains(lq, "group by") || strings.Contains(lq, "distinct") || strings.Contains(lq, "min(") || strings.Contains(lq, "max(")
	return ordered, fold
}

func diffResults(q string, want, got *sqltypes.Result) string {
	var b strings.Builder
	if len(want.Fields) != len(got.Fields) {
		fmt.Fprintf(&b, "  %d columns, want %d\n", len(got.Fields), len(want.Fields))
		return b.String()
	}
	for i := range want.Fields {
		w, g := want.Fields[i], got.Fields[i]
		if w.Name != g.Name || w.Type != g.Type || w.Decimals != g.Decimals {
			fmt.Fprintf(&b, "  column %d: got %q %v dec %d, want %q %v dec %d\n", i, g.Name, g.Type, g.Decimals, w.Name, w.Type, w.Decimals)
		}
	}
	ordered, fold := queryShape(q)
	wr, gr := rowStrings(want, fold), rowStrings(got, fold)
	if !ordered {
		slices.Sort(wr)
		slices.Sort(gr)
	}
	if !slices.Equal(wr, gr) {
		fmt.Fprintf(&b, "  %d rows, want %d (ordered %v)\n", len(gr), len(wr), ordered)
		shown := 0
		for i := 0; i < max(len(wr), len(gr)) && shown < 6; i++ {
			var w, g string
			if i < len(wr) {
				w = wr[i]
			}
			if i < len(gr) {
				g = gr[i]
			}
			if w != g {
				fmt.Fprintf(&b, "  row %d: got  %s\n         want %s\n", i, g, w)
				shown++
			}
		}
	}
	return b.String()
}

// rowStrings renders rows for comparison: doubles to 10 significant digits
// (partial sums add up in another order), text folded by
// utf8mb4_general_ci when fold is set.
func rowStrings(r *sqltypes.Result, fold bool) []string {
	out := make([]string, len(r.Rows))
	ci := colldata.Lookup(45)
	for i, row := range r.Rows {
		parts := make([]string, len(row))
		for j, v := range row {
			switch {
			case v.IsNull():
				parts[j] = "NULL"
			case j < len(r.Fields) && (r.Fields[j].Type == querypb.Type_FLOAT64 || r.Fields[j].Type == querypb.Type_FLOAT32):
				f, _ := strconv.ParseFloat(v.ToString(), 64)
				if math.Abs(f) < 1e-9 {
					f = 0
				}
				parts[j] = strconv.FormatFloat(f, 'g', 10, 64)
			case fold && v.IsText():
				parts[j] = fmt.Sprintf("~%x", ci.WeightString(nil, []byte(strings.TrimRight(v.ToString(), " ")), 0))
			default:
				parts[j] = v.ToString()
			}
		}
		out[i] = strings.Join(parts, " | ")
	}
	return out
}
