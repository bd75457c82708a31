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

// AggOp is how one column of partial aggregates from the shards merges.
type AggOp int

const (
	// AggCount sums partial COUNTs.
	AggCount AggOp = iota + 1
	// AggSum sums partial SUMs (NULL when every partial is NULL).
	AggSum
	AggMin
	AggMax
	// AggAvg divides the summed SumCol by the summed CountCol. Col holds the
	// shards' own AVG, whose field (type, scale) is the result's.
	AggAvg
	// AggCountDistinct counts the distinct non-NULL values of the
	// Aggregate's Distinct key in the group.
	AggCountDistinct
	// AggSumDistinct sums Col (the shards' SUM(DISTINCT x) per distinct x)
	// once per distinct value.
	AggSumDistinct
	// AggAvgDistinct is AVG(DISTINCT x): SumCol and CountCol once per distinct
	// value.
	AggAvgDistinct
)

var aggNames = map[AggOp]string{
	AggCount: "count", AggSum: "sum", AggMin: "min", AggMax: "max", AggAvg: "avg",
	AggCountDistinct: "count_distinct", AggSumDistinct: "sum_distinct", AggAvgDistinct: "avg_distinct",
}

func (o AggOp) String() string { return aggNames[o] }

// AggregateCol is one aggregate column of the pushed query.
type AggregateCol struct {
	Op               AggOp
	Col              int
	SumCol, CountCol int // AggAvg, AggAvgDistinct
	// CollCol is the COLLATION() column for MIN/MAX over text.
	CollCol int
	HasColl bool
	// ExactSum (AggSum, AggSumDistinct) says SumCol holds the partial sums
	// with every digit the server keeps (the argument divides): the result
	// is their sum rounded to Col's scale.
	ExactSum bool
}

// Aggregate merges the partial aggregates of many shards: it sorts the
// rows by the group keys (so it does not depend on the shards' order),
// then folds each run of equal keys into one row. Columns that are neither
// keys nor aggregates keep the first row's value (MySQL's "any value" for
// columns not in GROUP BY). The column layout is unchanged.
type Aggregate struct {
	Input Primitive
	// GroupBy are the group keys; none for a scalar aggregate.
	GroupBy []OrderKey
	// Distinct is the argument of the DISTINCT aggregates: the shards group
	// by it too, and it is the last sort key inside a group.
	Distinct *OrderKey
	Aggs     []AggregateCol
	// Scalar is set for an aggregate without GROUP BY: it returns one row
	// even when no shard returned any (the shards may have grouped by the
	// DISTINCT argument).
	Scalar bool
	// Empty, for a Scalar aggregate whose shards group by the DISTINCT
	// argument, is the same query over no rows (WHERE false), run on one
	// shard when no shard returned a row: its one row is the answer, with
	// the aggregates of an empty input and every other column (a constant,
	// a hidden HAVING operand) evaluated by the server. Without it COUNTs
	// are 0 and everything else NULL.
	Empty Primitive
}

// Execute implements Primitive.
func (a *Aggregate) Execute(ctx context.Context, vc VCursor, bv map[string]*querypb.BindVariable) (*sqltypes.Result, error) {
	res, err := a.Input.Execute(ctx, vc, bv)
	if err != nil {
		return nil, err
	}
	if len(res.Rows) == 0 {
		switch {
		case a.Scalar && a.Empty != nil:
			empty, err := a.Empty.Execute(ctx, vc, bv)
			if err != nil {
				return nil, err
			}
			if len(empty.Rows) != 1 || len(empty.Fields) != len(res.Fields) {
				return nil, fmt.Errorf("engine: the aggregate over no rows returned %d rows of %d columns, want 1 of %d", len(empty.Rows), len(empty.Fields), len(res.Fields))
			}
			return empty, nil
		case a.Scalar:
			return a.emptyScalar(res), nil
		}
		return res, nil
	}
	keys := a.GroupBy
	if a.Distinct != nil {
		keys = append(append([]OrderKey(nil), a.GroupBy...), *a.Distinct)
	}
	rows := res.Rows
	var cols []keyCol
	if len(keys) > 0 {
		if rows, err = sortRows(res.Fields, rows, keys, false); err != nil {
			return nil, err
		}
		if cols, err = resolveKeys(keys, res.Fields, rows[0], false); err != nil {
			return nil, err
		}
	}
	aggs, err := a.resolveAggs(res.Fields, rows[0])
	if err != nil {
		return nil, err
	}
	for _, ag := range aggs {
		if ag.ascii {
			if err := checkASCII(res.Fields, rows, []int{ag.col}); err != nil {
				return nil, err
			}
		}
	}
	ng := len(a.GroupBy)
	out := *res
	out.Rows = nil
	start := 0
	var startKeys []sortKey
	if cols != nil {
		startKeys = rowKeys(rows[0], cols)
	}
	for i := 1; i <= len(rows); i++ {
		boundary := i == len(rows)
		var k []sortKey
		if !boundary && cols != nil {
			k = rowKeys(rows[i], cols)
			boundary = compareRows(k[:ng], startKeys[:ng], cols[:ng]) != 0
		}
		if boundary {
			row, err := a.fold(res.Fields, rows[start:i], aggs, cols)
			if err != nil {
				return nil, err
			}
			out.Rows = append(out.Rows, row)
			start, startKeys = i, k
		}
	}
	return &out, nil
}

func (a *Aggregate) emptyScalar(res *sqltypes.Result) *sqltypes.Result {
	row := make([]sqltypes.Value, len(res.Fields))
	for i := range row {
		row[i] = sqltypes.NULL
	}
	for _, ag := range a.Aggs {
		c := resolveCol(ag.Col, len(row))
		if c >= 0 && c < len(row) && (ag.Op == AggCount || ag.Op == AggCountDistinct) {
			row[c] = sqltypes.MakeTrusted(res.Fields[c].Type, []byte("0"))
		}
	}
	out := *res
	out.Rows = [][]sqltypes.Value{row}
	return &out
}

type resolvedAgg struct {
	AggregateCol
	col, sum, count int
	kind            colKind // MIN/MAX comparison
	ascii           bool    // MIN/MAX over text that compares only as ASCII
}

func (a *Aggregate) resolveAggs(fields []*querypb.Field, sample []sqltypes.Value) ([]resolvedAgg, error) {
	n := len(fields)
	out := make([]resolvedAgg, len(a.Aggs))
	for i, ag := range a.Aggs {
		r := resolvedAgg{AggregateCol: ag, col: resolveCol(ag.Col, n), sum: resolveCol(ag.SumCol, n), count: resolveCol(ag.CountCol, n)}
		if r.col < 0 || r.col >= n {
			return nil, fmt.Errorf("engine: aggregate column %d of %d", ag.Col, n)
		}
		if ag.Op == AggAvg || ag.Op == AggAvgDistinct || ag.ExactSum {
			if r.sum < 0 || r.sum >= n || r.count < 0 || r.count >= n {
				return nil, fmt.Errorf("engine: AVG helper columns %d, %d of %d", ag.SumCol, ag.CountCol, n)
			}
		}
		if ag.Op == AggMin || ag.Op == AggMax {
			k, ascii, err := columnKind(fields[r.col], OrderKey{Col: ag.Col, CollCol: ag.CollCol, HasColl: ag.HasColl}, sample, n, false)
			if err != nil {
				return nil, err
			}
			r.kind, r.ascii = k, ascii
		}
		out[i] = r
	}
	return out, nil
}

// fold merges one group's rows.
func (a *Aggregate) fold(fields []*querypb.Field, rows [][]sqltypes.Value, aggs []resolvedAgg, cols []keyCol) ([]sqltypes.Value, error) {
	out := make([]sqltypes.Value, len(rows[0]))
	copy(out, rows[0])
	// Columns outside GROUP BY: MySQL returns a value from some row of the
	// group; prefer one that is not NULL, since a shard with no rows for a
	// scalar aggregate reports NULL there.
	for c := range out {
		if out[c].IsNull() {
			for _, r := range rows[1:] {
				if !r[c].IsNull() {
					out[c] = r[c]
					break
				}
			}
		}
	}
	// newDistinct[i] is true when row i starts a new non-NULL distinct value.
	var newDistinct []bool
	if a.Distinct != nil {
		dc := cols[len(cols)-1]
		newDistinct = make([]bool, len(rows))
		var prev sortKey
		for i, r := range rows {
			k := prepare(r[dc.col], dc.kind)
			newDistinct[i] = k.class != classNull && (i == 0 || prev.class == classNull || compareKeys(&k, &prev) != 0)
			prev = k
		}
	}
	for _, ag := range aggs {
		f := fields[ag.col]
		switch ag.Op {
		case AggCount, AggCountDistinct:
			var n int64
			for i, r := range rows {
				if ag.Op == AggCountDistinct {
					if newDistinct[i] {
						n++
					}
					continue
				}
				c, err := strconv.ParseInt(r[ag.col].ToString(), 10, 64)
				if err != nil && !r[ag.col].IsNull() {
					return nil, fmt.Errorf("engine: partial COUNT %s: %w", r[ag.col].String(), err)
				}
				n += c
			}
			out[ag.col] = sqltypes.MakeTrusted(f.Type, strconv.AppendInt(nil, n, 10))
		case AggSum, AggSumDistinct:
			var s numSum
			src := ag.col
			if ag.ExactSum {
				src = ag.sum
			}
			for i, r := range rows {
				if ag.Op == AggSumDistinct && !newDistinct[i] {
					continue
				}
				if err := s.add(r[src]); err != nil {
					return nil, err
				}
			}
			out[ag.col] = s.value(f)
		case AggAvg, AggAvgDistinct:
			var s numSum
			var n int64
			for i, r := range rows {
				if ag.Op == AggAvgDistinct && !newDistinct[i] {
					continue
				}
				if err := s.add(r[ag.sum]); err != nil {
					return nil, err
				}
				c, _ := strconv.ParseInt(r[ag.count].ToString(), 10, 64)
				n += c
			}
			out[ag.col] = s.avg(n, f)
		case AggMin, AggMax:
			var best sortKey
			bestRow := -1
			for i, r := range rows {
				k := prepare(r[ag.col], ag.kind)
				if k.class == classNull {
					continue
				}
				c := 0
				if bestRow >= 0 {
					c = compareKeys(&k, &best)
				}
				if bestRow < 0 || (ag.Op == AggMin && c < 0) || (ag.Op == AggMax && c > 0) {
					best, bestRow = k, i
				}
			}
			if bestRow < 0 {
				out[ag.col] = sqltypes.NULL
			} else {
				out[ag.col] = rows[bestRow][ag.col]
			}
		}
	}
	return out, nil
}

// numSum adds partial sums: as decimals (exact, what MySQL does for
// integers and decimals) unless a partial is a float.
type numSum struct {
	any     bool
	isFloat bool
	f       float64
	d       decimal.Decimal
}

func (s *numSum) add(v sqltypes.Value) error {
	if v.IsNull() {
		return nil
	}
	if !s.any {
		s.any = true
		s.d = decimal.NewFromInt(0)
	}
	if v.IsFloat() || s.isFloat {
		f, err := strconv.ParseFloat(v.ToString(), 64)
		if err != nil {
			return fmt.Errorf("engine: partial sum %s: %w", v.String(), err)
		}
		if !s.isFloat {
			s.isFloat = true
			s.f, _ = s.d.Float64()
		}
		s.f += f
		return nil
	}
	d, err := decimal.NewFromMySQL(v.Raw())
	if err != nil {
		return fmt.Errorf("engine: partial sum %s: %w", v.String(), err)
	}
	s.d = s.d.Add(d)
	return nil
}

// value is the sum typed like the shards' SUM column.
func (s *numSum) value(f *querypb.Field) sqltypes.Value {
	if !s.any {
		return sqltypes.NULL
	}
	if sqltypes.IsFloat(f.Type) {
		if !s.isFloat {
			s.f, _ = s.d.Float64()
		}
		return sqltypes.MakeTrusted(f.Type, format.FormatFloat(s.f))
	}
	if s.isFloat {
		s.d = decimal.NewFromFloat(s.f)
	}
	return sqltypes.MakeTrusted(f.Type, []byte(s.d.StringFixed(int32(f.Decimals))))
}

// avg is sum/n typed like the shards' AVG column: DECIMAL rounded half away
// from zero to the column's scale (the argument's scale + 4, MySQL's
// div_precision_increment), or DOUBLE.
func (s *numSum) avg(n int64, f *querypb.Field) sqltypes.Value {
	if !s.any || n == 0 {
		return sqltypes.NULL
	}
	if sqltypes.IsFloat(f.Type) {
		if !s.isFloat {
			s.f, _ = s.d.Float64()
		}
		return sqltypes.MakeTrusted(f.Type, format.FormatFloat(s.f/float64(n)))
	}
	if s.isFloat {
		s.d = decimal.NewFromFloat(s.f)
	}
	q := s.d.Div(decimal.NewFromInt(n), int32(f.Decimals)+9)
	return sqltypes.MakeTrusted(f.Type, []byte(q.StringFixed(int32(f.Decimals))))
}

// Explain implements Primitive.
func (a *Aggregate) Explain() []ExplainRow {
	var parts []string
	if len(a.GroupBy) > 0 {
		parts = append(parts, "group by "+describeKeys(a.GroupBy))
	} else {
		parts = append(parts, "scalar")
	}
	if a.Distinct != nil {
		parts = append(parts, fmt.Sprintf("distinct col %d", a.Distinct.Col))
	}
	for _, ag := range a.Aggs {
		s := fmt.Sprintf("%s(col %d)", ag.Op, ag.Col)
		if ag.Op == AggAvg || ag.Op == AggAvgDistinct {
			s = fmt.Sprintf("%s(col %d = sum col %d / count col %d)", ag.Op, ag.Col, ag.SumCol, ag.CountCol)
		}
		parts = append(parts, s)
	}
	if a.Empty != nil {
		return nest(ExplainRow{Operator: "Aggregate", Detail: strings.Join(parts, ", ") + "; over no rows: the second input"}, a.Input, a.Empty)
	}
	return nest(ExplainRow{Operator: "Aggregate", Detail: strings.Join(parts, ", ")}, a.Input)
}
