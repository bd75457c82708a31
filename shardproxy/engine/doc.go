// Package engine runs query plans: trees of primitives that send SQL to
// shards through a VCursor and merge what comes back (merge sort, LIMIT,
// aggregates, GROUP BY, HAVING, DISTINCT) so that the client sees what one
// MySQL server holding all the rows would return.
//
// Primitives are immutable after they are built: one plan serves every
// session at once (the plan cache shares it), so Execute keeps all per-call
// state on its stack. The engine never imports the planner, which builds
// primitives from SQL.
package engine
