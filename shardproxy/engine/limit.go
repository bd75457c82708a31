package engine

import (
	"context"
	"fmt"
	"strconv"

	"vitess.io/vitess/go/sqltypes"
	querypb "vitess.io/vitess/go/vt/proto/query"
)

// UpperLimitVar is the bind variable a Limit sets for its input: the input's
// query ends in LIMIT :__upper_limit, offset+count, so that every shard
// returns enough rows for the global page.
const UpperLimitVar = "__upper_limit"

// Limit applies LIMIT count OFFSET offset to its input's rows.
type Limit struct {
	Input  Primitive
	Count  EvalValue
	Offset *EvalValue // nil: no offset
	// PushDown is true when the input's query uses :__upper_limit.
	PushDown bool
}

func limitValue(e *EvalValue, bv map[string]*querypb.BindVariable, what string) (uint64, error) {
	v, err := e.Value(bv)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(v.ToString(), 10, 64)
	if err != nil || !(v.IsIntegral() || v.IsText()) {
		return 0, fmt.Errorf("engine: LIMIT %s %s is not a non-negative integer", what, v.String())
	}
	return n, nil
}

// Execute implements Primitive.
func (l *Limit) Execute(ctx context.Context, vc VCursor, bv map[string]*querypb.BindVariable) (*sqltypes.Result, error) {
	count, err := limitValue(&l.Count, bv, "count")
	if err != nil {
		return nil, err
	}
	var offset uint64
	if l.Offset != nil {
		if offset, err = limitValue(l.Offset, bv, "offset"); err != nil {
			return nil, err
		}
	}
	if l.PushDown {
		upper := count + offset
		if upper < count { // overflow: every row is wanted
			upper = ^uint64(0)
		}
		nbv := make(map[string]*querypb.BindVariable, len(bv)+1)
		for k, v := range bv {
			nbv[k] = v
		}
		nbv[UpperLimitVar] = sqltypes.Uint64BindVariable(upper)
		bv = nbv
	}
	res, err := l.Input.Execute(ctx, vc, bv)
	if err != nil {
		return nil, err
	}
	n := uint64(len(res.Rows))
	start := min(offset, n)
	end := n
	if count < n-start {
		end = start + count
	}
	out := *res
	out.Rows = res.Rows[start:end]
	return &out, nil
}

// Explain implements Primitive.
func (l *Limit) Explain() []ExplainRow {
	d := "count " + l.Count.String()
	if l.Offset != nil {
		d += ", offset " + l.Offset.String()
	}
	if l.PushDown {
		d += "; shards return offset+count rows"
	}
	return nest(ExplainRow{Operator: "Limit", Detail: d}, l.Input)
}

// nest puts row above the input's rows, one level deeper.
func nest(row ExplainRow, inputs ...Primitive) []ExplainRow {
	out := []ExplainRow{row}
	for _, in := range inputs {
		for _, r := range in.Explain() {
			r.Depth++
			out = append(out, r)
		}
	}
	return out
}

// Truncate drops the hidden columns the planner added for ordering,
// grouping and collations, and renames the visible ones when the planner
// knows better names than the shards sent back.
type Truncate struct {
	Input Primitive
	// Hidden is the number of columns at the end to drop.
	Hidden int
}

// Execute implements Primitive.
func (t *Truncate) Execute(ctx context.Context, vc VCursor, bv map[string]*querypb.BindVariable) (*sqltypes.Result, error) {
	res, err := t.Input.Execute(ctx, vc, bv)
	if err != nil {
		return nil, err
	}
	return truncate(res, t.Hidden), nil
}

func truncate(res *sqltypes.Result, hidden int) *sqltypes.Result {
	if hidden == 0 || len(res.Fields) < hidden {
		return res
	}
	n := len(res.Fields) - hidden
	out := *res
	out.Fields = res.Fields[:n]
	out.Rows = make([][]sqltypes.Value, len(res.Rows))
	for i, r := range res.Rows {
		out.Rows[i] = r[:n]
	}
	return &out
}

// Explain implements Primitive.
func (t *Truncate) Explain() []ExplainRow {
	return nest(ExplainRow{Operator: "Truncate", Detail: fmt.Sprintf("drop %d hidden column(s)", t.Hidden)}, t.Input)
}
