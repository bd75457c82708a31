package executor

import (
	"context"

	"vitess.io/vitess/go/mysql/sqlerror"
	"vitess.io/vitess/go/sqltypes"
	"vitess.io/vitess/go/vt/sqlparser"

	"github.com/strata-db/strata/shardproxy/engine"
	"github.com/strata-db/strata/shardproxy/mysqlerr"
)

// Reserved connections.
//
// Sessions share backend connections: each statement (or transaction) takes
// one from the pool and gives it back. Some statements leave state on the
// connection itself that the server keeps until the connection ends, and
// that must stay the client's alone: a temporary table, a named lock. When a
// statement may create such state, the connection it ran on (one per shard)
// becomes the session's for the rest of its life, as vtgate's reserved
// connections and ProxySQL's "multiplexing disabled" do: every later
// statement of the session for that shard runs on it, transactions there
// begin on it, and the fast lane (which takes pooled connections) is off for
// the session. When the session ends, and on COM_RESET_CONNECTION, the
// connection is closed, never pooled: closing is the one way to be sure the
// state is gone.
//
// What reserves:
//   - CREATE TEMPORARY TABLE (in an unsharded database; in a sharded one it
//     would have to exist on every shard, and is refused with 1235);
//   - GET_LOCK(): the named lock is held by the connection, whether or not
//     the call got it. Named-lock functions (GET_LOCK, RELEASE_LOCK,
//     RELEASE_ALL_LOCKS, IS_FREE_LOCK, IS_USED_LOCK) all go to the first
//     shard, so that every client of the proxy shares one namespace of
//     locks as on one server, and run outside the session's transaction
//     (they are not transactional). They are accepted only in statements
//     without tables;
//   - LOCK TABLES (lockTables), of tables that are all on one shard, in
//     unsharded databases. UNLOCK TABLES releases the locks but the
//     connection stays reserved.
//
// A reserved connection stays reserved when its state is dropped (DROP
// TEMPORARY TABLE, RELEASE_LOCK): the proxy does not track what is left.
//
// Not reserving, because the proxy keeps the state itself and applies it to
// whichever connection serves the session: session system variables (SET),
// user variables, LAST_INSERT_ID(), the current database. Refused anyway,
// so never on a connection: FLUSH TABLES WITH READ LOCK, HANDLER,
// PREPARE/EXECUTE, XA.

// connIDName is the bind variable CONNECTION_ID() becomes: the proxy's own
// id for the session (the one SHOW PROCESSLIST shows), not the id of
// whichever backend connection happens to serve the statement.
const connIDName = "__strataconnid"

// reserveReason names what in stmt creates connection-bound state, "" for
// nothing.
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

// isTempDDL: CREATE or DROP TEMPORARY TABLE, which (unlike other DDL) do
// not commit the open transaction.
func isTempDDL(stmt sqlparser.Statement) bool {
	switch st := stmt.(type) {
	case *sqlparser.CreateTable:
		return st.Temp
	case *sqlparser.DropTable:
		return st.Temp
	}
	return false
}

// checkReserved refuses what reserving cannot do right: a temporary table
// in a sharded database, a lock function in a statement that reads tables.
func (srv *Executor) checkReserved(stmt sqlparser.Statement, db string) error {
	if isTempDDL(stmt) {
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
			if d := srv.vs.Databases[name]; d != nil && d.Sharded {
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

// rewriteConnectionID replaces CONNECTION_ID() with the bind variable
// connIDName, keeping the column's name, and reports whether it did.
func rewriteConnectionID(stmt sqlparser.Statement) (sqlparser.Statement, bool) {
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
		if ae, ok := node.(*sqlparser.AliasedExpr); ok && ae.As.IsEmpty() && hasConnectionID(ae.Expr) {
			ae.As = sqlparser.NewIdentifierCI(sqlparser.String(ae.Expr))
		}
		return true
	}, func(c *sqlparser.Cursor) bool {
		if f, ok := c.Node().(*sqlparser.FuncExpr); ok && isConnectionID(f) {
			c.Replace(sqlparser.NewArgument(connIDName))
			found = true
		}
		return true
	})
	return out.(sqlparser.Statement), found
}

func isConnectionID(f *sqlparser.FuncExpr) bool {
	return f.Qualifier.IsEmpty() && f.Name.Lowered() == "connection_id" && len(f.Exprs) == 0
}

func hasConnectionID(e sqlparser.Expr) bool {
	found := false
	_ = sqlparser.Walk(func(node sqlparser.SQLNode) (bool, error) {
		if f, ok := node.(*sqlparser.FuncExpr); ok && isConnectionID(f) {
			found = true
		}
		return !found, nil
	}, e)
	return found
}

// lockShard is the shard that holds every session's named locks.
func (srv *Executor) lockShard() string { return srv.vs.Shards[0] }

// lockTables runs LOCK TABLES on the one shard that holds every table it
// names, on a connection the session then keeps: table locks belong to the
// connection. Tables of a sharded database, or of databases on different
// shards, cannot be locked together and are refused. As in MySQL, the open
// transaction is committed and the locks the session held are released
// first.
func (s *Session) lockTables(ctx context.Context, st *sqlparser.LockTables) (*sqltypes.Result, error) {
	shard := ""
	for _, tl := range st.Tables {
		ate, ok := tl.Table.(*sqlparser.AliasedTableExpr)
		if !ok {
			return nil, mysqlerr.NotSupported("LOCK TABLES of %s", sqlparser.String(tl.Table))
		}
		tn, err := ate.TableName()
		if err != nil {
			return nil, mysqlerr.NotSupported("LOCK TABLES of %s", sqlparser.String(tl.Table))
		}
		db := tn.Qualifier.String()
		if db == "" {
			db = s.DB
		}
		if db == "" {
			return nil, sqlerror.NewSQLError(sqlerror.ERNoDb, sqlerror.SSNoDB, "No database selected")
		}
		d := s.srv.vs.Databases[db]
		switch {
		case d == nil:
			return nil, sqlerror.NewSQLErrorf(sqlerror.ERNotSupportedYet, sqlerror.SSClientError,
				"LOCK TABLES: database %s is not in the proxy's configuration", db)
		case d.Sharded:
			return nil, sqlerror.NewSQLErrorf(sqlerror.ERNotSupportedYet, sqlerror.SSClientError,
				"LOCK TABLES of %s.%s: tables of sharded database %s live on several shards, where one connection cannot lock them; LOCK TABLES works in unsharded databases", db, tn.Name.String(), db)
		case shard != "" && d.Shard != shard:
			return nil, sqlerror.NewSQLErrorf(sqlerror.ERNotSupportedYet, sqlerror.SSClientError,
				"LOCK TABLES: the tables named are on shards %s and %s, and one connection cannot lock tables on two servers", shard, d.Shard)
		}
		shard = d.Shard
	}
	if err := s.implicitCommit(); err != nil {
		return nil, err
	}
	if _, err := s.unlockTables(ctx); err != nil {
		return nil, err
	}
	s.OutsideTx, s.Reserving = true, "LOCK TABLES"
	defer func() { s.OutsideTx, s.Reserving = false, "" }()
	res, err := s.ExecuteOutsideTx(ctx, []engine.ShardQuery{{Shard: shard, SQL: sqlparser.String(st)}})
	if err != nil {
		return nil, err
	}
	return res[0], nil
}

// unlockTables releases table locks on every connection the session
// holds; with none held (dump tools send it unconditionally) there is
// nothing to do.
func (s *Session) unlockTables(ctx context.Context) (*sqltypes.Result, error) {
	var qs []engine.ShardQuery
	for _, sh := range s.srv.vs.Shards {
		if s.Reserved[sh] != nil {
			qs = append(qs, engine.ShardQuery{Shard: sh, SQL: "UNLOCK TABLES"})
		}
	}
	if len(qs) == 0 {
		return okResult, nil
	}
	if _, err := s.ExecuteOutsideTx(ctx, qs); err != nil {
		return nil, err
	}
	return okResult, nil
}
