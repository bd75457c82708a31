package engine

import "vitess.io/vitess/go/vt/sqlparser"

// Plan is a planned statement, as the planner returns it: the primitives
// that run it and the facts the proxy needs to run it, computed once when
// the statement is planned.
type Plan struct {
	Root  Primitive
	Facts Facts
}

// Table names a table a plan reads or writes by its database and its name
// in the vschema: a sub-tabled table by its logical name, never one of its
// physical tables.
type Table struct {
	DB, Name string
}

// Facts are what the proxy needs to know of a plan to run it (the fast lane,
// the protocol, transactions, reserved connections, the cache), so that
// nothing outside the planner and the engine looks at a plan's primitives,
// its statement's shape or its EXPLAIN text. FactsOf reads those of the
// primitives; the planner (planner.Plan) adds those of the statement.
type Facts struct {
	// OneShardWhole: the plan answers with one shard's response untouched
	// (a Route that picks one shard, or a Passthrough), so the shard's
	// packets may go to the client as they are.
	OneShardWhole bool
	// OneShard: the plan sends the whole statement to one shard (a Route
	// that picks one shard, or a Passthrough), its columns perhaps named
	// after the client's text (NeedsText).
	OneShard bool
	// Query is the statement the shard of a Route or Passthrough that is
	// the whole plan gets, nil otherwise.
	Query *sqlparser.ParsedQuery
	// NeedsText: the plan names result columns after the client's text of
	// the statement (ColumnNames): run it with WithSQL.
	NeedsText bool
	// FromText, of a plan that names its columns, says which select-list
	// items are named by their text.
	FromText []bool
	// Point: a Route that picks its one shard by an equality on a unique
	// vindex.
	Point bool
	// Passthrough: the plan is a Passthrough, alone or under ColumnNames.
	Passthrough bool
	// NoTable: a Passthrough of a SELECT of no table, which starts no
	// transaction on the server.
	NoTable bool
	// Sub is the sub-tables of a Route that is the whole plan (nil when the
	// route's tables are not sub-tabled): its Query names them by bind
	// variable, filled per execution.
	Sub *SubTables
	// Shard is the one shard the plan runs on whatever its bind variables
	// (an unsharded database's route, the lock shard's passthrough), ""
	// when the shard is chosen at execution or there are several.
	Shard string

	// The statement's facts, set by the planner.

	// Reads are the tables the statement reads (a write's own target
	// included, but not an INSERT's), Writes those it changes (DML targets,
	// DDL), each once in the order named; dual and system databases are
	// left out.
	Reads, Writes []Table
	// Reserve names what in the statement leaves state on its backend
	// connection, which the session must then keep for the rest of its life
	// (CREATE TEMPORARY TABLE, GET_LOCK); "" for nothing.
	Reserve string
	// LockFuncs: the statement calls named-lock functions (GET_LOCK,
	// RELEASE_LOCK, IS_FREE_LOCK, ...), which run on the lock shard outside
	// the session's transaction.
	LockFuncs bool
	// TempDDL: CREATE or DROP TEMPORARY TABLE, which (unlike other DDL) do
	// not commit the open transaction.
	TempDDL bool
	// CalcFoundRows: a SELECT SQL_CALC_FOUND_ROWS (FOUND_ROWS() is then the
	// count without LIMIT).
	CalcFoundRows bool
	// LastInsertIDCol is the 1-based select-list item LAST_INSERT_ID(expr),
	// which sets the session's LAST_INSERT_ID to its value in the last row;
	// 0 for none.
	LastInsertIDCol int
	// HasLimit: a SELECT (or UNION) with a LIMIT of its own, which
	// sql_select_limit yields to.
	HasLimit bool
}

// SideEffects reports whether running the statement leaves anything on its
// backend connection (Reserve, LockFuncs) or in the session (CalcFoundRows,
// LastInsertIDCol) that the proxy must handle besides passing its result.
func (f *Facts) SideEffects() bool {
	return f.Reserve != "" || f.LockFuncs || f.CalcFoundRows || f.LastInsertIDCol != 0
}

// FactsOf reads the facts of the primitives of plan p (the statement's are
// the planner's to add).
func FactsOf(p Primitive) Facts {
	var f Facts
	if cn, ok := p.(*ColumnNames); ok {
		f.NeedsText, f.FromText = true, cn.FromText
		p = cn.Input
	}
	switch p := p.(type) {
	case *Route:
		switch p.Opcode {
		case Unsharded, AnyShard, EqualUnique, InList, Between:
			f.OneShardWhole, f.OneShard = !f.NeedsText, true
		}
		if p.Opcode == Unsharded {
			f.Shard = p.Shard
		}
		f.Point = p.Opcode == EqualUnique
		if !f.NeedsText {
			f.Query, f.Sub = p.Query, p.Sub
		}
	case *Passthrough:
		f.OneShardWhole, f.OneShard = !f.NeedsText, true
		if !f.NeedsText {
			f.Query = p.Query
		}
		f.Passthrough, f.NoTable = true, p.NoTable
		if !p.AnyShard && p.SchemaVar == "" {
			f.Shard = p.Shard
		}
	}
	return f
}
