package difftest

import (
	"database/sql"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"vitess.io/vitess/go/mysql/collations/colldata"
	"vitess.io/vitess/go/sqltypes"
	querypb "vitess.io/vitess/go/vt/proto/query"
	"vitess.io/vitess/go/vt/sqlparser"
)

// Result is a query result in a form both client libraries produce.
type Result struct {
	Names []string
	Types []string
	float []bool
	text  []bool
	Rows  [][]*string // nil is NULL
}

// FromSQLTypes converts a vitess result.
func FromSQLTypes(r *sqltypes.Result) *Result {
	out := &Result{}
	for _, f := range r.Fields {
		out.Names = append(out.Names, f.Name)
		out.Types = append(out.Types, fmt.Sprintf("%v(%d)", f.Type, f.Decimals))
		out.float = append(out.float, f.Type == querypb.Type_FLOAT64 || f.Type == querypb.Type_FLOAT32)
		out.text = append(out.text, sqltypes.IsText(f.Type))
	}
	for _, row := range r.Rows {
		vals := make([]*string, len(row))
		for i, v := range row {
			if !v.IsNull() {
				s := v.ToString()
				vals[i] = &s
			}
		}
		out.Rows = append(out.Rows, vals)
	}
	return out
}

// FromRows reads a database/sql result to the end.
func FromRows(rows *sql.Rows) (*Result, error) {
	defer rows.Close()
	cts, err := rows.ColumnTypes()
	if err != nil {
		return nil, err
	}
	out := &Result{}
	for _, ct := range cts {
		t := ct.DatabaseTypeName()
		out.float = append(out.float, t == "DOUBLE" || t == "FLOAT")
		out.text = append(out.text, strings.Contains(t, "CHAR") || strings.Contains(t, "TEXT"))
		if _, scale, ok := ct.DecimalSize(); ok {
			t = fmt.Sprintf("%s(%d)", t, scale)
		}
		out.Names = append(out.Names, ct.Name())
		out.Types = append(out.Types, t)
	}
	for rows.Next() {
		raw := make([]sql.RawBytes, len(cts))
		ptrs := make([]any, len(cts))
		for i := range raw {
			ptrs[i] = &raw[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		vals := make([]*string, len(cts))
		for i, b := range raw {
			if b != nil {
				s := string(b)
				vals[i] = &s
			}
		}
		out.Rows = append(out.Rows, vals)
	}
	return out, rows.Err()
}

// Shape reports whether the query's outermost SELECT has an ORDER BY (the
// corpus only uses total orders) and whether its text values may be any of
// several spellings equal under the collation (grouping, DISTINCT, MIN/MAX
// pick one of the equal values, and which one is unspecified).
func Shape(q string) (ordered, fold bool) {
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

// Diff describes how got differs from want for query q, or returns "".
func Diff(q string, want, got *Result) string {
	return diff(q, want, got, true)
}

// DiffIgnoringNames is Diff without comparing column names.
func DiffIgnoringNames(q string, want, got *Result) string {
	return diff(q, want, got, false)
}

func diff(q string, want, got *Result, names bool) string {
	var b strings.Builder
	if names && !slices.Equal(want.Names, got.Names) {
		fmt.Fprintf(&b, "  columns %q, want %q\n", got.Names, want.Names)
	}
	if !slices.Equal(want.Types, got.Types) {
		fmt.Fprintf(&b, "  types %q, want %q\n", got.Types, want.Types)
	}
	if len(want.Names) != len(got.Names) {
		return b.String()
	}
	ordered, fold := Shape(q)
	wr, gr := want.strings(fold), got.strings(fold)
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

// strings renders rows for comparison: doubles to 10 significant digits
// (partial sums add up in another order), text folded by
// utf8mb4_general_ci when fold is set.
func (r *Result) strings(fold bool) []string {
	out := make([]string, len(r.Rows))
	ci := colldata.Lookup(45)
	for i, row := range r.Rows {
		parts := make([]string, len(row))
		for j, v := range row {
			switch {
			case v == nil:
				parts[j] = "NULL"
			case r.float[j]:
				f, _ := strconv.ParseFloat(*v, 64)
				if math.Abs(f) < 1e-9 {
					f = 0
				}
				parts[j] = strconv.FormatFloat(f, 'g', 10, 64)
			case fold && r.text[j]:
				parts[j] = fmt.Sprintf("~%x", ci.WeightString(nil, []byte(strings.TrimRight(*v, " ")), 0))
			default:
				parts[j] = *v
			}
		}
		out[i] = strings.Join(parts, " | ")
	}
	return out
}
