package engine

import (
	"context"
	"fmt"
	"strconv"

	"vitess.io/vitess/go/mysql/sqlerror"
	"vitess.io/vitess/go/sqltypes"
	querypb "vitess.io/vitess/go/vt/proto/query"
)

// SeqColumn is a column of an INSERT filled from the ID service: in every
// row when the statement leaves the column out, in the rows that give NULL
// otherwise. Explicit values are kept.
type SeqColumn struct {
	Column string
	// Tag is the ID service's tag the IDs come from.
	Tag string
	// Given are the statement's values, one per row, when it names the
	// column: the planner put SeqVar(k, i) in the row instead, and Execute
	// sets it to the value, or to a new ID when the value is NULL. A nil
	// entry is a value the planner left in the row (an expression): kept.
	// Given is nil when the statement leaves the column out.
	Given []*EvalValue
}

// SeqVar is the bind variable of row i's value of sequence column k.
func SeqVar(k, i int) string { return "__strata_seq_" + strconv.Itoa(k) + "_" + strconv.Itoa(i) }

// IDGenerator is an optional ability of a VCursor: n new IDs from an ID
// service tag, increasing, never handed out before (by this or any other
// proxy, before or after a restart).
type IDGenerator interface {
	GenerateIDs(ctx context.Context, tag string, n int) ([]int64, error)
}

// fillSequences sets the sequence columns' bind variables; first is the
// first ID generated (LAST_INSERT_ID()), nil when none was.
func (ins *Insert) fillSequences(ctx context.Context, vc VCursor, bv map[string]*querypb.BindVariable) (map[string]*querypb.BindVariable, *int64, error) {
	if len(ins.Seqs) == 0 {
		return bv, nil, nil
	}
	nbv := make(map[string]*querypb.BindVariable, len(bv)+len(ins.Seqs)*len(ins.Rows))
	for k, v := range bv {
		nbv[k] = v
	}
	var first *int64
	for k, sc := range ins.Seqs {
		var need []int
		for i := range ins.Rows {
			if sc.Given == nil {
				need = append(need, i)
				continue
			}
			g := sc.Given[i]
			if g == nil {
				continue
			}
			v, err := g.Value(bv)
			if err != nil {
				return nil, nil, err
			}
			if v.IsNull() {
				need = append(need, i)
				continue
			}
			nbv[SeqVar(k, i)] = sqltypes.ValueBindVariable(v)
		}
		if len(need) == 0 {
			continue
		}
		gen, ok := vc.(IDGenerator)
		if !ok {
			return nil, nil, sqlerror.NewSQLErrorf(sqlerror.ERNotSupportedYet, sqlerror.SSClientError,
				"This version of Strata doesn't yet support 'generating %s.%s' without an ID service: give the value, or set id_service.addrs in the proxy config", ins.Table.Name, sc.Column)
		}
		ids, err := gen.GenerateIDs(ctx, sc.Tag, len(need))
		if err != nil {
			return nil, nil, fmt.Errorf("engine: IDs for %s.%s: %w", ins.Table.Name, sc.Column, err)
		}
		if len(ids) != len(need) {
			return nil, nil, fmt.Errorf("engine: %d IDs for %d rows of %s.%s", len(ids), len(need), ins.Table.Name, sc.Column)
		}
		for j, i := range need {
			nbv[SeqVar(k, i)] = sqltypes.Int64BindVariable(ids[j])
		}
		if first == nil {
			first = &ids[0]
		}
	}
	return nbv, first, nil
}
