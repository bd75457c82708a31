package engine

import "vitess.io/vitess/go/vt/sqlparser"

// Facts are what the proxy needs to know of a plan to run it (the fast lane,
// the protocol, transactions), so that nothing outside the planner and the
// engine looks at a plan's primitives or its EXPLAIN text.
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
	// Passthrough: the plan is a Passthrough, alone or under ColumnNames.
	Passthrough bool
	// NoTable: a Passthrough of a SELECT of no table, which starts no
	// transaction on the server.
	NoTable bool
	// Sub is the sub-tables of a Route that is the whole plan (nil when the
	// route's tables are not sub-tabled): its Query names them by bind
	// variable, filled per execution.
	Sub *SubTables
}

// FactsOf reads the facts of plan p.
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
		if !f.NeedsText {
			f.Query, f.Sub = p.Query, p.Sub
		}
	case *Passthrough:
		f.OneShardWhole, f.OneShard = !f.NeedsText, true
		if !f.NeedsText {
			f.Query = p.Query
		}
		f.Passthrough, f.NoTable = true, p.NoTable
	}
	return f
}
