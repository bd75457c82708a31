package engine

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"vitess.io/vitess/go/mysql/decimal"
	"vitess.io/vitess/go/mysql/format"
	"vitess.io/vitess/go/sqltypes"
	querypb "vitess.io/vitess/go/vt/proto/query"
)

// Expr is a small expression evaluated by the proxy over merged rows: the
// HAVING clause of a query aggregated across shards. The planner compiles
// only what these nodes evaluate exactly as MySQL does and refuses the rest
// (1235); string comparisons are refused at execute time, since the
// collation would have to be known.
type Expr interface {
	eval(row []sqltypes.Value, bv map[string]*querypb.BindVariable) (sqltypes.Value, error)
	String() string
}

// ColumnExpr is a column of the row (negative counts from the end).
type ColumnExpr struct{ Col int }

// ValueExpr is a literal or bind variable.
type ValueExpr struct{ Value EvalValue }

// CompareExpr is L op R for op one of = <> < <= > >= <=>.
type CompareExpr struct {
	Op   string
	L, R Expr
}

// LogicExpr is L op R for op AND, OR or XOR.
type LogicExpr struct {
	Op   string
	L, R Expr
}

// NotExpr is NOT E.
type NotExpr struct{ E Expr }

// IsNullExpr is E IS [NOT] NULL.
type IsNullExpr struct {
	E   Expr
	Not bool
}

// InExpr is E [NOT] IN (List...).
type InExpr struct {
	E    Expr
	List []Expr
	Not  bool
}

// ArithExpr is L op R for op + - * /.
type ArithExpr struct {
	Op   string
	L, R Expr
}

// NegExpr is -E.
type NegExpr struct{ E Expr }

var (
	valTrue  = sqltypes.NewInt64(1)
	valFalse = sqltypes.NewInt64(0)
)

func boolValue(b bool) sqltypes.Value {
	if b {
		return valTrue
	}
	return valFalse
}

func (e *ColumnExpr) eval(row []sqltypes.Value, _ map[string]*querypb.BindVariable) (sqltypes.Value, error) {
	c := resolveCol(e.Col, len(row))
	if c < 0 || c >= len(row) {
		return sqltypes.NULL, fmt.Errorf("engine: column %d of %d", e.Col, len(row))
	}
	return row[c], nil
}
func (e *ColumnExpr) String() string { return fmt.Sprintf("col %d", e.Col) }

func (e *ValueExpr) eval(_ []sqltypes.Value, bv map[string]*querypb.BindVariable) (sqltypes.Value, error) {
	return e.Value.Value(bv)
}
func (e *ValueExpr) String() string { return e.Value.String() }

// compareValues compares two values as MySQL does outside any column
// collation: numbers numerically, a number with a string as doubles, dates
// and times as their canonical text. Two strings are refused.
func compareValues(a, b sqltypes.Value) (int, error) {
	ka, kb, err := comparable(a, b)
	if err != nil {
		return 0, err
	}
	return compareKeys(&ka, &kb), nil
}

func comparable(a, b sqltypes.Value) (sortKey, sortKey, error) {
	isStr := func(v sqltypes.Value) bool { return v.IsText() || v.IsBinary() }
	switch {
	case isStr(a) && isStr(b):
		return sortKey{}, sortKey{}, Unsupported("comparing strings in HAVING across shards")
	case isNum(a) && isNum(b):
		return numericKey(a), numericKey(b), nil
	case isNum(a) || isNum(b):
		if a.IsDateTime() || b.IsDateTime() {
			return sortKey{}, sortKey{}, Unsupported("comparing a date with a number in HAVING across shards")
		}
		return sortKey{class: classFloat, f: toFloat(a)}, sortKey{class: classFloat, f: toFloat(b)}, nil
	}
	return sortKey{class: classBytes, b: a.Raw()}, sortKey{class: classBytes, b: b.Raw()}, nil
}

func toFloat(v sqltypes.Value) float64 {
	f, err := strconv.ParseFloat(strings.TrimSpace(v.ToString()), 64)
	if err != nil {
		// MySQL takes the longest numeric prefix; good enough for the
		// numbers HAVING compares, and errors would be warnings there.
		s := strings.TrimSpace(v.ToString())
		for i := len(s); i > 0; i-- {
			if f, err = strconv.ParseFloat(s[:i], 64); err == nil {
				return f
			}
		}
		return 0
	}
	return f
}

func (e *CompareExpr) eval(row []sqltypes.Value, bv map[string]*querypb.BindVariable) (sqltypes.Value, error) {
	l, err := e.L.eval(row, bv)
	if err != nil {
		return sqltypes.NULL, err
	}
	r, err := e.R.eval(row, bv)
	if err != nil {
		return sqltypes.NULL, err
	}
	if e.Op == "<=>" {
		if l.IsNull() || r.IsNull() {
			return boolValue(l.IsNull() && r.IsNull()), nil
		}
	} else if l.IsNull() || r.IsNull() {
		return sqltypes.NULL, nil
	}
	c, err := compareValues(l, r)
	if err != nil {
		return sqltypes.NULL, err
	}
	switch e.Op {
	case "=", "<=>":
		return boolValue(c == 0), nil
	case "!=", "<>":
		return boolValue(c != 0), nil
	case "<":
		return boolValue(c < 0), nil
	case "<=":
		return boolValue(c <= 0), nil
	case ">":
		return boolValue(c > 0), nil
	case ">=":
		return boolValue(c >= 0), nil
	}
	return sqltypes.NULL, fmt.Errorf("engine: comparison %q", e.Op)
}
func (e *CompareExpr) String() string {
	return "(" + e.L.String() + " " + e.Op + " " + e.R.String() + ")"
}

// truth is MySQL's truth value: nil for NULL.
func truth(v sqltypes.Value) *bool {
	if v.IsNull() {
		return nil
	}
	var b bool
	if isNum(v) {
		k := numericKey(v)
		zero := sortKey{class: classInt}
		b = compareKeys(&k, &zero) != 0
	} else {
		b = toFloat(v) != 0
	}
	return &b
}

func (e *LogicExpr) eval(row []sqltypes.Value, bv map[string]*querypb.BindVariable) (sqltypes.Value, error) {
	lv, err := e.L.eval(row, bv)
	if err != nil {
		return sqltypes.NULL, err
	}
	l := truth(lv)
	switch {
	case e.Op == "AND" && l != nil && !*l:
		return valFalse, nil
	case e.Op == "OR" && l != nil && *l:
		return valTrue, nil
	}
	rv, err := e.R.eval(row, bv)
	if err != nil {
		return sqltypes.NULL, err
	}
	r := truth(rv)
	switch e.Op {
	case "AND":
		if r != nil && !*r {
			return valFalse, nil
		}
		if l == nil || r == nil {
			return sqltypes.NULL, nil
		}
		return valTrue, nil
	case "OR":
		if r != nil && *r {
			return valTrue, nil
		}
		if l == nil || r == nil {
			return sqltypes.NULL, nil
		}
		return valFalse, nil
	case "XOR":
		if l == nil || r == nil {
			return sqltypes.NULL, nil
		}
		return boolValue(*l != *r), nil
	}
	return sqltypes.NULL, fmt.Errorf("engine: logic operator %q", e.Op)
}
func (e *LogicExpr) String() string {
	return "(" + e.L.String() + " " + e.Op + " " + e.R.String() + ")"
}

func (e *NotExpr) eval(row []sqltypes.Value, bv map[string]*querypb.BindVariable) (sqltypes.Value, error) {
	v, err := e.E.eval(row, bv)
	if err != nil {
		return sqltypes.NULL, err
	}
	t := truth(v)
	if t == nil {
		return sqltypes.NULL, nil
	}
	return boolValue(!*t), nil
}
func (e *NotExpr) String() string { return "not " + e.E.String() }

func (e *IsNullExpr) eval(row []sqltypes.Value, bv map[string]*querypb.BindVariable) (sqltypes.Value, error) {
	v, err := e.E.eval(row, bv)
	if err != nil {
		return sqltypes.NULL, err
	}
	return boolValue(v.IsNull() != e.Not), nil
}
func (e *IsNullExpr) String() string {
	if e.Not {
		return e.E.String() + " is not null"
	}
	return e.E.String() + " is null"
}

func (e *InExpr) eval(row []sqltypes.Value, bv map[string]*querypb.BindVariable) (sqltypes.Value, error) {
	v, err := e.E.eval(row, bv)
	if err != nil {
		return sqltypes.NULL, err
	}
	if v.IsNull() {
		return sqltypes.NULL, nil
	}
	var items []sqltypes.Value
	for _, it := range e.List {
		if ve, ok := it.(*ValueExpr); ok && (ve.Value.List || ve.Value.Tuple != nil) {
			vals, err := ve.Value.Values(bv)
			if err != nil {
				return sqltypes.NULL, err
			}
			items = append(items, vals...)
			continue
		}
		x, err := it.eval(row, bv)
		if err != nil {
			return sqltypes.NULL, err
		}
		items = append(items, x)
	}
	sawNull := false
	for _, x := range items {
		if x.IsNull() {
			sawNull = true
			continue
		}
		c, err := compareValues(v, x)
		if err != nil {
			return sqltypes.NULL, err
		}
		if c == 0 {
			return boolValue(!e.Not), nil
		}
	}
	if sawNull {
		return sqltypes.NULL, nil
	}
	return boolValue(e.Not), nil
}
func (e *InExpr) String() string {
	parts := make([]string, len(e.List))
	for i, x := range e.List {
		parts[i] = x.String()
	}
	op := " in "
	if e.Not {
		op = " not in "
	}
	return e.E.String() + op + "(" + strings.Join(parts, ", ") + ")"
}

func (e *ArithExpr) eval(row []sqltypes.Value, bv map[string]*querypb.BindVariable) (sqltypes.Value, error) {
	l, err := e.L.eval(row, bv)
	if err != nil {
		return sqltypes.NULL, err
	}
	r, err := e.R.eval(row, bv)
	if err != nil {
		return sqltypes.NULL, err
	}
	if l.IsNull() || r.IsNull() {
		return sqltypes.NULL, nil
	}
	lk, rk := arithKey(l), arithKey(r)
	if lk.class == classFloat || rk.class == classFloat {
		a, b := lk.float(), rk.float()
		var f float64
		switch e.Op {
		case "+":
			f = a + b
		case "-":
			f = a - b
		case "*":
			f = a * b
		case "/":
			if b == 0 {
				return sqltypes.NULL, nil
			}
			f = a / b
		}
		return sqltypes.MakeTrusted(sqltypes.Float64, format.FormatFloat(f)), nil
	}
	a, b := lk.decimal(), rk.decimal()
	var d decimal.Decimal
	switch e.Op {
	case "+":
		d = a.Add(b)
	case "-":
		d = a.Sub(b)
	case "*":
		d = a.Mul(b)
	case "/":
		if b.IsZero() {
			return sqltypes.NULL, nil
		}
		d = a.Div(b, 4)
	}
	return sqltypes.MakeTrusted(sqltypes.Decimal, []byte(d.StringMySQL())), nil
}

func arithKey(v sqltypes.Value) sortKey {
	if isNum(v) {
		return numericKey(v)
	}
	return sortKey{class: classFloat, f: toFloat(v)}
}

func (e *ArithExpr) String() string {
	return "(" + e.L.String() + " " + e.Op + " " + e.R.String() + ")"
}

func (e *NegExpr) eval(row []sqltypes.Value, bv map[string]*querypb.BindVariable) (sqltypes.Value, error) {
	return (&ArithExpr{Op: "-", L: &ValueExpr{Value: LiteralValue(sqltypes.NewInt64(0))}, R: e.E}).eval(row, bv)
}
func (e *NegExpr) String() string { return "-" + e.E.String() }

// Filter keeps the rows for which Pred is true: HAVING evaluated after the
// shards' partial aggregates are merged.
type Filter struct {
	Input Primitive
	Pred  Expr
}

// Execute implements Primitive.
func (f *Filter) Execute(ctx context.Context, vc VCursor, bv map[string]*querypb.BindVariable) (*sqltypes.Result, error) {
	res, err := f.Input.Execute(ctx, vc, bv)
	if err != nil {
		return nil, err
	}
	out := *res
	out.Rows = make([][]sqltypes.Value, 0, len(res.Rows))
	for _, r := range res.Rows {
		v, err := f.Pred.eval(r, bv)
		if err != nil {
			return nil, err
		}
		if t := truth(v); t != nil && *t {
			out.Rows = append(out.Rows, r)
		}
	}
	return &out, nil
}

// Explain implements Primitive.
func (f *Filter) Explain() []ExplainRow {
	return nest(ExplainRow{Operator: "Filter", Detail: "having " + f.Pred.String()}, f.Input)
}

func isNum(v sqltypes.Value) bool { return sqltypes.IsNumber(v.Type()) }
