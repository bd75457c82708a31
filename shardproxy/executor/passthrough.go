package executor

import (
	"context"

	"vitess.io/vitess/go/sqltypes"
	querypb "vitess.io/vitess/go/vt/proto/query"
	"vitess.io/vitess/go/vt/sqlparser"

	"github.com/strata-db/strata/shardproxy/engine"
	"github.com/strata-db/strata/shardproxy/vschema"
)

// passthrough is the plan of a statement that one shard answers whole: a
// SELECT with no table (SELECT 1, NOW()), a query of information_schema or
// another system database, a statement on an unsharded database. It sends
// the normalized statement, bind variables substituted, to its shard.
type passthrough struct {
	pq    *sqlparser.ParsedQuery
	shard string
	// schemaVar, when set, names the bind variable compared with
	// table_schema (or schema_name) in an information_schema query: when
	// its value is a database of the vschema, the query goes to that
	// database's home shard, which holds its tables.
	schemaVar string
	vs        *vschema.VSchema
	read      bool
	detail    string
	// anyShard: every shard would answer alike (no table, or a system
	// database), so a session pinned to a shard by its transaction stays
	// there.
	anyShard bool
	// noTable: a SELECT of no table (and no named-lock function), which
	// starts no transaction on the server.
	noTable bool
}

// Execute implements engine.Primitive.
func (p *passthrough) Execute(ctx context.Context, vc engine.VCursor, bv map[string]*querypb.BindVariable) (*sqltypes.Result, error) {
	// A prepared statement's parameters are among bv: a DOUBLE must read
	// back as one (engine.SQLBindVars).
	sql, err := p.pq.GenerateQuery(engine.SQLBindVars(bv), nil)
	if err != nil {
		return nil, err
	}
	shard := p.shard
	if p.anyShard {
		if sp, ok := vc.(engine.ShardPreferrer); ok {
			if pref := sp.PreferredShard(); pref != "" {
				shard = pref
			}
		}
	}
	if p.schemaVar != "" {
		if v, ok := bv[p.schemaVar]; ok {
			if d := p.vs.Databases[string(v.Value)]; d != nil {
				shard = homeShard(p.vs, d)
			}
		}
	}
	res, err := vc.ExecuteShards(ctx, []engine.ShardQuery{{Shard: shard, SQL: sql, Read: p.read}})
	if err != nil {
		return nil, err
	}
	return res[0], nil
}

// Explain implements engine.Primitive.
func (p *passthrough) Explain() []engine.ExplainRow {
	shards := p.shard
	if p.schemaVar != "" {
		shards += " (or the home shard of :" + p.schemaVar + ")"
	}
	return []engine.ExplainRow{{Operator: "Passthrough", Shards: shards, Query: p.pq.Query, Detail: p.detail}}
}

// homeShard is the shard that answers for a database as a whole: an
// unsharded database's shard, or the first shard, which holds every
// sharded and reference table of a sharded database.
func homeShard(vs *vschema.VSchema, d *vschema.Database) string {
	if d != nil && !d.Sharded {
		return d.Shard
	}
	return vs.Shards[0]
}
