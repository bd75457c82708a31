package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"vitess.io/vitess/go/mysql/sqlerror"
	"vitess.io/vitess/go/sqltypes"
	querypb "vitess.io/vitess/go/vt/proto/query"
	"vitess.io/vitess/go/vt/sqlparser"

	"github.com/strata-db/strata/shardproxy/vschema"
)

// Insert splits a (multi-row) INSERT or REPLACE into a sharded table by the
// shard key of each row and sends each shard its rows in one statement.
//
// Across shards the statement is not atomic outside a transaction: if one
// shard fails, the rows sent to another may stay. (The proxy refuses a
// transaction over two shards until the coordinator makes that atomic.)
//
// A row without a shard-key value is refused. This is where keys from the
// ID service will be generated: fill Keys before the rows are split.
type Insert struct {
	VSchema *vschema.VSchema
	Table   *vschema.Table
	// Prefix is "insert into t(c1, c2) values " (with modifiers).
	Prefix string
	// Rows are the row tuples "(v1, v2)", one per row.
	Rows []*sqlparser.ParsedQuery
	// Keys are the shard-key values, one per row.
	Keys []EvalValue
	// Suffix is " on duplicate key update ..." or nil.
	Suffix *sqlparser.ParsedQuery
}

// errCodeNoPartition is MySQL's ER_NO_PARTITION_FOR_GIVEN_VALUE, the
// closest analogue of a key outside every range.
const errCodeNoPartition = sqlerror.ErrorCode(1526)

// Execute implements Primitive.
func (ins *Insert) Execute(ctx context.Context, vc VCursor, bv map[string]*querypb.BindVariable) (*sqltypes.Result, error) {
	byShard := make(map[string][]int, len(ins.VSchema.Shards))
	for i := range ins.Rows {
		v, err := ins.Keys[i].Value(bv)
		if err != nil {
			return nil, err
		}
		s, err := ins.VSchema.KeyShard(ins.Table, v, vschema.ForInsert)
		switch {
		case errors.Is(err, vschema.ErrNullKey):
			return nil, sqlerror.NewSQLErrorf(sqlerror.ERBadNullError, "23000",
				"Column '%s' cannot be null: it is the shard key of %s (generated keys from the ID service are not available yet)", ins.Table.Column, ins.Table.Name)
		case errors.Is(err, vschema.ErrNoRange):
			return nil, sqlerror.NewSQLErrorf(errCodeNoPartition, "HY000",
				"Table has no partition for value %s: no range of %s holds it", v.ToString(), ins.Table.Name)
		case err != nil:
			return nil, sqlerror.NewSQLErrorf(sqlerror.ERTruncatedWrongValueForField, "HY000",
				"Incorrect value %s for shard key '%s' of %s: %v", v.String(), ins.Table.Column, ins.Table.Name, err)
		}
		byShard[s] = append(byShard[s], i)
	}
	var suffix string
	if ins.Suffix != nil {
		var err error
		if suffix, err = ins.Suffix.GenerateQuery(bv, nil); err != nil {
			return nil, fmt.Errorf("engine: %w", err)
		}
	}
	qs := make([]ShardQuery, 0, len(byShard))
	for _, s := range ins.VSchema.Shards { // shard order: deterministic
		rows := byShard[s]
		if len(rows) == 0 {
			continue
		}
		var b strings.Builder
		b.WriteString(ins.Prefix)
		for j, i := range rows {
			if j > 0 {
				b.WriteString(", ")
			}
			if err := ins.Rows[i].Append(&b, bv, nil); err != nil {
				return nil, fmt.Errorf("engine: %w", err)
			}
		}
		b.WriteString(suffix)
		qs = append(qs, ShardQuery{Shard: s, SQL: b.String()})
	}
	results, err := vc.ExecuteShards(ctx, qs)
	if err != nil {
		return nil, err
	}
	return mergeResults(results, nil)
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
	return []ExplainRow{{
		Operator: "Insert",
		Shards:   fmt.Sprintf("%s(%s.%s)", ins.Table.Func, ins.Table.Name, ins.Table.Column),
		Query:    q.String(),
		Detail:   fmt.Sprintf("%d row(s) split by shard key values %s", len(ins.Rows), strings.Join(keys, ", ")),
	}}
}
