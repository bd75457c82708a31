// Package engine runs query plans: trees of primitives that send SQL to
// shards through a VCursor and merge what comes back (merge sort, LIMIT,
// aggregates, GROUP BY, HAVING, DISTINCT) so that the client sees what one
// MySQL server holding all the rows would return. A route over sub-tabled
// tables fans out to (shard, sub-table) targets, writing each target's
// physical table names into its query (SubTables); an INSERT fills the
// columns the ID service generates (SeqColumn, IDGenerator); Combine folds
// concurrent increments of one hot row into one statement per round
// (package hotrow, through the session's HotRows).
//
// Primitives are immutable after they are built: one plan serves every
// session at once (the plan cache shares it), so Execute keeps all per-call
// state on its stack. The engine never imports the planner, which builds
// primitives from SQL.
package engine
