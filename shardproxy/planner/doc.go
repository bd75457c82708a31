// Package planner turns one parsed, normalized SQL statement into a plan of
// engine primitives for the shard proxy: which shards each statement goes
// to (by the shard key in =, IN or BETWEEN, or all of them), the query each
// shard receives (rewritten with hidden columns for ordering, grouping and
// collations, LIMIT pushed down, AVG split into SUM and COUNT), and how the
// shards' answers merge. Whatever it cannot run exactly as one MySQL server
// would is refused with error 1235 naming what is unsupported. A sub-tabled
// table is named in the shards' queries through a marker the engine fills
// with each target's physical table (subtable.go); an INSERT gets the
// generated columns its table declares; an increment of one row of a table
// that combines writes is planned as engine.Combine.
//
// Plan returns the plan with its facts (engine.Facts, facts.go): what the
// proxy needs to run it without looking at its primitives or its
// statement again, from the tables it reads and writes to why it reserves
// a connection; it also passes a SELECT of no table, or of a system
// database, whole to one shard.
//
// Plans are immutable and hold precomputed query templates
// (sqlparser.ParsedQuery): executing one substitutes bind variables and
// nothing else.
package planner
