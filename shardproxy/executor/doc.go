// Package executor runs client statements: it is the vitess listener's
// mysql.Handler (handler.go, unexported: Executor.Handler gives it to the
// listener) and the per-query path below it.
//
// The path of one COM_QUERY, top to bottom:
//   - handler.go: ComQueryMulti splits multi-statements and calls
//     Session.execute for each;
//   - execute.go: execute notes the statement for SHOW PROCESSLIST, tries
//     the fast path (fastpath.go: a statement of a learned shape skips the
//     parser), then dispatch classifies it: SET (set.go), USE, transactions,
//     SHOW (show.go), EXPLAIN, LOCK TABLES (reserve.go), STRATA statements
//     (readwrite.go), or a statement to plan: runPlanned → planFor (parse,
//     normalize, plan cache in plancache.go, planner) → execPlan, which
//     runs the plan with the session as its engine.VCursor;
//   - the session (package session) sends the plan's shard queries.
//
// The fast lane (lane.go) runs the commonest reads below the listener, in
// the client connection (package wire calls LaneQuery/LaneExecute): same
// plan, but the shard's packets go to the client untouched. Prepared
// statements are prepare.go; a prepared CALL (several results) and cursors
// (COM_STMT_FETCH) are relayed to the shard below the listener the same
// way (relay.go). Session here is a client session as the
// executor runs it: the session package's state plus prepared statements,
// the fast path's scratch space and the lane's cursor.
//
// Point selects of cached tables are answered from the row cache (rowcache.go,
// package rowcache), which also hears of every write the path runs.
//
// May import: session, wire, planner, engine, backend, config, vschema,
// rwsplit, rowcache, mysqlerr, vitess. Never: shardproxy, cmd, localdb (outside
// tests).
package executor
