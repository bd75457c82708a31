package executor

import (
	"context"

	"vitess.io/vitess/go/sqltypes"
	querypb "vitess.io/vitess/go/vt/proto/query"
	"vitess.io/vitess/go/vt/sqlparser"

	"github.com/strata-db/strata/shardproxy/engine"
	"github.com/strata-db/strata/shardproxy/mysqlerr"
	"github.com/strata-db/strata/shardproxy/planner"
	"github.com/strata-db/strata/shardproxy/vschema"
)

// returning runs INSERT, REPLACE or DELETE with MariaDB's RETURNING clause,
// which vitess's parser does not read: the statement without the clause is
// planned as usual and its plan runs with the clause appended to every
// statement it sends a shard (engine.Returning), the rows of the shards
// merged.
func (s *Session) returning(ctx context.Context, sql, base, clause string) (stmtKind, *sqltypes.Result, error) {
	stmt, known, err := s.srv.parse(base)
	if err != nil {
		return kindOther, nil, err
	}
	var table sqlparser.TableName
	switch st := stmt.(type) {
	case *sqlparser.Insert:
		table, _ = st.Table.TableName()
	case *sqlparser.Delete:
		if len(st.TableExprs) == 1 && len(st.Targets) == 0 {
			if at, ok := st.TableExprs[0].(*sqlparser.AliasedTableExpr); ok {
				table, _ = at.TableName()
			}
		}
	default:
		return kindOther, nil, mysqlerr.SyntaxErrorAt(sql, len(base))
	}
	s.ClearWarnings()
	bv := map[string]*querypb.BindVariable{}
	cp, err := s.planFor(stmt, known, bv)
	if err != nil {
		return kindOf(stmt), nil, err
	}
	ret := planner.WithReturning(&engine.Plan{Root: cp.plan, Facts: cp.facts}, clause, s.isReference(table))
	rp := &cachedPlan{
		plan:       ret.Root,
		facts:      ret.Facts,
		needs:      cp.needs,
		kind:       cp.kind,
		normalized: cp.normalized + clause,
	}
	res, err := s.execPlan(ctx, rp, bv, sql)
	return rp.kind, res, err
}

// isReference reports whether a table the session names is a reference
// table, of which every shard has a copy.
func (s *Session) isReference(t sqlparser.TableName) bool {
	db := s.DB
	if !t.Qualifier.IsEmpty() {
		db = t.Qualifier.String()
	}
	d := s.srv.vs.Databases[db]
	if d == nil || !d.Sharded {
		return false
	}
	tb := d.Tables[t.Name.String()]
	return tb != nil && tb.Kind == vschema.Reference
}
