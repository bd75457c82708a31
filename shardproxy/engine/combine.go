package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"

	"vitess.io/vitess/go/mysql/sqlerror"
	"vitess.io/vitess/go/sqltypes"
	querypb "vitess.io/vitess/go/vt/proto/query"

	"github.com/strata-db/strata/shardproxy/hotrow"
)

// Combine runs an autocommit UPDATE t SET c = c + ? [, d = d - ?] WHERE
// key = ? of a table that opted in to write combining: the session's
// hot-row combiner (HotRows) folds it with the concurrent updates of the
// same row into one statement per round. Each caller gets its own OK
// (affected rows as alone) only once the round's statement has returned,
// i.e. committed; when the combined statement fails, each runs Route alone.
// A session without a combiner (in a transaction, say) runs Route.
type Combine struct {
	// Route is the statement as planned: it picks the row's shard and
	// sub-table, and runs the statement alone.
	Route *Route
	// Cols are the updated columns, Neg marks c = c - ?, and Deltas are
	// the values added or subtracted.
	Cols   []string
	Neg    []bool
	Deltas []EvalValue
	// KeyCol is the primary-key (shard-key) column of the WHERE.
	KeyCol string
	// DB is the table's database.
	DB string
}

// HotRows is an optional ability of a VCursor: the hot-row combiner, when
// the session may use it now (autocommit, no transaction, nothing
// reserved), nil otherwise.
type HotRows interface {
	HotRowCombiner() *HotCombiner
}

// HotCombiner combines hot-row writes (package hotrow) into statements.
type HotCombiner = hotrow.Combiner[HotWrite, *sqltypes.Result]

// NewHotCombiner returns the combiner a server shares among its sessions.
var NewHotCombiner = hotrow.New[HotWrite, *sqltypes.Result]

// HotWrite is one caller's update in a round.
type HotWrite struct {
	// Deltas are the signed integer deltas per column.
	Deltas []int64
}

// Execute implements Primitive.
func (c *Combine) Execute(ctx context.Context, vc VCursor, bv map[string]*querypb.BindVariable) (*sqltypes.Result, error) {
	var comb *HotCombiner
	if hr, ok := vc.(HotRows); ok {
		comb = hr.HotRowCombiner()
	}
	if comb == nil {
		return c.Route.Execute(ctx, vc, bv)
	}
	w, shard, table, keyLit, ok := c.prepare(vc, bv)
	if !ok {
		return c.Route.Execute(ctx, vc, bv)
	}
	var b strings.Builder
	b.WriteString(shard)
	b.WriteByte(0)
	b.WriteString(table)
	b.WriteByte(0)
	b.WriteString(strings.Join(c.Cols, ","))
	b.WriteByte(0)
	b.WriteString(keyLit)
	res, err := comb.Do(ctx, hotrow.Key(b.String()), w, func(ctx context.Context, ws []HotWrite) (*sqltypes.Result, error) {
		return c.round(ctx, vc, shard, table, keyLit, ws)
	})
	if errors.Is(err, hotrow.ErrFallback) {
		return c.Route.Execute(ctx, vc, bv)
	}
	if err != nil {
		return nil, err
	}
	return &sqltypes.Result{RowsAffected: res.RowsAffected, Info: res.Info, StatusFlags: res.StatusFlags}, nil
}

// prepare finds the row's shard and table, and the integer deltas; ok is
// false when the statement runs alone (a delta that is not an integer,
// whose rounding per statement combining would change; a key that does not
// name one row's place).
func (c *Combine) prepare(vc VCursor, bv map[string]*querypb.BindVariable) (w HotWrite, shard, table, keyLit string, ok bool) {
	r := c.Route
	single, multi, err := r.shards(vc, bv)
	if err != nil || multi != nil || r.Opcode != EqualUnique {
		return w, "", "", "", false
	}
	name := r.Table.Name
	if r.Sub != nil {
		ts, err := r.targets(vc, bv, single, nil)
		if err != nil || len(ts) != 1 {
			return w, "", "", "", false
		}
		name = r.Sub.Layout.SubName(name, ts[0].sub)
	}
	var tb strings.Builder
	tableName(c.DB, name).EncodeSQL(&tb)
	kv, err := r.Values[0].Value(bv)
	if err != nil || !kv.IsIntegral() && !kv.IsText() {
		return w, "", "", "", false
	}
	var kb strings.Builder
	kv.EncodeSQLStringBuilder(&kb)
	w.Deltas = make([]int64, len(c.Deltas))
	for i, d := range c.Deltas {
		v, err := d.Value(bv)
		if err != nil || !v.IsSigned() {
			return w, "", "", "", false
		}
		n, err := v.ToInt64()
		if err != nil || n == math.MinInt64 {
			return w, "", "", "", false
		}
		if c.Neg[i] {
			n = -n
		}
		w.Deltas[i] = n
	}
	return w, single, tb.String(), kb.String(), true
}

// round runs one round: UPDATE t SET c = c + 3 + 1 - 2 WHERE key = k, the
// additions first (so a lower bound that the final value meets holds
// after every step too, as in some serial order of the callers).
func (c *Combine) round(ctx context.Context, vc VCursor, shard, table, keyLit string, ws []HotWrite) (*sqltypes.Result, error) {
	var b strings.Builder
	b.WriteString("update ")
	b.WriteString(table)
	b.WriteString(" set ")
	change := false
	for j, col := range c.Cols {
		if j > 0 {
			b.WriteString(", ")
		}
		var cb strings.Builder
		tableName("", col).EncodeSQL(&cb)
		b.WriteString(cb.String())
		b.WriteString(" = ")
		b.WriteString(cb.String())
		var net int64
		for _, pass := range []bool{true, false} {
			for _, w := range ws {
				d := w.Deltas[j]
				if (d >= 0) != pass {
					continue
				}
				if d >= 0 {
					fmt.Fprintf(&b, " + %d", d)
				} else {
					fmt.Fprintf(&b, " - %d", -d)
				}
				net += d // wraps only for absurd deltas: then it is "a change"
			}
		}
		if net != 0 {
			change = true
		}
	}
	if !change && len(ws) > 1 {
		// No net change: the server would say 0 rows changed, while each
		// statement alone changes the row.
		return nil, hotrow.Alone(errors.New("engine: combined writes cancel out"))
	}
	b.WriteString(" where ")
	tableName("", c.KeyCol).EncodeSQL(&b)
	b.WriteString(" = ")
	b.WriteString(keyLit)
	res, err := vc.ExecuteShards(ctx, []ShardQuery{{Shard: shard, SQL: b.String()}})
	if err != nil {
		var se *sqlerror.SQLError
		if errors.As(err, &se) && (se.Num < 2000 || se.Num >= 3000) {
			// The server refused the statement: it had no effect.
			return nil, hotrow.Alone(err)
		}
		return nil, err
	}
	return res[0], nil
}

// Explain implements Primitive.
func (c *Combine) Explain() []ExplainRow {
	ops := make([]string, len(c.Cols))
	for i, col := range c.Cols {
		op := "+"
		if c.Neg[i] {
			op = "-"
		}
		ops[i] = fmt.Sprintf("%s %s %s", col, op, c.Deltas[i])
	}
	out := []ExplainRow{{Operator: "Combine", Detail: "hot-row writes combined per round by " + c.KeyCol + ": " + strings.Join(ops, ", ")}}
	for _, r := range c.Route.Explain() {
		r.Depth++
		out = append(out, r)
	}
	return out
}
