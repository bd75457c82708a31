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
// What reserves (the planner says so in engine.Facts.Reserve and
// LockFuncs, and refuses what cannot be served: planner/facts.go; the
// session reserves when a statement runs with Session.Reserving set):
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
