package planner

import (
	"errors"

	"vitess.io/vitess/go/mysql/sqlerror"
	"vitess.io/vitess/go/vt/sqlparser"

	"github.com/strata-db/strata/shardproxy/engine"
	"github.com/strata-db/strata/shardproxy/vschema"
)

// ORMs ask whether a row exists with SELECT EXISTS(SELECT * FROM t WHERE …)
// AS `exists` (Laravel's exists()). When the subquery reads rows of several
// shards, the question splits: the subquery's rows are the union of each
// shard's rows, so EXISTS is true when it is on some shard (the MAX of the
// shards' 0/1 answers) and NOT EXISTS when it is on every shard (their MIN).

// existsShape recognizes a SELECT whose whole select list is one
// [NOT] EXISTS (subquery), with an optional alias, no FROM (or FROM DUAL)
// and no other clause. It returns the subquery and whether it is negated.
func existsShape(stmt sqlparser.TableStatement) (sub sqlparser.TableStatement, not bool, ok bool) {
	sel, isSel := stmt.(*sqlparser.Select)
	if !isSel || sel.With != nil || sel.Distinct || sel.Where != nil || sel.GroupBy != nil || sel.Having != nil ||
		len(sel.OrderBy) > 0 || sel.Limit != nil || sel.Into != nil || sel.SQLCalcFoundRows || len(sel.Windows) > 0 ||
		sel.Lock != sqlparser.NoLock || sel.SelectExprs == nil || len(sel.SelectExprs.Exprs) != 1 {
		return nil, false, false
	}
	switch len(sel.From) {
	case 0:
	case 1:
		at, isTable := sel.From[0].(*sqlparser.AliasedTableExpr)
		if !isTable || !at.As.IsEmpty() {
			return nil, false, false
		}
		tn, isName := at.Expr.(sqlparser.TableName)
		if !isName || !tn.Qualifier.IsEmpty() || tn.Name.String() != "dual" {
			return nil, false, false
		}
	default:
		return nil, false, false
	}
	ae, isAliased := sel.SelectExprs.Exprs[0].(*sqlparser.AliasedExpr)
	if !isAliased {
		return nil, false, false
	}
	e := ae.Expr
	if n, isNot := e.(*sqlparser.NotExpr); isNot {
		e, not = n.Expr, true
	}
	ex, isExists := e.(*sqlparser.ExistsExpr)
	if !isExists || ex.Subquery == nil || ex.Subquery.Select == nil {
		return nil, false, false
	}
	return ex.Subquery.Select, not, true
}

// planScatterExists plans a statement of existsShape whose subquery reads
// the sharded tables of one database across shards: the statement runs
// unchanged on every shard, and an Aggregate folds the one-row answers
// (MAX for EXISTS, MIN for NOT EXISTS). The column keeps the shards' type
// and, through withNames, the name MariaDB gives it. It returns an error
// when the subquery is outside what splits this way.
func (pl *planner) planScatterExists(stmt sqlparser.TableStatement, sub sqlparser.TableStatement, not bool) (engine.Primitive, error) {
	if !splitsByShard(sub) {
		return nil, errors.New("planner: the subquery's rows are not the union of each shard's rows")
	}
	a := newAnalysis(pl)
	blocks, err := a.analyzeTableStatement(sub, nil)
	if err != nil {
		return nil, err
	}
	d, err := a.decide(blocks, "SELECT")
	if err != nil {
		return nil, err
	}
	if d.single || d.byCheck || d.route.Sub != nil {
		return nil, errors.New("planner: not a subquery over several shards of plain sharded tables")
	}
	db := ""
	for _, in := range a.insts {
		if in.t.Kind != vschema.Sharded {
			continue
		}
		if db != "" && in.dbName != db {
			return nil, errors.New("planner: the subquery reads two sharded databases")
		}
		db = in.dbName
	}
	// The subquery must be something the proxy can run across shards on
	// its own (no subquery of its own that needs other shards' rows).
	if _, err := pl.planSelectStatement(sub); err != nil {
		return nil, err
	}
	r := &engine.Route{Opcode: engine.Scatter, VSchema: pl.vs, Table: d.route.Table, Query: parsed(stmt),
		Read: IsPlainRead(stmt), Desc: "exists"}
	op := engine.AggMax
	if not {
		op = engine.AggMin
	}
	return withNames(stmt, &engine.Aggregate{Input: r, Aggs: []engine.AggregateCol{{Op: op, Col: 0}}, Scalar: true}), nil
}

// splitsByShard reports whether a subquery has rows exactly when the same
// subquery has rows on some shard: not when a HAVING filters groups that
// may span shards, nor when an OFFSET skips rows of other shards.
func splitsByShard(ts sqlparser.TableStatement) bool {
	switch s := ts.(type) {
	case *sqlparser.Select:
		return s.Having == nil && (s.Limit == nil || s.Limit.Offset == nil) && s.With == nil
	case *sqlparser.Union:
		return (s.Limit == nil || s.Limit.Offset == nil) && s.With == nil && splitsByShard(s.Left) && splitsByShard(s.Right)
	}
	return false
}

// isUnsupported reports whether err is the planner's 1235.
func isUnsupported(err error) bool {
	var se *sqlerror.SQLError
	return errors.As(err, &se) && se.Num == sqlerror.ERNotSupportedYet
}
