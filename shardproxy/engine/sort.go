package engine

import (
	"context"
	"slices"

	"vitess.io/vitess/go/sqltypes"
	querypb "vitess.io/vitess/go/vt/proto/query"
)

// Sort orders its input's rows in memory: the ORDER BY of an aggregated
// result, whose order the shards could not produce.
type Sort struct {
	Input Primitive
	Keys  []OrderKey
}

// Execute implements Primitive.
func (s *Sort) Execute(ctx context.Context, vc VCursor, bv map[string]*querypb.BindVariable) (*sqltypes.Result, error) {
	res, err := s.Input.Execute(ctx, vc, bv)
	if err != nil {
		return nil, err
	}
	if len(res.Rows) < 2 {
		return res, nil
	}
	rows, err := sortRows(res.Fields, res.Rows, s.Keys, true)
	if err != nil {
		return nil, err
	}
	out := *res
	out.Rows = rows
	return &out, nil
}

// sortRows returns the rows stably sorted by keys.
func sortRows(fields []*querypb.Field, rows [][]sqltypes.Value, keys []OrderKey, ordering bool) ([][]sqltypes.Value, error) {
	if len(rows) == 0 {
		return rows, nil
	}
	cols, err := resolveKeys(keys, fields, rows[0], ordering)
	if err != nil {
		return nil, err
	}
	if err := checkKeyText(fields, rows, cols); err != nil {
		return nil, err
	}
	type keyed struct {
		row  []sqltypes.Value
		keys []sortKey
	}
	ks := make([]keyed, len(rows))
	for i, r := range rows {
		ks[i] = keyed{r, rowKeys(r, cols)}
	}
	slices.SortStableFunc(ks, func(a, b keyed) int { return compareRows(a.keys, b.keys, cols) })
	out := make([][]sqltypes.Value, len(rows))
	for i := range ks {
		out[i] = ks[i].row
	}
	return out, nil
}

// Explain implements Primitive.
func (s *Sort) Explain() []ExplainRow {
	return nest(ExplainRow{Operator: "Sort", Detail: "in memory by " + describeKeys(s.Keys)}, s.Input)
}
