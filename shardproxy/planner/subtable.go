package planner

import (
	"strings"

	"vitess.io/vitess/go/vt/sqlparser"

	"github.com/strata-db/strata/shardproxy/engine"
	"github.com/strata-db/strata/shardproxy/vschema"
)

// This file plans statements over sub-tabled tables. Before planning, every
// name of a sub-tabled table in the statement is replaced by a marker
// (engine.SubVar(i)) that the query template writes as a bind variable;
// the engine fills it with the physical table of each (shard, sub-table)
// target. The table keeps its logical name as its alias, so the rest of the
// statement (orders.id, orders.*) and the result's metadata read as before.
//
// A statement is split per sub-table only where that is exact, as a split
// per shard is: every sharded table it reads is sub-tabled alike (same
// count over the same hash, so rows with equal keys meet in sub-tables of
// the same suffix), or, for a table with a sub-table per month, it is the
// only sharded table of the statement.

// subMarks are the sub-tabled tables a statement names.
type subMarks struct {
	names  []engine.SubName
	orig   []sqlparser.TableName
	tables []*vschema.Table
	layout *vschema.Table
}

func (m *subMarks) index(tn sqlparser.TableName) int {
	if m == nil || !tn.Qualifier.IsEmpty() {
		return -1
	}
	n := tn.Name.String()
	if !strings.HasPrefix(n, "__strata_sub_") {
		return -1
	}
	for i, s := range m.names {
		if s.Var == n {
			return i
		}
	}
	return -1
}

// mark returns the marker that replaces table name tn (resolved to t).
func (m *subMarks) mark(tn sqlparser.TableName, t *vschema.Table) sqlparser.TableName {
	for i, o := range m.orig {
		if sqlparser.Equals.TableName(o, tn) {
			return sqlparser.TableName{Name: sqlparser.NewIdentifierCS(m.names[i].Var)}
		}
	}
	v := engine.SubVar(len(m.names))
	m.names = append(m.names, engine.SubName{Var: v, Qualifier: tn.Qualifier.String(), Name: tn.Name.String()})
	m.orig = append(m.orig, tn)
	m.tables = append(m.tables, t)
	if m.layout == nil {
		m.layout = t
	}
	return sqlparser.TableName{Name: sqlparser.NewIdentifierCS(v)}
}

// subTableOf resolves tn and returns its table when it has sub-tables.
func (pl *planner) subTableOf(tn sqlparser.TableName) *vschema.Table {
	if pl.subs.index(tn) >= 0 {
		return nil
	}
	_, _, t, err := pl.resolveTable(tn)
	if err != nil || !t.HasSubTables() {
		return nil
	}
	return t
}

// markSubTables returns stmt with the names of its sub-tabled tables
// replaced by markers, or stmt itself when it names none.
func (pl *planner) markSubTables(stmt sqlparser.Statement) (sqlparser.Statement, error) {
	found := false
	_ = sqlparser.Walk(func(n sqlparser.SQLNode) (bool, error) {
		if tn, ok := n.(sqlparser.TableName); ok && pl.subTableOf(tn) != nil {
			found = true
		}
		return !found, nil
	}, stmt)
	if !found {
		return stmt, nil
	}
	pl.subs = &subMarks{}
	stmt = sqlparser.Clone(stmt)
	// Statements that take no alias on their table: the columns that name
	// the table by its name are renamed with it.
	noAlias := map[string]bool{}
	switch s := stmt.(type) {
	case *sqlparser.Insert:
		if tn, ok := s.Table.Expr.(sqlparser.TableName); ok {
			noAlias[tn.Name.String()] = true
		}
	case *sqlparser.Delete:
		if len(s.Targets) == 0 {
			for _, te := range s.TableExprs {
				if at, ok := te.(*sqlparser.AliasedTableExpr); ok && at.As.IsEmpty() {
					if tn, ok := at.Expr.(sqlparser.TableName); ok {
						noAlias[tn.Name.String()] = true
					}
				}
			}
		}
	}
	var err error
	out := sqlparser.Rewrite(stmt, func(c *sqlparser.Cursor) bool {
		switch n := c.Node().(type) {
		case *sqlparser.AliasedTableExpr:
			tn, ok := n.Expr.(sqlparser.TableName)
			if !ok {
				return true
			}
			t := pl.subTableOf(tn)
			if t == nil {
				return true
			}
			if !noAlias[tn.Name.String()] && n.As.IsEmpty() {
				n.As = tn.Name
			}
			n.Expr = pl.subs.mark(tn, t)
			return false
		case *sqlparser.StarExpr:
			if q := n.TableName; !q.Qualifier.IsEmpty() && !noAlias[q.Name.String()] && pl.subTableOf(q) != nil {
				n.TableName = sqlparser.TableName{Name: q.Name}
			}
		case *sqlparser.ColName:
			q := n.Qualifier
			if q.IsEmpty() {
				return true
			}
			t := pl.subTableOf(q)
			switch {
			case t == nil:
			case noAlias[q.Name.String()]:
				n.Qualifier = pl.subs.mark(q, t)
			case !q.Qualifier.IsEmpty():
				// db.orders.id: the table is now orders_NNNN AS orders, and
				// an alias takes no database.
				n.Qualifier = sqlparser.TableName{Name: q.Name}
			}
		}
		return true
	}, nil)
	return out.(sqlparser.Statement), err
}

// checkSubTables refuses a statement whose split per sub-table would not be
// exact, and returns the route's sub-tables (nil when it names none).
func (a *analysis) checkSubTables() (*engine.SubTables, error) {
	m := a.pl.subs
	if m == nil || len(m.names) == 0 {
		return nil, nil
	}
	lay := m.layout
	var sharded []*inst
	for _, in := range a.insts {
		if in.sharded() {
			sharded = append(sharded, in)
		}
	}
	if lay.Sub.By == vschema.SubMonth {
		if len(sharded) != 1 {
			return nil, unsupported("a statement reading month-partitioned table %s together with another sharded table or another copy of itself", lay.Name)
		}
	} else {
		for _, in := range sharded {
			if !in.t.HasSubTables() || !vschema.SameSubLayout(in.t, lay) {
				return nil, unsupported("a statement reading sub-tabled table %s together with %s, which is not partitioned alike (same sub_tables count)", lay.Name, in)
			}
		}
	}
	if len(a.checks) > 0 && lay.Sub.By == vschema.SubMonth {
		return nil, unsupported("a subquery or derived table pinned to its own shard key over sub-tabled table %s (join it on the shard key instead)", lay.Name)
	}
	st := &engine.SubTables{Layout: lay, Names: m.names}
	if lay.Sub.By == vschema.SubMonth {
		a.monthBounds(sharded[0], st)
	}
	return st, nil
}

// monthBounds narrows the months from the comparisons of the month column
// with values among the conditions of in's block. A strict bound is taken
// as inclusive: more months than needed is still right.
func (a *analysis) monthBounds(in *inst, st *engine.SubTables) {
	isCol := func(e sqlparser.Expr) bool {
		col, ok := e.(*sqlparser.ColName)
		if !ok || !col.Name.EqualString(in.t.Sub.Column) {
			return false
		}
		return col.Qualifier.IsEmpty() || col.Qualifier.Name.String() == in.name
	}
	value := func(e sqlparser.Expr) *engine.EvalValue {
		v, ok := evalValue(e)
		if !ok || v.Tuple != nil || v.List {
			return nil
		}
		return &v
	}
	for _, c := range in.blk.where {
		switch e := c.(type) {
		case *sqlparser.ComparisonExpr:
			var col, val sqlparser.Expr
			op := e.Operator
			switch {
			case isCol(e.Left):
				col, val = e.Left, e.Right
			case isCol(e.Right):
				col, val = e.Right, e.Left
				switch op {
				case sqlparser.GreaterThanOp:
					op = sqlparser.LessThanOp
				case sqlparser.GreaterEqualOp:
					op = sqlparser.LessEqualOp
				case sqlparser.LessThanOp:
					op = sqlparser.GreaterThanOp
				case sqlparser.LessEqualOp:
					op = sqlparser.GreaterEqualOp
				}
			}
			if col == nil {
				continue
			}
			v := value(val)
			if v == nil {
				continue
			}
			switch op {
			case sqlparser.EqualOp:
				if st.Lo == nil {
					st.Lo = v
				}
				if st.Hi == nil {
					st.Hi = v
				}
			case sqlparser.GreaterThanOp, sqlparser.GreaterEqualOp:
				if st.Lo == nil {
					st.Lo = v
				}
			case sqlparser.LessThanOp, sqlparser.LessEqualOp:
				if st.Hi == nil {
					st.Hi = v
				}
			}
		case *sqlparser.BetweenExpr:
			if !e.IsBetween || !isCol(e.Left) {
				continue
			}
			lo, hi := value(e.From), value(e.To)
			if lo != nil && hi != nil && st.Lo == nil && st.Hi == nil {
				st.Lo, st.Hi = lo, hi
			}
		}
	}
}

// monthSub reports whether the statement reads a month-partitioned table:
// its rows by one shard key still span months, so its answers merge.
func (pl *planner) monthSub() bool {
	return pl.subs != nil && pl.subs.layout != nil && pl.subs.layout.Sub.By == vschema.SubMonth
}
