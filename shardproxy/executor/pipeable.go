package executor

import "vitess.io/vitess/go/vt/sqlparser"

// pipeable reports whether a lane read may share a pipeline with other
// sessions' statements (backend pipe.go): a SELECT of columns, literals and
// comparisons, which answers as fast as the server finds its row, locks
// nothing and calls nothing (no SLEEP, no subquery, no function). Anything
// the list below does not name keeps a connection of its own.
func pipeable(stmt sqlparser.Statement) bool {
	sel, ok := stmt.(*sqlparser.Select)
	if !ok || sel.Lock != sqlparser.NoLock || sel.Into != nil || sel.With != nil {
		return false
	}
	ok = true
	_ = sqlparser.Walk(func(n sqlparser.SQLNode) (bool, error) {
		switch n.(type) {
		case *sqlparser.Select, *sqlparser.SelectExprs, *sqlparser.StarExpr, *sqlparser.AliasedExpr,
			*sqlparser.ColName, sqlparser.IdentifierCI, sqlparser.IdentifierCS, sqlparser.TableName,
			sqlparser.TableExprs, *sqlparser.AliasedTableExpr, *sqlparser.Where, *sqlparser.ComparisonExpr,
			*sqlparser.AndExpr, *sqlparser.Literal, *sqlparser.Argument, *sqlparser.Limit, sqlparser.ValTuple,
			*sqlparser.Exprs, *sqlparser.ParsedComments, sqlparser.Columns, *sqlparser.IndexHint, sqlparser.IndexHints,
			*sqlparser.NullVal, sqlparser.BoolVal, sqlparser.OrderBy, *sqlparser.Order, *sqlparser.Partitions, sqlparser.Partitions:
			return true, nil
		case nil:
			return false, nil
		}
		ok = false
		return false, nil
	}, sel)
	return ok
}
