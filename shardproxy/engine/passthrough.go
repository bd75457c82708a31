package engine

import (
	"context"

	"vitess.io/vitess/go/sqltypes"
	querypb "vitess.io/vitess/go/vt/proto/query"
	"vitess.io/vitess/go/vt/sqlparser"

	"github.com/strata-db/strata/shardproxy/vschema"
)

// Passthrough is the plan of a statement that one shard answers whole: a
// SELECT with no table (SELECT 1, NOW()), a query of information_schema or
// another system database, a statement on an unsharded database. It sends
// the normalized statement, bind variables substituted, to its shard.
type Passthrough struct {
	Query *sqlparser.ParsedQuery
	Shard string
	// SchemaVar, when set, names the bind variable compared with
	// table_schema (or schema_name) in an information_schema query: when
	// its value is a database of the vschema, the query goes to that
	// database's home shard, which holds its tables.
	SchemaVar string
	VSchema   *vschema.VSchema
	Read      bool
	Detail    string
	// AnyShard: every shard would answer alike (no table, or a system
	// database), so a session pinned to a shard by its transaction stays
	// there.
	AnyShard bool
	// NoTable: a SELECT of no table (and no named-lock function), which
	// starts no transaction on the server.
	NoTable bool
}

// Execute implements Primitive.
func (p *Passthrough) Execute(ctx context.Context, vc VCursor, bv map[string]*querypb.BindVariable) (*sqltypes.Result, error) {
	// A prepared statement's parameters are among bv: a DOUBLE must read
	// back as one (SQLBindVars).
	sql, err := p.Query.GenerateQuery(SQLBindVars(bv), nil)
	if err != nil {
		return nil, err
	}
	shard := p.Shard
	if p.AnyShard {
		if sp, ok := vc.(ShardPreferrer); ok {
			if pref := sp.PreferredShard(); pref != "" {
				shard = pref
			}
		}
	}
	if p.SchemaVar != "" {
		if v, ok := bv[p.SchemaVar]; ok {
			if d := p.VSchema.Databases[string(v.Value)]; d != nil {
				shard = HomeShard(p.VSchema, d)
			}
		}
	}
	res, err := vc.ExecuteShards(ctx, []ShardQuery{{Shard: shard, SQL: sql, Read: p.Read}})
	if err != nil {
		return nil, err
	}
	return res[0], nil
}

// Explain implements Primitive.
func (p *Passthrough) Explain() []ExplainRow {
	shards := p.Shard
	if p.SchemaVar != "" {
		shards += " (or the home shard of :" + p.SchemaVar + ")"
	}
	return []ExplainRow{{Operator: "Passthrough", Shards: shards, Query: p.Query.Query, Detail: p.Detail}}
}

// HomeShard is the shard that answers for a database as a whole: an
// unsharded database's shard, or the first shard, which holds every
// sharded and reference table of a sharded database.
func HomeShard(vs *vschema.VSchema, d *vschema.Database) string {
	if d != nil && !d.Sharded {
		return d.Shard
	}
	return vs.Shards[0]
}
