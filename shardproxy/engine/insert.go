package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"vitess.io/vitess/go/mysql/sqlerror"
	"vitess.io/vitess/go/sqltypes"
	querypb "vitess.io/vitess/go/vt/proto/query"
	"vitess.io/vitess/go/vt/sqlparser"

	"github.com/strata-db/strata/shardproxy/mysqlerr"
	"github.com/strata-db/strata/shardproxy/vschema"
)

// Insert splits a (multi-row) INSERT or REPLACE into a sharded table by the
// shard key of each row and sends each shard its rows in one statement.
//
// Across shards the statement is not atomic outside a transaction: if one
// shard fails, the rows sent to another may stay. (The proxy refuses a
// transaction over two shards until the coordinator makes that atomic.)
//
// A statement without the shard-key column (GenerateKeys) asks the session
// for keys: the seam for the ID service. A session that cannot generate
// them (no KeyGenerator) gets error 1235. An explicit NULL key is refused.
type Insert struct {
	VSchema *vschema.VSchema
	DB      string
	Table   *vschema.Table
	// Prefix is "insert into t(c1, c2) values " (with modifiers).
	Prefix string
	// Rows are the row tuples "(v1, v2)", one per row.
	Rows []*sqlparser.ParsedQuery
	// Keys are the shard-key values, one per row.
	Keys []EvalValue
	// Suffix is " on duplicate key update ..." or nil.
	Suffix *sqlparser.ParsedQuery
	// GenerateKeys is set when the statement leaves out the shard key: the
	// planner appended the key column to Prefix and a bind variable
	// GeneratedKeyVar(i) to row i, which Execute fills from the session's
	// KeyGenerator.
	GenerateKeys bool
	// Sub, when set, splits the rows over sub-tables too: Prefix names the
	// table as the bind variable Sub.Names[0].Var, and Months holds each
	// row's value of the month column (sub-tables by month).
	Sub    *SubTables
	Months []EvalValue
	// Seqs are the columns filled from the ID service (sequence.go).
	Seqs []SeqColumn
}

// ignores reports whether the statement is INSERT IGNORE.
func (ins *Insert) ignores() bool {
	p := strings.ToLower(ins.Prefix)
	i := strings.Index(p, " into ")
	return i > 0 && strings.Contains(p[:i], "ignore")
}

// KeyGenerator is an optional ability of a VCursor: it hands out n new
// keys for a table whose INSERT leaves the shard key out (the ID service).
type KeyGenerator interface {
	GenerateKeys(ctx context.Context, db, table string, n int) ([]int64, error)
}

// GeneratedKeyVar is the bind variable of row i's generated key.
func GeneratedKeyVar(i int) string { return "__strata_key_" + strconv.Itoa(i) }

// Execute implements Primitive.
func (ins *Insert) Execute(ctx context.Context, vc VCursor, bv map[string]*querypb.BindVariable) (*sqltypes.Result, error) {
	var firstKey int64
	if ins.GenerateKeys {
		kg, ok := vc.(KeyGenerator)
		if !ok {
			return nil, Unsupported("INSERT into sharded table %s without its shard key column %s: no ID service generates keys for this session", ins.Table.Name, ins.Table.Column)
		}
		keys, err := kg.GenerateKeys(ctx, ins.DB, ins.Table.Name, len(ins.Rows))
		if err != nil {
			return nil, fmt.Errorf("engine: keys for %s: %w", ins.Table.Name, err)
		}
		if len(keys) != len(ins.Rows) {
			return nil, fmt.Errorf("engine: %d keys for %d rows of %s", len(keys), len(ins.Rows), ins.Table.Name)
		}
		nbv := make(map[string]*querypb.BindVariable, len(bv)+len(keys))
		for k, v := range bv {
			nbv[k] = v
		}
		for i, k := range keys {
			nbv[GeneratedKeyVar(i)] = sqltypes.Int64BindVariable(k)
		}
		bv, firstKey = nbv, keys[0]
	}
	bv, firstID, err := ins.fillSequences(ctx, vc, bv)
	if err != nil {
		return nil, err
	}
	byShard := make(map[string][]int, len(ins.VSchema.Shards))
	var firstShard string
	var subOf []int
	if ins.Sub != nil {
		subOf = make([]int, len(ins.Rows))
	}
	for i := range ins.Rows {
		v, err := ins.Keys[i].Value(bv)
		if err != nil {
			return nil, err
		}
		s, err := keyShard(vc, ins.VSchema, ins.Table, v, vschema.ForInsert)
		switch {
		case errors.Is(err, vschema.ErrNullKey):
			return nil, sqlerror.NewSQLErrorf(sqlerror.ERBadNullError, sqlerror.SSConstraintViolation,
				"Column '%s' cannot be null: it is the shard key of %s (leave the column out of the INSERT to have the ID service generate it)", ins.Table.Column, ins.Table.Name)
		case errors.Is(err, vschema.ErrNoRange):
			return nil, sqlerror.NewSQLErrorf(mysqlerr.ERNoPartitionForGivenValue, sqlerror.SSUnknownSQLState,
				"Table has no partition for value %s: no range of %s holds it", v.ToString(), ins.Table.Name)
		case err != nil:
			return nil, sqlerror.NewSQLErrorf(sqlerror.ERTruncatedWrongValueForField, sqlerror.SSUnknownSQLState,
				"Incorrect value %s for shard key '%s' of %s: %v", v.String(), ins.Table.Column, ins.Table.Name, err)
		}
		byShard[s] = append(byShard[s], i)
		if i == 0 {
			firstShard = s
		}
		if subOf != nil {
			if subOf[i], err = ins.rowSub(v, i, bv); err != nil {
				return nil, err
			}
		}
	}
	sqlbv := SQLBindVars(bv)
	var suffix string
	if ins.Suffix != nil && ins.Sub == nil {
		var err error
		if suffix, err = ins.Suffix.GenerateQuery(sqlbv, nil); err != nil {
			return nil, fmt.Errorf("engine: %w", err)
		}
	}
	qs := make([]ShardQuery, 0, len(byShard))
	counts := make([]int, 0, len(byShard)) // rows of each query
	var firstQuery int
	for _, s := range ins.VSchema.Shards { // shard order: deterministic
		rows := byShard[s]
		if len(rows) == 0 {
			continue
		}
		groups := [][]int{rows}
		var subs []int
		if subOf != nil {
			groups, subs = groupBySub(rows, subOf)
		}
		for g, rows := range groups {
			prefix, suffix := ins.Prefix, suffix
			if subs != nil {
				t := target{shard: s, sub: subs[g]}
				prefix = ins.Sub.physicalText(prefix, t)
				if ins.Suffix != nil {
					var err error
					if suffix, err = ins.Suffix.GenerateQuery(sqlbv, ins.Sub.extras(t)); err != nil {
						return nil, fmt.Errorf("engine: %w", err)
					}
				}
			}
			var b strings.Builder
			b.WriteString(prefix)
			for j, i := range rows {
				if j > 0 {
					b.WriteString(", ")
				}
				if err := ins.Rows[i].Append(&b, sqlbv, nil); err != nil {
					return nil, fmt.Errorf("engine: %w", err)
				}
				if i == 0 {
					firstQuery = len(qs)
				}
			}
			b.WriteString(suffix)
			qs = append(qs, ShardQuery{Shard: s, SQL: b.String()})
			counts = append(counts, len(rows))
		}
	}
	results, err := vc.ExecuteShards(ctx, qs)
	if err != nil {
		return nil, err
	}
	if len(ins.Rows) > 1 && len(results) > 1 {
		// One server answers several rows with an info text: a part of
		// one row got none.
		ignore := ins.ignores()
		for i, r := range results {
			if r != nil && r.Info == "" && len(r.Fields) == 0 && counts[i] == 1 {
				r.Info = insertInfo(r.RowsAffected, ignore)
			}
		}
	}
	res, err := mergeResults(results, nil)
	if err != nil {
		return nil, err
	}
	if firstID != nil {
		// LAST_INSERT_ID() is the first generated ID, as for AUTO_INCREMENT.
		res.InsertID, res.InsertIDChanged = uint64(*firstID), true
		return res, nil
	}
	if ins.GenerateKeys {
		// LAST_INSERT_ID() is the first generated key, as for AUTO_INCREMENT.
		res.InsertID, res.InsertIDChanged = uint64(firstKey), true
		return res, nil
	}
	// One server reports the AUTO_INCREMENT value of the statement's first
	// row: that is the one the first row's statement reports (it starts
	// with that row), not the first shard's.
	res.InsertID, res.InsertIDChanged = 0, false
	if results[firstQuery].InsertID != 0 && qs[firstQuery].Shard == firstShard {
		res.InsertID, res.InsertIDChanged = results[firstQuery].InsertID, results[firstQuery].InsertIDChanged
	}
	return res, nil
}

// Explain implements Primitive.
func (ins *Insert) Explain() []ExplainRow {
	var q strings.Builder
	q.WriteString(ins.Prefix)
	for i, r := range ins.Rows {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString(r.Query)
	}
	if ins.Suffix != nil {
		q.WriteString(ins.Suffix.Query)
	}
	keys := make([]string, len(ins.Keys))
	for i, k := range ins.Keys {
		keys[i] = k.String()
	}
	prefix := q.String()
	detail := ""
	if ins.Sub != nil {
		prefix = ins.Sub.explainText(prefix)
		detail = "; " + ins.Sub.describe()
	}
	for _, sq := range ins.Seqs {
		detail += fmt.Sprintf("; %s from sequence %s", sq.Column, sq.Tag)
	}
	return []ExplainRow{{
		Operator: "Insert",
		Shards:   fmt.Sprintf("%s(%s.%s)", ins.Table.Func, ins.Table.Name, ins.Table.Column),
		Query:    prefix,
		Detail:   fmt.Sprintf("%d row(s) split by shard key values %s%s%s", len(ins.Rows), strings.Join(keys, ", "), map[bool]string{true: " (generated)"}[ins.GenerateKeys], detail),
	}}
}

// rowSub is the sub-table of row i, whose shard key is v.
func (ins *Insert) rowSub(v sqltypes.Value, i int, bv map[string]*querypb.BindVariable) (int, error) {
	lay := ins.Sub.Layout
	if lay.Sub.By != vschema.SubMonth {
		sub, err := ins.VSchema.KeySub(lay, v, vschema.ForInsert)
		if err != nil {
			return 0, sqlerror.NewSQLErrorf(sqlerror.ERTruncatedWrongValueForField, "HY000",
				"Incorrect value %s for shard key '%s' of %s: %v", v.String(), ins.Table.Column, ins.Table.Name, err)
		}
		return sub, nil
	}
	mv, err := ins.Months[i].Value(bv)
	if err != nil {
		return 0, err
	}
	m, err := vschema.ValueMonth(mv)
	if err != nil {
		return 0, sqlerror.NewSQLErrorf(mysqlerr.ERNoPartitionForGivenValue, sqlerror.SSUnknownSQLState,
			"Table has no partition for value %s: column %s of %s picks its month's sub-table, and %v", mv.String(), lay.Sub.Column, ins.Table.Name, err)
	}
	if len(lay.MonthSubs(&m, &m, ins.Sub.now())) == 0 {
		return 0, sqlerror.NewSQLErrorf(mysqlerr.ERNoPartitionForGivenValue, sqlerror.SSUnknownSQLState,
			"Table has no partition for value %s: %s has sub-tables for the months from %s on, and none yet for %s", mv.ToString(), ins.Table.Name, lay.Sub.From, m)
	}
	return int(m), nil
}

// groupBySub splits rows (in order) by their sub-table, groups in
// increasing sub-table order.
func groupBySub(rows []int, subOf []int) ([][]int, []int) {
	idx := map[int]int{}
	var groups [][]int
	var subs []int
	for _, i := range rows {
		g, ok := idx[subOf[i]]
		if !ok {
			g = len(groups)
			idx[subOf[i]] = g
			groups = append(groups, nil)
			subs = append(subs, subOf[i])
		}
		groups[g] = append(groups[g], i)
	}
	order := make([]int, len(groups))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return subs[order[a]] < subs[order[b]] })
	og, os := make([][]int, len(groups)), make([]int, len(groups))
	for i, o := range order {
		og[i], os[i] = groups[o], subs[o]
	}
	return og, os
}
