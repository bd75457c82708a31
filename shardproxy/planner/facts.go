package planner

import (
	"strings"

	"vitess.io/vitess/go/mysql/sqlerror"
	"vitess.io/vitess/go/sqltypes"
	"vitess.io/vitess/go/vt/sqlparser"

	"github.com/strata-db/strata/shardproxy/engine"
	"github.com/strata-db/strata/shardproxy/vschema"
)

// Plan plans one normalized statement as Build does and returns the plan
// with its facts (engine.Facts): those of its primitives and those of the
// statement (the tables it reads and writes, why it reserves a connection,
// named-lock functions, SQL_CALC_FOUND_ROWS, LAST_INSERT_ID(expr), its
// LIMIT), so that the proxy runs it without looking at either again.
//
// A SELECT of no table, or of a system database, is passed whole to one
// shard: the lock shard when it calls named-lock functions, else the
// session database's home shard (any shard answers alike). Plan refuses
// what a reserved connection cannot serve (ReservedCheck).
func Plan(stmt sqlparser.Statement, vs *vschema.VSchema, db string) (*engine.Plan, error) {
	if err := ReservedCheck(stmt, vs, db); err != nil {
		return nil, err
	}
	root, err := passthrough(stmt, vs, db)
	if err != nil {
		return nil, err
	}
	if root == nil {
		if root, err = Build(stmt, vs, db); err != nil {
			return nil, err
		}
	}
	f := engine.FactsOf(root)
	f.Reads, f.Writes = tablesOf(stmt, db)
	f.Reserve, f.LockFuncs, f.TempDDL = reserveReason(stmt), usesLockFuncs(stmt), IsTempDDL(stmt)
	f.CalcFoundRows, f.LastInsertIDCol, f.HasLimit = selectSideEffects(stmt)
	return &engine.Plan{Root: root, Facts: f}, nil
}

// passthrough is the plan of a SELECT with no table, or one on a system
// database, which one shard answers whole; nil for any other statement.
func passthrough(stmt sqlparser.Statement, vs *vschema.VSchema, db string) (engine.Primitive, error) {
	ts, ok := stmt.(sqlparser.TableStatement)
	if !ok {
		return nil, nil
	}
	switch stmt.(type) {
	case *sqlparser.Select, *sqlparser.Union:
	default:
		return nil, nil
	}
	tables, sys := scanTables(stmt, db)
	if tables != 0 && !sys {
		return nil, nil
	}
	p := &engine.Passthrough{Query: sqlparser.NewParsedQuery(stmt), Shard: engine.HomeShard(vs, vs.Databases[db]), VSchema: vs, Read: IsPlainRead(ts), AnyShard: true}
	if tables == 0 && usesLockFuncs(stmt) {
		p.Shard, p.AnyShard = LockShard(vs), false
		p.Detail = "named locks: the lock shard, on the session's reserved connection"
	} else if tables == 0 {
		p.NoTable = true
		p.Detail = "no table: any shard answers"
	} else {
		p.SchemaVar = schemaVar(stmt)
		p.Detail = "system database"
	}
	return namedPassthrough(ts, p), nil
}

// namedPassthrough names a passthrough's columns as the client's text
// names them (WithNames): the shard sees the normalized statement,
// literals written back with their type (1 /* INT64 */ + 1). A select list
// whose only such items are lone numbers stays as it is, and in the fast
// lane: MariaDB names a number by its value, which the shard's text keeps.
func namedPassthrough(stmt sqlparser.TableStatement, p *engine.Passthrough) engine.Primitive {
	w := withNames(stmt, p)
	cn, ok := w.(*engine.ColumnNames)
	if !ok {
		return p
	}
	sel, _ := sqlparser.GetFirstSelect(stmt)
	if sel == nil {
		return w
	}
	for i, fromText := range cn.FromText {
		if !fromText {
			continue
		}
		ae, ok := sel.SelectExprs.Exprs[i].(*sqlparser.AliasedExpr)
		if !ok {
			return w
		}
		arg, ok := ae.Expr.(*sqlparser.Argument)
		if !ok || (arg.Type != sqltypes.Int64 && arg.Type != sqltypes.Uint64 && arg.Type != sqltypes.Decimal) {
			return w
		}
	}
	return p
}

// LockShard is the shard that holds every session's named locks, so that
// every client of the proxy shares one namespace of locks as on one server.
func LockShard(vs *vschema.VSchema) string { return vs.Shards[0] }

// scanTables counts the tables a statement reads (dual aside) and reports
// whether any is in a system database.
func scanTables(stmt sqlparser.Statement, db string) (n int, sys bool) {
	_ = sqlparser.Walk(func(node sqlparser.SQLNode) (bool, error) {
		ate, ok := node.(*sqlparser.AliasedTableExpr)
		if !ok {
			return true, nil
		}
		tn, ok := ate.Expr.(sqlparser.TableName)
		if !ok {
			return true, nil
		}
		q := tn.Qualifier.String()
		if q == "" {
			if strings.EqualFold(tn.Name.String(), "dual") {
				return true, nil
			}
			q = db
		}
		n++
		if sqlparser.SystemSchema(q) {
			sys = true
		}
		return true, nil
	}, stmt)
	return n, sys
}

// schemaVar finds the bind variable an information_schema query compares
// with table_schema or schema_name.
func schemaVar(stmt sqlparser.Statement) string {
	var name string
	_ = sqlparser.Walk(func(node sqlparser.SQLNode) (bool, error) {
		cmp, ok := node.(*sqlparser.ComparisonExpr)
		if !ok || cmp.Operator != sqlparser.EqualOp || name != "" {
			return true, nil
		}
		col, ok := cmp.Left.(*sqlparser.ColName)
		if !ok {
			return true, nil
		}
		switch strings.ToLower(col.Name.String()) {
		case "table_schema", "schema_name", "trigger_schema", "routine_schema", "event_schema", "constraint_schema", "index_schema":
			if arg, ok := cmp.Right.(*sqlparser.Argument); ok {
				name = arg.Name
			}
		}
		return true, nil
	}, stmt)
	return name
}

// tablesOf lists the tables stmt reads and writes (engine.Facts.Reads,
// Writes).
func tablesOf(stmt sqlparser.Statement, db string) (reads, writes []engine.Table) {
	add := func(list []engine.Table, tn sqlparser.TableName) []engine.Table {
		t := engine.Table{DB: tn.Qualifier.String(), Name: tn.Name.String()}
		if t.DB == "" {
			if strings.EqualFold(t.Name, "dual") {
				return list
			}
			t.DB = db
		}
		if t.Name == "" || sqlparser.SystemSchema(t.DB) {
			return list
		}
		for _, have := range list {
			if have == t {
				return list
			}
		}
		return append(list, t)
	}
	readsIn := func(node sqlparser.SQLNode) {
		_ = sqlparser.Walk(func(n sqlparser.SQLNode) (bool, error) {
			if ate, ok := n.(*sqlparser.AliasedTableExpr); ok {
				if tn, ok := ate.Expr.(sqlparser.TableName); ok {
					reads = add(reads, tn)
				}
			}
			return true, nil
		}, node)
	}
	// target is the table behind the name (an alias, or the table's own
	// name) a multi-table UPDATE or DELETE gives one of its targets.
	target := func(from sqlparser.SQLNode, name sqlparser.TableName) sqlparser.TableName {
		found := name
		_ = sqlparser.Walk(func(n sqlparser.SQLNode) (bool, error) {
			ate, ok := n.(*sqlparser.AliasedTableExpr)
			if !ok {
				return true, nil
			}
			tn, ok := ate.Expr.(sqlparser.TableName)
			if !ok {
				return true, nil
			}
			match := false
			switch {
			case !ate.As.IsEmpty():
				match = name.Qualifier.IsEmpty() && ate.As.String() == name.Name.String()
			case tn.Name.String() == name.Name.String():
				match = name.Qualifier.IsEmpty() || name.Qualifier.String() == tn.Qualifier.String()
			}
			if match {
				found = tn
			}
			return !match, nil
		}, from)
		return found
	}
	switch st := stmt.(type) {
	case *sqlparser.Select, *sqlparser.Union:
		readsIn(st)
	case *sqlparser.Insert:
		if tn, err := st.Table.TableName(); err == nil {
			writes = add(writes, tn)
		}
		readsIn(st.Rows)
		readsIn(st.OnDup)
	case *sqlparser.Update:
		readsIn(st)
		if len(st.TableExprs) == 0 {
			break
		}
		if ate, ok := st.TableExprs[0].(*sqlparser.AliasedTableExpr); ok && len(st.TableExprs) == 1 {
			if tn, err := ate.TableName(); err == nil {
				writes = add(writes, tn)
			}
			break
		}
		// A multi-table UPDATE changes the tables its SET names; a column
		// SET names without its table could be any of them.
		for _, e := range st.Exprs {
			if e.Name.Qualifier.IsEmpty() {
				return reads, append([]engine.Table(nil), reads...)
			}
		}
		for _, e := range st.Exprs {
			writes = add(writes, target(sqlparser.TableExprs(st.TableExprs), e.Name.Qualifier))
		}
	case *sqlparser.Delete:
		readsIn(st)
		if len(st.Targets) == 0 && len(st.TableExprs) == 1 {
			if ate, ok := st.TableExprs[0].(*sqlparser.AliasedTableExpr); ok {
				if tn, err := ate.TableName(); err == nil {
					writes = add(writes, tn)
				}
			}
		}
		for _, tn := range st.Targets {
			writes = add(writes, target(sqlparser.TableExprs(st.TableExprs), tn))
		}
	case sqlparser.DDLStatement:
		for _, tn := range st.AffectedTables() {
			writes = add(writes, tn)
		}
	}
	return reads, writes
}

// reserveReason names what in stmt creates connection-bound state, "" for
// nothing (see the executor's reserve.go for what reserving does).
func reserveReason(stmt sqlparser.Statement) string {
	if ct, ok := stmt.(*sqlparser.CreateTable); ok && ct.Temp {
		return "CREATE TEMPORARY TABLE"
	}
	why := ""
	_ = sqlparser.Walk(func(node sqlparser.SQLNode) (bool, error) {
		switch n := node.(type) {
		case *sqlparser.LockingFunc:
			if n.Type == sqlparser.GetLock {
				why = "GET_LOCK"
			}
		case *sqlparser.FuncExpr:
			if n.Name.Lowered() == "get_lock" {
				why = "GET_LOCK"
			}
		}
		return why == "", nil
	}, stmt)
	return why
}

// usesLockFuncs reports whether stmt calls a named-lock function.
func usesLockFuncs(stmt sqlparser.Statement) bool {
	found := false
	_ = sqlparser.Walk(func(node sqlparser.SQLNode) (bool, error) {
		switch n := node.(type) {
		case *sqlparser.LockingFunc:
			found = true
		case *sqlparser.FuncExpr:
			switch n.Name.Lowered() {
			case "get_lock", "release_lock", "release_all_locks", "is_free_lock", "is_used_lock":
				found = true
			}
		}
		return !found, nil
	}, stmt)
	return found
}

// IsTempDDL: CREATE or DROP TEMPORARY TABLE, which (unlike other DDL) do
// not commit the open transaction.
func IsTempDDL(stmt sqlparser.Statement) bool {
	switch st := stmt.(type) {
	case *sqlparser.CreateTable:
		return st.Temp
	case *sqlparser.DropTable:
		return st.Temp
	}
	return false
}

// ReservedCheck refuses what reserving a connection cannot do right: a
// temporary table in a sharded database (it would have to exist on every
// shard), a named-lock function in a statement that reads tables (those
// functions run on the lock shard).
func ReservedCheck(stmt sqlparser.Statement, vs *vschema.VSchema, db string) error {
	if IsTempDDL(stmt) {
		var tables sqlparser.TableNames
		switch st := stmt.(type) {
		case *sqlparser.CreateTable:
			tables = sqlparser.TableNames{st.Table}
		case *sqlparser.DropTable:
			tables = st.FromTables
		}
		for _, t := range tables {
			name := t.Qualifier.String()
			if name == "" {
				name = db
			}
			if d := vs.Databases[name]; d != nil && d.Sharded {
				return sqlerror.NewSQLErrorf(sqlerror.ERNotSupportedYet, sqlerror.SSClientError,
					"temporary tables are not supported in sharded database %s: a session's temporary table lives on one backend connection, and a sharded database's statements go to every shard; create it in an unsharded database", name)
			}
		}
		return nil
	}
	if !usesLockFuncs(stmt) {
		return nil
	}
	switch stmt.(type) {
	case *sqlparser.Select, *sqlparser.Union:
		if n, _ := scanTables(stmt, db); n == 0 {
			return nil
		}
	}
	return sqlerror.NewSQLErrorf(sqlerror.ERNotSupportedYet, sqlerror.SSClientError,
		"named-lock functions (GET_LOCK, RELEASE_LOCK, IS_FREE_LOCK, ...) are supported only in a SELECT without tables, such as SELECT GET_LOCK('name', 10): the proxy runs them on the shard that holds every client's locks")
}

// selectSideEffects reads what a SELECT asks of the session besides its
// rows: SQL_CALC_FOUND_ROWS; the select-list item LAST_INSERT_ID(expr),
// which sets the session's value (1-based, 0: none); and whether it has a
// LIMIT of its own (sql_select_limit yields to it).
func selectSideEffects(stmt sqlparser.Statement) (calc bool, lastIDCol int, hasLimit bool) {
	switch st := stmt.(type) {
	case *sqlparser.Select:
		calc, hasLimit = st.SQLCalcFoundRows, st.Limit != nil
		if st.SelectExprs != nil {
			for i, e := range st.SelectExprs.Exprs {
				if ae, ok := e.(*sqlparser.AliasedExpr); ok {
					if f, ok := ae.Expr.(*sqlparser.FuncExpr); ok && f.Name.Lowered() == "last_insert_id" && len(f.Exprs) == 1 {
						lastIDCol = i + 1
					}
				}
			}
		}
	case *sqlparser.Union:
		// SQL_CALC_FOUND_ROWS belongs in the first SELECT, which is
		// deeper than Left when three or more are joined.
		hasLimit = st.Limit != nil
		if sel, _ := sqlparser.GetFirstSelect(st); sel != nil {
			calc = sel.SQLCalcFoundRows
		}
	}
	return calc, lastIDCol, hasLimit
}

// RewriteConnectionID replaces CONNECTION_ID() with the bind variable name
// (the proxy's own id for the session, not the id of whichever backend
// connection serves the statement), keeping the column's name, and reports
// whether it did.
func RewriteConnectionID(stmt sqlparser.Statement, name string) (sqlparser.Statement, bool) {
	if usesLockFuncs(stmt) {
		// IS_USED_LOCK() names the backend connection holding the lock,
		// and such a statement runs on the session's reserved connection
		// to the lock shard if it holds one: CONNECTION_ID() must be that
		// connection's own id for IS_USED_LOCK(name) = CONNECTION_ID()
		// ("do I still hold it?") to answer as on MySQL.
		return stmt, false
	}
	found := false
	out := sqlparser.SafeRewrite(stmt, func(node, _ sqlparser.SQLNode) bool {
		// CONNECTION_ID() alone keeps its name as the normalizer names
		// such functions (the planner then names the column by the
		// client's text); an expression around it is named by the
		// client's text anyway, and an alias of its normalized text would
		// show bind variables (":vtg1 /* INT64 */").
		if ae, ok := node.(*sqlparser.AliasedExpr); ok && ae.As.IsEmpty() {
			if f, ok := ae.Expr.(*sqlparser.FuncExpr); ok && isConnectionID(f) {
				ae.As = sqlparser.NewIdentifierCI(sqlparser.String(ae.Expr))
			}
		}
		return true
	}, func(c *sqlparser.Cursor) bool {
		if f, ok := c.Node().(*sqlparser.FuncExpr); ok && isConnectionID(f) {
			c.Replace(sqlparser.NewArgument(name))
			found = true
		}
		return true
	})
	return out.(sqlparser.Statement), found
}

func isConnectionID(f *sqlparser.FuncExpr) bool {
	return f.Qualifier.IsEmpty() && f.Name.Lowered() == "connection_id" && len(f.Exprs) == 0
}

// WithReturning is the plan of p with MariaDB's RETURNING clause appended
// to every statement it sends a shard (engine.Returning), the shards' rows
// merged. It has p's statement facts; no shard's response reaches the
// client whole, so none of the facts that say so.
func WithReturning(p *engine.Plan, clause string, oneCopy bool) *engine.Plan {
	f := p.Facts
	f.OneShardWhole, f.Query, f.Sub, f.NeedsText, f.FromText, f.Passthrough, f.NoTable = false, nil, nil, false, nil, false, false
	f.OneShard = false
	return &engine.Plan{Root: &engine.Returning{Input: p.Root, Clause: clause, OneCopy: oneCopy}, Facts: f}
}
