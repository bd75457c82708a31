package rowcache

import (
	"slices"

	"vitess.io/vitess/go/sqltypes"
	querypb "vitess.io/vitess/go/vt/proto/query"
	"vitess.io/vitess/go/vt/sqlparser"

	"github.com/strata-db/strata/cachetier"
	"github.com/strata-db/strata/shardproxy/binlogtail"
)

// Invalidation is what a write (or a transaction's writes) touched in the
// cached tables. The zero value touches nothing.
type Invalidation struct {
	items []inval
}

type inval struct {
	t *table
	// rows of the primary key cache; uniq values per unique key cache
	rows []string
	uniq map[*keyCache][]string
	// all: every row of t may have changed; mayInsert: and rows it
	// cannot name may have been inserted (the bloom filters are stale).
	all, mayInsert bool
	// uniqAll: the unique key caches' rows are unknown.
	uniqAll bool
}

// Empty reports whether the invalidation touches nothing.
func (v Invalidation) Empty() bool { return len(v.items) == 0 }

// Merge adds o's rows to v (a transaction's writes, applied at COMMIT).
func (v *Invalidation) Merge(o Invalidation) { v.items = append(v.items, o.items...) }

// Writes returns what stmt, if it is a write, may change in the cached
// tables: the rows it names by primary key when it names them all, else
// the whole table. A statement the cache cannot reason about (CALL, LOAD
// DATA, multi-table writes, DDL) touches every cached table it may reach.
//
// session is the writing session's settings (see Bind).
func (m *Manager) Writes(stmt sqlparser.Statement, db string, bv map[string]*querypb.BindVariable, session string) Invalidation {
	if m == nil || len(m.tables) == 0 {
		return Invalidation{}
	}
	v := m.writes(stmt, db, bv, session)
	// Writes that change rows of a cached table the statement does not
	// name: a foreign key's cascade (an update or delete of a parent), a
	// trigger of another table, an updatable view of the table.
	var written []sqlparser.SQLNode
	cascades := true
	switch s := stmt.(type) {
	case *sqlparser.Update:
		for _, e := range s.TableExprs {
			written = append(written, e)
		}
	case *sqlparser.Delete:
		for _, e := range s.TableExprs {
			written = append(written, e)
		}
	case *sqlparser.Insert:
		written = append(written, s.Table)
		cascades = s.Action == sqlparser.ReplaceAct || len(s.OnDup) > 0
	}
	for _, n := range written {
		_ = sqlparser.Walk(func(n sqlparser.SQLNode) (bool, error) {
			if tn, ok := n.(sqlparser.TableName); ok {
				d := tn.Qualifier.String()
				if d == "" {
					d = db
				}
				m.indirect(&v, d+"."+tn.Name.String(), cascades, true)
			}
			return true, nil
		}, n)
	}
	return v
}

// indirect adds to v the cached tables a write of other ("db.table")
// changes without naming them: if writers, those with a trigger of other
// or a view other writing them (all their rows, and rows may be
// inserted); if cascades, those whose foreign keys cascade from other.
// The binlog passes writers false: it logs the rows triggers change.
func (m *Manager) indirect(v *Invalidation, other string, cascades, writers bool) {
	for _, t := range m.tables {
		if !t.live.Load() {
			continue
		}
		if ws := t.writers.Load(); writers && ws != nil && slices.Contains(*ws, other) {
			v.items = append(v.items, inval{t: t, all: true, mayInsert: true})
		} else if ps := t.parents.Load(); cascades && ps != nil && slices.Contains(*ps, other) {
			v.items = append(v.items, inval{t: t, all: true})
		}
	}
}

func (m *Manager) writes(stmt sqlparser.Statement, db string, bv map[string]*querypb.BindVariable, session string) Invalidation {
	switch s := stmt.(type) {
	case *sqlparser.Select, *sqlparser.Union, *sqlparser.Show, *sqlparser.Set, *sqlparser.Begin,
		*sqlparser.Commit, *sqlparser.Rollback, *sqlparser.Use, *sqlparser.ExplainStmt, *sqlparser.ExplainTab,
		*sqlparser.Savepoint, *sqlparser.SRollback, *sqlparser.Release:
		return Invalidation{}
	case *sqlparser.Insert:
		return m.insertWrites(s, db, bv, session)
	case *sqlparser.Update:
		if t := m.single(s.TableExprs, db); t != nil && s.With == nil {
			return m.keyedWrite(t, s.Where, s.Exprs, bv, session)
		}
		return m.tablesOf(s.TableExprs, db)
	case *sqlparser.Delete:
		if t := m.single(s.TableExprs, db); t != nil && s.With == nil && len(s.Targets) == 0 {
			return m.keyedWrite(t, s.Where, nil, bv, session)
		}
		return m.tablesOf(s.TableExprs, db)
	case sqlparser.DDLStatement:
		var v Invalidation
		for _, tn := range s.AffectedTables() {
			if t := m.lookup(tn, db); t != nil {
				v.items = append(v.items, inval{t: t, all: true, mayInsert: true})
			}
		}
		return v
	}
	return m.everything()
}

func (m *Manager) everything() Invalidation {
	var v Invalidation
	for _, t := range m.tables {
		if !t.live.Load() {
			continue
		}
		v.items = append(v.items, inval{t: t, all: true, mayInsert: true})
	}
	return v
}

// lookup is the cached table tn names, if its caches exist.
func (m *Manager) lookup(tn sqlparser.TableName, db string) *table {
	d := tn.Qualifier.String()
	if d == "" {
		d = db
	}
	if t := m.tables[d+"."+tn.Name.String()]; t != nil && t.live.Load() {
		return t
	}
	return nil
}

// single is the cached table a one-table statement writes, or nil.
func (m *Manager) single(exprs []sqlparser.TableExpr, db string) *table {
	if len(exprs) != 1 {
		return nil
	}
	ate, ok := exprs[0].(*sqlparser.AliasedTableExpr)
	if !ok {
		return nil
	}
	tn, ok := ate.Expr.(sqlparser.TableName)
	if !ok {
		return nil
	}
	return m.lookup(tn, db)
}

// tablesOf invalidates every cached table named anywhere in exprs (joins
// included); a subquery may name more, so it falls back to everything.
func (m *Manager) tablesOf(exprs []sqlparser.TableExpr, db string) Invalidation {
	var v Invalidation
	complex := false
	for _, e := range exprs {
		_ = sqlparser.Walk(func(n sqlparser.SQLNode) (bool, error) {
			switch x := n.(type) {
			case sqlparser.TableName:
				if t := m.lookup(x, db); t != nil {
					v.items = append(v.items, inval{t: t, all: true, mayInsert: true})
				}
			case *sqlparser.DerivedTable, *sqlparser.Subquery:
				complex = true
			}
			return true, nil
		}, e)
	}
	if complex {
		return m.everything()
	}
	return v
}

// keyedWrite is an UPDATE (exprs non-nil) or DELETE of one cached table:
// the rows named by "pk = v" or "pk IN (…)" in WHERE's top-level ANDs, or
// the whole table. Unique key caches lose all their rows: the old unique
// values of the rows written are unknown here.
func (m *Manager) keyedWrite(t *table, where *sqlparser.Where, exprs sqlparser.UpdateExprs, bv map[string]*querypb.BindVariable, session string) Invalidation {
	one := inval{t: t, uniqAll: true}
	rows, ok := keysIn(t.pk, where, bv, session)
	if !ok {
		one.all = true
		return Invalidation{items: []inval{one}}
	}
	one.rows = rows
	for _, ue := range exprs {
		if ue.Name.Name.Lowered() == t.pk.col {
			// The key itself changes: the new key's negative entry goes too.
			v, ok := exprValue(ue.Expr, bv)
			k, ok2 := "", false
			if ok {
				k, ok2 = t.pk.canonValue(v, session, true)
			}
			if !ok2 {
				one.all, one.mayInsert = true, true
				return Invalidation{items: []inval{one}}
			}
			one.rows = append(one.rows, k)
		}
	}
	return Invalidation{items: []inval{one}}
}

// keysIn finds a conjunct kc = v or kc IN (v, …) in where.
func keysIn(kc *keyCache, where *sqlparser.Where, bv map[string]*querypb.BindVariable, session string) ([]string, bool) {
	if where == nil {
		return nil, false
	}
	for _, e := range sqlparser.SplitAndExpression(nil, where.Expr) {
		cmp, ok := e.(*sqlparser.ComparisonExpr)
		if !ok {
			continue
		}
		col, val := cmp.Left, cmp.Right
		if _, isCol := col.(*sqlparser.ColName); !isCol {
			col, val = val, col
		}
		cn, ok := col.(*sqlparser.ColName)
		if !ok || cn.Name.Lowered() != kc.col {
			continue
		}
		switch cmp.Operator {
		case sqlparser.EqualOp:
			if k, ok := kc.canon(val, bv, session, true); ok {
				return []string{k}, true
			}
		case sqlparser.InOp:
			var out []string
			switch tup := val.(type) {
			case sqlparser.ValTuple:
				for _, x := range tup {
					k, ok := kc.canon(x, bv, session, true)
					if !ok {
						return nil, false
					}
					out = append(out, k)
				}
				return out, true
			case sqlparser.ListArg:
				b, ok := bv[string(tup)]
				if !ok || b.Type != querypb.Type_TUPLE {
					return nil, false
				}
				for _, x := range b.Values {
					k, ok := kc.canonValue(sqltypes.ProtoToValue(x), session, true)
					if !ok {
						return nil, false
					}
					out = append(out, k)
				}
				return out, true
			}
		}
	}
	return nil, false
}

// canon is the cache row key a literal or bind variable names, if the
// cache can tell: an integer key needs an integer value (or a string of
// one), a string key a string (see canonText for session and write).
func (kc *keyCache) canon(e sqlparser.Expr, bv map[string]*querypb.BindVariable, session string, write bool) (string, bool) {
	v, ok := exprValue(e, bv)
	if !ok {
		return "", false
	}
	if kc.isInt {
		return canonInt(v)
	}
	if !v.IsText() && !v.IsBinary() {
		return "", false
	}
	return kc.canonText(v.ToString(), session, write)
}

// insertWrites names the rows an INSERT or REPLACE writes by their values,
// when every row gives its primary key as a value. REPLACE and ON
// DUPLICATE KEY UPDATE can change a row found through another unique key,
// whose primary key is unknown: with such an index they touch the table.
func (m *Manager) insertWrites(ins *sqlparser.Insert, db string, bv map[string]*querypb.BindVariable, session string) Invalidation {
	tn, err := ins.Table.TableName()
	if err != nil {
		return m.everything()
	}
	t := m.lookup(tn, db)
	if t == nil {
		if _, isSel := ins.Rows.(sqlparser.Values); !isSel {
			return m.everything() // INSERT … SELECT from a cached table is a read; but a subquery may hide a write
		}
		return Invalidation{}
	}
	one := inval{t: t, uniq: map[*keyCache][]string{}}
	whole := Invalidation{items: []inval{{t: t, all: true, mayInsert: true}}}
	values, ok := ins.Rows.(sqlparser.Values)
	if !ok || len(ins.Columns) == 0 {
		return whole
	}
	if (ins.Action == sqlparser.ReplaceAct || len(ins.OnDup) > 0) && t.otherUnique.Load() {
		return whole
	}
	var movedTo []string // primary keys ON DUPLICATE KEY UPDATE sets
	if len(ins.OnDup) > 0 {
		one.uniqAll = true // the update may change unique columns of the existing row
		for _, ue := range ins.OnDup {
			if ue.Name.Name.Lowered() != t.pk.col || keepsKey(ue.Expr, t.pk.col) {
				continue
			}
			// The existing row moves to another key, which may have been
			// remembered as missing: that key goes too, or the table
			// when the new key is not a value.
			k, ok := t.pk.canon(ue.Expr, bv, session, true)
			if !ok {
				return whole
			}
			movedTo = append(movedTo, k)
		}
	}
	idx := func(col string) int {
		for i, c := range ins.Columns {
			if c.Lowered() == col {
				return i
			}
		}
		return -1
	}
	pki := idx(t.pk.col)
	if pki < 0 {
		return whole // a generated key: unknown here
	}
	for _, row := range values {
		if len(row) != len(ins.Columns) {
			return whole
		}
		k, ok := t.pk.canon(row[pki], bv, session, true)
		if !ok {
			return whole
		}
		one.rows = append(one.rows, k)
		for _, u := range t.uniques {
			i := idx(u.col)
			if i < 0 {
				one.uniqAll = true
				continue
			}
			if k, ok := u.canon(row[i], bv, session, true); ok {
				one.uniq[u] = append(one.uniq[u], k)
			} else {
				one.uniqAll = true
			}
		}
	}
	one.rows = append(one.rows, movedTo...)
	return Invalidation{items: []inval{one}}
}

// keepsKey reports whether e, assigned to the primary key col by ON
// DUPLICATE KEY UPDATE, leaves the row's key as it is: col itself,
// VALUES(col) (the inserted key, which is the existing row's), or
// LAST_INSERT_ID(col), the ORMs' idiom.
func keepsKey(e sqlparser.Expr, col string) bool {
	isCol := func(e sqlparser.Expr) bool {
		c, ok := e.(*sqlparser.ColName)
		return ok && c.Name.Lowered() == col
	}
	switch x := e.(type) {
	case *sqlparser.ColName:
		return isCol(x)
	case *sqlparser.ValuesFuncExpr:
		return x.Name != nil && x.Name.Name.Lowered() == col
	case *sqlparser.FuncExpr:
		return x.Name.Lowered() == "last_insert_id" && len(x.Exprs) == 1 && isCol(x.Exprs[0])
	}
	return false
}

// Invalidate applies v: call it after the write's backend OK (or error:
// the write may have happened) and before the client's OK.
func (m *Manager) Invalidate(v Invalidation) {
	m.apply(v, cachetier.SourceLocal)
}

func (m *Manager) apply(v Invalidation, source string) {
	if m == nil {
		return
	}
	for _, it := range v.items {
		t := it.t
		if it.all {
			// Before the entries go: a reader that sees them gone sees
			// the shapes' columns gone too (the write may be DDL).
			t.schema.Add(1)
			for _, kc := range t.all() {
				kc.c.InvalidateAll(source, it.mayInsert)
			}
			if it.mayInsert {
				t.scheduleRebuild()
			}
			continue
		}
		for _, r := range it.rows {
			t.pk.c.Invalidate(r, source)
		}
		for _, u := range t.uniques {
			if it.uniqAll {
				u.c.InvalidateAll(source, false)
			}
			for _, r := range it.uniq[u] {
				u.c.Invalidate(r, source)
			}
		}
	}
}

// OnTxn invalidates what a transaction seen in a shard's binlog changed;
// it is the binlog tailers' callback.
func (m *Manager) OnTxn(tx binlogtail.Txn) {
	if m == nil {
		return
	}
	var v Invalidation
	var parents map[string]bool // seen in this transaction
	for _, rc := range tx.Rows {
		if name := rc.DB + "." + rc.Table; !parents[name] {
			// Rows of a parent: the cascades to cached children are not
			// in the binlog.
			if parents == nil {
				parents = map[string]bool{}
			}
			parents[name] = true
			m.indirect(&v, name, true, false)
		}
		t := m.tables[rc.DB+"."+rc.Table]
		if t == nil || !t.live.Load() {
			continue
		}
		one := inval{t: t, uniq: map[*keyCache][]string{}}
		if len(rc.Key) == 1 {
			if k, ok := t.pk.canonValue(rc.Key[0], "", true); ok {
				one.rows = append(one.rows, k)
			} else {
				one.all, one.mayInsert = true, true
			}
		}
		for _, u := range t.uniques {
			found := false
			for i, c := range rc.Columns {
				if lower(c) == u.col && i < len(rc.Row) {
					if k, ok := u.canonValue(rc.Row[i], "", true); ok {
						one.uniq[u] = append(one.uniq[u], k)
						found = true
					}
				}
			}
			if !found {
				// NULL or absent from the image: cannot name the entry.
				one.uniqAll = true
			}
		}
		v.items = append(v.items, one)
	}
	for _, tc := range tx.Tables {
		for _, t := range m.tables {
			if !t.live.Load() {
				continue
			}
			if tc.DB == "" || (tc.DB == t.db && (tc.Table == "" || tc.Table == t.tbl)) {
				v.items = append(v.items, inval{t: t, all: true, mayInsert: true})
			}
		}
	}
	m.apply(v, cachetier.SourceBinlog)
}
