package engine

import (
	"context"

	"vitess.io/vitess/go/sqltypes"
	querypb "vitess.io/vitess/go/vt/proto/query"
)

// VCursor is what the engine needs from a session; the proxy's session
// implements it.
type VCursor interface {
	// ExecuteShards runs each query on its shard and returns the results in
	// the same order. More than one query runs in parallel. On the first error
	// it starts no more of them, cuts the plain reads still running, waits
	// for the writes already sent (cutting a write does not stop it), and
	// returns the error (a *sqlerror.SQLError from the backend passes
	// through unchanged).
	ExecuteShards(ctx context.Context, queries []ShardQuery) ([]*sqltypes.Result, error)
}

// WarningFolder is an optional ability of a VCursor: told that the n
// queries it just ran were one statement run on every shard (DDL, a write
// to every copy of a reference table), it keeps one query's warnings when
// every query gave the same ones (DROP TABLE IF EXISTS's note), as one
// server gives them once.
type WarningFolder interface {
	FoldWarnings(n int)
}

// ShardQuery is one statement for one shard.
type ShardQuery struct {
	Shard string
	// SQL is the complete statement, bind variables already substituted.
	SQL string
	// Read marks a plain read (SELECT without FOR UPDATE / LOCK IN SHARE
	// MODE, no side effects), which may go to a replica outside a
	// transaction. Writes, DDL and locking reads have Read false.
	Read bool
	// Tables, for a query over sub-tables, maps each table marker of the
	// route's query (SubTables.Names[i].Var) to the physical table SQL has
	// there: a prepared form of the route's query (LaneMarks) becomes this
	// query's with ResolveTables.
	Tables map[string]string
}

// Primitive is one node of a plan.
type Primitive interface {
	// Execute runs the node. It must not modify the primitive: plans are
	// shared by concurrent sessions.
	Execute(ctx context.Context, vc VCursor, bv map[string]*querypb.BindVariable) (*sqltypes.Result, error)
	// Explain describes the plan for EXPLAIN through the proxy: one row per
	// primitive in a depth-first walk.
	Explain() []ExplainRow
}

// ExplainRow is one line of EXPLAIN output.
type ExplainRow struct {
	// Depth is the primitive's depth in the plan tree, 0 for the root.
	Depth int
	// Operator names the primitive, e.g. "Route", "MergeSort", "Aggregate".
	Operator string
	// Shards is the comma-separated list of shards, "all", or a description
	// of how the shard is chosen at execute time, e.g. "hash(id)".
	Shards string
	// Query is the SQL sent to the shards, with bind variable placeholders.
	Query string
	// Detail says what the primitive does beyond sending Query: the order
	// keys of a merge, the aggregates, the limit.
	Detail string
}

// ShardPreferrer is an optional ability of a VCursor: a read that may go to
// any shard (reference tables) goes to PreferredShard when it names one, so
// that a session in a transaction pinned to a shard stays there.
type ShardPreferrer interface {
	PreferredShard() string
}
