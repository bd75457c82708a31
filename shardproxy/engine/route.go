package engine

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"

	"vitess.io/vitess/go/mysql"
	"vitess.io/vitess/go/mysql/sqlerror"
	"vitess.io/vitess/go/sqltypes"
	querypb "vitess.io/vitess/go/vt/proto/query"
	"vitess.io/vitess/go/vt/sqlparser"

	"github.com/strata-db/strata/shardproxy/vschema"
)

// Opcode says how a Route picks its shards.
type Opcode int

const (
	// Unsharded sends the query to the one shard Route.Shard.
	Unsharded Opcode = iota + 1
	// AnyShard sends a read of reference tables to one shard, picked at
	// random so that reads spread.
	AnyShard
	// EqualUnique sends the query to the shard of the key value Values[0].
	EqualUnique
	// InList sends the query to the shards of the key values in Values[0].
	InList
	// Between sends the query to the shards whose ranges meet
	// [Values[0], Values[1]] (range-sharded tables).
	Between
	// Scatter sends the query to every shard and merges the results.
	Scatter
	// AllShards sends a write (to a reference table) or DDL to every shard.
	// For the copies of reference tables (Route.Copies) the result is the
	// first shard's; for DDL over sharded tables, counts are summed.
	AllShards
)

var opcodeNames = map[Opcode]string{
	Unsharded: "Unsharded", AnyShard: "AnyShard", EqualUnique: "EqualUnique",
	InList: "InList", Between: "Between", Scatter: "Scatter", AllShards: "AllShards",
}

func (o Opcode) String() string {
	if n, ok := opcodeNames[o]; ok {
		return n
	}
	return fmt.Sprintf("Opcode(%d)", int(o))
}

// KeyCheck is another shard-key value of the same statement (in a subquery
// or a joined table) that must map to the shard the route picked; otherwise
// the statement is refused, since its parts live on different shards.
type KeyCheck struct {
	Table *vschema.Table
	Value EvalValue
}

// Route sends one query to the shards it needs and merges the results:
// rows concatenated, or merge-sorted by OrderBy; rows affected summed.
type Route struct {
	Opcode  Opcode
	VSchema *vschema.VSchema
	// Table is the sharded table whose shard key Values are compared with.
	Table  *vschema.Table
	Values []EvalValue
	// Shard is the shard of an Unsharded route.
	Shard string
	// Query is the statement sent to every chosen shard.
	Query *sqlparser.ParsedQuery
	// Read marks plain reads (see ShardQuery.Read).
	Read bool
	// OrderBy merge-sorts the shards' results, each already sorted by the
	// same keys.
	OrderBy []OrderKey
	// SameShard are key values that must map to the EqualUnique shard.
	SameShard []KeyCheck
	// ScatterSafe marks an EqualUnique statement whose results from several
	// shards may simply be concatenated (no ORDER BY, LIMIT, aggregation,
	// grouping or DISTINCT): when the key value may match rows on several
	// shards (a number against a string key), it goes to every shard;
	// otherwise that is refused with 1235.
	ScatterSafe bool
	// Desc describes the route's choice for EXPLAIN, e.g. "users.id = :id".
	Desc string
	// Copies marks an AllShards statement that changes the copies of
	// reference tables only: every copy must answer alike.
	Copies bool
	// Sub, when set, sends Query to sub-tables: each shard the route picks
	// gets one query per sub-table that may hold the rows (subtable.go).
	Sub *SubTables
}

// targets returns the (shard, sub-table) pairs of a route with sub-tables.
func (r *Route) targets(vc VCursor, bv map[string]*querypb.BindVariable, single string, multi []string) ([]target, error) {
	st := r.Sub
	shards := multi
	if shards == nil {
		shards = []string{single}
	}
	lay := st.Layout
	if r.Opcode == AllShards {
		// DDL: every sub-table, and the table of the logical name.
		return st.expand(shards, append(st.all(), logicalSub)), nil
	}
	if r.Opcode == AnyShard || r.Opcode == Unsharded {
		subs := st.all()
		if lay.Sub.By == vschema.SubMonth {
			subs = st.months(bv)
		}
		if len(subs) == 0 {
			subs = st.all()
		}
		return []target{{shard: shards[0], sub: subs[0]}}, nil
	}
	if lay.Sub.By == vschema.SubMonth {
		subs := st.months(bv)
		if len(subs) == 0 {
			// No month can match, but the client still needs the columns.
			return []target{{shard: shards[0], sub: st.all()[0]}}, nil
		}
		return st.expand(shards, subs), nil
	}
	if r.Table != nil {
		switch r.Opcode {
		case EqualUnique:
			if multi == nil {
				v, err := r.Values[0].Value(bv)
				if err != nil {
					return nil, err
				}
				sub, err := r.VSchema.KeySub(lay, v, vschema.ForRead)
				if err == nil {
					// The parts pinned by their own keys must be in the
					// same sub-table too.
					for _, c := range r.SameShard {
						cv, err := c.Value.Value(bv)
						if err != nil {
							return nil, err
						}
						if c.Table.HasSubTables() {
							if s2, err := r.VSchema.KeySub(c.Table, cv, vschema.ForRead); err != nil || s2 != sub {
								return nil, Unsupported("a statement whose parts live in different sub-tables (%s.%s = %s)", c.Table.Name, c.Table.Column, cv.String())
							}
						}
					}
					return []target{{shard: single, sub: sub}}, nil
				}
				if len(r.SameShard) > 0 {
					return nil, Unsupported("a statement with parts in sub-tables that cannot be checked to be the same (shard key %s.%s = %s)", r.Table.Name, r.Table.Column, v.String())
				}
				if errors.Is(err, vschema.ErrNoMatch) {
					return []target{{shard: single, sub: 0}}, nil
				}
			}
		case InList:
			vals, err := r.Values[0].Values(bv)
			if err != nil {
				return nil, err
			}
			seen := map[target]bool{}
			ok := true
			for _, v := range vals {
				s, err := keyShard(vc, r.VSchema, r.Table, v, vschema.ForRead)
				if errors.Is(err, vschema.ErrNoMatch) {
					continue
				}
				sub, err2 := r.VSchema.KeySub(lay, v, vschema.ForRead)
				if err != nil || err2 != nil {
					ok = false
					break
				}
				seen[target{shard: s, sub: sub}] = true
			}
			if ok {
				var out []target
				for _, s := range r.VSchema.Shards {
					for sub := 0; sub < lay.Sub.Count; sub++ {
						if seen[target{shard: s, sub: sub}] {
							out = append(out, target{shard: s, sub: sub})
						}
					}
				}
				if len(out) == 0 {
					out = []target{{shard: shards[0], sub: 0}}
				}
				return out, nil
			}
		}
	}
	return st.expand(shards, st.all()), nil
}

// shards returns the target shards: one in single (the common case, no
// allocation) or many in multi.
func (r *Route) shards(vc VCursor, bv map[string]*querypb.BindVariable) (single string, multi []string, err error) {
	switch r.Opcode {
	case Unsharded:
		return r.Shard, nil, nil
	case AnyShard:
		if p, ok := vc.(ShardPreferrer); ok {
			if s := p.PreferredShard(); s != "" && r.VSchema.ShardIndex(s) >= 0 {
				return s, nil, nil
			}
		}
		return r.VSchema.Shards[rand.IntN(len(r.VSchema.Shards))], nil, nil
	case EqualUnique:
		v, err := r.Values[0].Value(bv)
		if err != nil {
			return "", nil, err
		}
		s, kerr := keyShard(vc, r.VSchema, r.Table, v, vschema.ForRead)
		if kerr != nil {
			switch {
			case len(r.SameShard) > 0:
				return "", nil, Unsupported("a statement with parts on shards that cannot be checked to be the same (shard key %s.%s = %s)", r.Table.Name, r.Table.Column, v.String())
			case errors.Is(kerr, vschema.ErrNoMatch):
				// No row matches (NULL, a fraction, a key outside every
				// range): every shard gives the same empty answer.
				return r.VSchema.Shards[0], nil, nil
			case r.ScatterSafe:
				return "", r.VSchema.Shards, nil
			}
			return "", nil, Unsupported("comparing shard key %s.%s with %s, which may match rows on several shards, in a query that cannot be merged across shards (compare it with a value of the key's type)", r.Table.Name, r.Table.Column, v.String())
		}
		for _, c := range r.SameShard {
			v, err := c.Value.Value(bv)
			if err != nil {
				return "", nil, err
			}
			s2, err := keyShard(vc, r.VSchema, c.Table, v, vschema.ForRead)
			if err != nil || s2 != s {
				return "", nil, Unsupported("a statement whose parts live on different shards (%s.%s = %s)", c.Table.Name, c.Table.Column, v.String())
			}
		}
		return s, nil, nil
	case InList:
		vals, err := r.Values[0].Values(bv)
		if err != nil {
			return "", nil, err
		}
		seen := make(map[string]bool, len(r.VSchema.Shards))
		for _, v := range vals {
			s, err := keyShard(vc, r.VSchema, r.Table, v, vschema.ForRead)
			if err != nil {
				if errors.Is(err, vschema.ErrNoMatch) {
					continue // NULL, a fraction: matches no key
				}
				return "", r.VSchema.Shards, nil
			}
			seen[s] = true
		}
		for _, s := range r.VSchema.Shards {
			if seen[s] {
				multi = append(multi, s)
			}
		}
		if len(multi) == 0 {
			// Nothing can match, but the client still needs the columns.
			return r.VSchema.Shards[0], nil, nil
		}
		return "", multi, nil
	case Between:
		lo, err1 := r.Values[0].Value(bv)
		hi, err2 := r.Values[1].Value(bv)
		if err1 != nil || err2 != nil {
			return "", nil, errors.Join(err1, err2)
		}
		l, err1 := vschema.RangeKey(lo)
		h, err2 := vschema.RangeKey(hi)
		if err1 != nil || err2 != nil || lo.IsNull() || hi.IsNull() {
			return "", r.VSchema.Shards, nil
		}
		multi = vschema.RangeShards(r.Table, l, h)
		if len(multi) == 0 {
			return r.VSchema.Shards[0], nil, nil
		}
		return "", multi, nil
	case Scatter, AllShards:
		return "", r.VSchema.Shards, nil
	}
	return "", nil, fmt.Errorf("engine: route opcode %v", r.Opcode)
}

// Execute implements Primitive.
func (r *Route) Execute(ctx context.Context, vc VCursor, bv map[string]*querypb.BindVariable) (*sqltypes.Result, error) {
	single, multi, err := r.shards(vc, bv)
	if err != nil {
		return nil, err
	}
	if r.Sub != nil {
		return r.executeSub(ctx, vc, bv, single, multi)
	}
	if sl, ok := vc.(ScratchLender); ok && (multi == nil || len(multi) == 1) {
		if multi != nil {
			single = multi[0]
		}
		qs, ok, err := sl.Scratch().oneQuery(r.Query, SQLBindVars(bv), single, r.Read)
		if err != nil {
			return nil, fmt.Errorf("engine: %w", err)
		}
		if ok {
			res, err := vc.ExecuteShards(ctx, qs)
			if err != nil {
				return nil, err
			}
			return res[0], nil
		}
	}
	sql, err := r.Query.GenerateQuery(SQLBindVars(bv), nil)
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	if multi == nil || len(multi) == 1 {
		if multi != nil {
			single = multi[0]
		}
		res, err := vc.ExecuteShards(ctx, []ShardQuery{{Shard: single, SQL: sql, Read: r.Read}})
		if err != nil {
			return nil, err
		}
		return res[0], nil
	}
	qs := make([]ShardQuery, len(multi))
	for i, s := range multi {
		qs[i] = ShardQuery{Shard: s, SQL: sql, Read: r.Read}
	}
	results, err := vc.ExecuteShards(ctx, qs)
	if err != nil {
		return nil, err
	}
	r.foldWarnings(vc, len(results))
	if r.Copies {
		return sameEverywhere(multi, results)
	}
	return mergeResults(results, r.OrderBy)
}

// executeSub runs the route over its sub-table targets.
func (r *Route) executeSub(ctx context.Context, vc VCursor, bv map[string]*querypb.BindVariable, single string, multi []string) (*sqltypes.Result, error) {
	ts, err := r.targets(vc, bv, single, multi)
	if err != nil {
		return nil, err
	}
	sbv := SQLBindVars(bv)
	qs := make([]ShardQuery, len(ts))
	for i, t := range ts {
		sql, err := r.Query.GenerateQuery(sbv, r.Sub.extras(t))
		if err != nil {
			return nil, fmt.Errorf("engine: %w", err)
		}
		qs[i] = ShardQuery{Shard: t.shard, SQL: sql, Read: r.Read, Tables: r.Sub.physical(t)}
	}
	results, err := vc.ExecuteShards(ctx, qs)
	if err != nil {
		return nil, err
	}
	if len(results) == 1 {
		return results[0], nil
	}
	r.foldWarnings(vc, len(results))
	return mergeResults(results, r.OrderBy)
}

// foldWarnings tells vc that its last n queries were one statement on
// every shard, for a statement AllShards sends.
func (r *Route) foldWarnings(vc VCursor, n int) {
	if wf, ok := vc.(WarningFolder); ok && r.Opcode == AllShards {
		wf.FoldWarnings(n)
	}
}

// sameEverywhere returns the first shard's answer to a statement every
// shard ran on its copy (a write to a reference table, DDL), after checking
// that every copy answered alike: copies that changed a different number
// of rows, or assigned different AUTO_INCREMENT ids, no longer hold the
// same rows, and one shard's count would hide that.
func sameEverywhere(shards []string, results []*sqltypes.Result) (*sqltypes.Result, error) {
	first := results[0]
	for i, r := range results[1:] {
		if r.RowsAffected != first.RowsAffected || r.InsertID != first.InsertID {
			return nil, sqlerror.NewSQLErrorf(sqlerror.ERUnknownError, sqlerror.SSUnknownSQLState,
				"the copies of a reference table answered differently (%s: %d rows affected, insert id %d; %s: %d rows affected, insert id %d): they do not hold the same rows, and the statement ran on every copy",
				shards[0], first.RowsAffected, first.InsertID, shards[i+1], r.RowsAffected, r.InsertID)
		}
	}
	return first, nil
}

// mergeResults combines the results of many shards: rows concatenated (or
// merge-sorted when keys are given), counts summed (affected rows and the
// counts of the info text).
func mergeResults(results []*sqltypes.Result, keys []OrderKey) (*sqltypes.Result, error) {
	out := &sqltypes.Result{}
	total := 0
	for _, r := range results {
		if out.Fields == nil && r.Fields != nil {
			out.Fields = r.Fields
		}
		out.RowsAffected += r.RowsAffected
		if r.Info != "" {
			out.Info = SumInfo(out.Info, r.Info)
		}
		// One server would have scanned them all without an index.
		out.StatusFlags |= r.StatusFlags & (mysql.ServerStatusNoGoodIndexUsed | mysql.ServerStatusNoIndexUsed)
		if out.InsertID == 0 && r.InsertID != 0 {
			out.InsertID = r.InsertID
			out.InsertIDChanged = r.InsertIDChanged
		}
		total += len(r.Rows)
	}
	if total == 0 {
		return out, nil
	}
	out.Rows = make([][]sqltypes.Value, 0, total)
	if len(keys) == 0 {
		for _, r := range results {
			out.Rows = append(out.Rows, r.Rows...)
		}
		return out, nil
	}
	var sample []sqltypes.Value
	for _, r := range results {
		if len(r.Rows) > 0 {
			sample = r.Rows[0]
			break
		}
	}
	cols, err := resolveKeys(keys, out.Fields, sample, true)
	if err != nil {
		return nil, err
	}
	for _, r := range results {
		if err := checkKeyText(out.Fields, r.Rows, cols); err != nil {
			return nil, err
		}
	}
	h := &mergeHeap{cols: cols}
	for _, r := range results {
		if len(r.Rows) == 0 {
			continue
		}
		s := &mergeStream{rows: r.Rows}
		s.keys, s.buf = rowKeysInto(nil, nil, s.rows[0], cols)
		h.streams = append(h.streams, s)
	}
	heap.Init(h)
	for h.Len() > 0 {
		s := h.streams[0]
		out.Rows = append(out.Rows, s.rows[s.pos])
		s.pos++
		if s.pos == len(s.rows) {
			heap.Pop(h)
			continue
		}
		// The head's keys are no longer needed: reuse their memory.
		s.keys, s.buf = rowKeysInto(s.keys, s.buf, s.rows[s.pos], cols)
		heap.Fix(h, 0)
	}
	return out, nil
}

type mergeStream struct {
	rows [][]sqltypes.Value
	pos  int
	keys []sortKey
	buf  []byte // the weight strings of keys
}

// mergeHeap is a k-way merge over sorted shard results. Ties go to the
// earlier shard, so the merge is stable.
type mergeHeap struct {
	streams []*mergeStream
	cols    []keyCol
}

func (h *mergeHeap) Len() int { return len(h.streams) }
func (h *mergeHeap) Less(i, j int) bool {
	return compareRows(h.streams[i].keys, h.streams[j].keys, h.cols) < 0
}
func (h *mergeHeap) Swap(i, j int) { h.streams[i], h.streams[j] = h.streams[j], h.streams[i] }
func (h *mergeHeap) Push(x any)    { h.streams = append(h.streams, x.(*mergeStream)) }
func (h *mergeHeap) Pop() any {
	n := len(h.streams)
	x := h.streams[n-1]
	h.streams = h.streams[:n-1]
	return x
}

// Explain implements Primitive.
func (r *Route) Explain() []ExplainRow {
	row := ExplainRow{Operator: "Route", Query: r.Query.Query}
	if r.Sub != nil {
		row.Query = r.Sub.explainText(r.Query.Query)
	}
	switch r.Opcode {
	case Unsharded:
		row.Shards = r.Shard
	case AnyShard:
		row.Shards = "any"
	case Scatter, AllShards:
		row.Shards = "all"
	default:
		row.Shards = fmt.Sprintf("%s(%s)", r.Table.Func, r.Desc)
	}
	detail := []string{r.Opcode.String()}
	if len(r.OrderBy) > 0 {
		detail = append(detail, "merge sort by "+describeKeys(r.OrderBy))
	}
	if r.Sub != nil {
		detail = append(detail, r.Sub.describe())
	}
	if len(r.SameShard) > 0 {
		detail = append(detail, fmt.Sprintf("%d more key(s) must be on the same shard", len(r.SameShard)))
	}
	row.Detail = strings.Join(detail, "; ")
	return []ExplainRow{row}
}

func describeKeys(keys []OrderKey) string {
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("col %d", k.Col)
		if k.Desc {
			parts[i] += " desc"
		}
	}
	return strings.Join(parts, ", ")
}
