package rowcache

import (
	"strconv"

	"vitess.io/vitess/go/sqltypes"
	querypb "vitess.io/vitess/go/vt/proto/query"
	"vitess.io/vitess/go/vt/sqlparser"
)

// Point is a point select the cache may answer: the row's key in one of a
// cached table's key caches, and the statement's shape.
type Point struct {
	t       *table
	key     *keyCache
	row     string // canonical key value
	variant string // statement shape and session shape
}

// Table is "db.table" of the point's table.
func (p Point) Table() string { return p.t.name() }

// keyArg replaces the key's value in the statement's shape.
const keyArg = "strata_cache_key"

// PointPlan is a point select's plan: everything but the key's value,
// which comes from the literal or bind variable at each execution. Plan it
// once per normalized statement (PlanPoint) and Bind it per execution.
type PointPlan struct {
	t       *table
	col     string         // the key column, lowered
	val     sqlparser.Expr // the key's literal or bind variable
	limit   *sqlparser.Argument
	variant string
}

// Point decides whether stmt is a point select the cache may answer (see
// PlanPoint) and binds it.
func (m *Manager) Point(stmt sqlparser.Statement, db string, bv map[string]*querypb.BindVariable, session string) (Point, bool) {
	pp, ok := m.PlanPoint(stmt, db)
	if !ok {
		return Point{}, false
	}
	return pp.Bind(bv, session)
}

// Usable reports whether Bind may give a Point now (the table's caches are
// ready and the binlog is within MaxLag), without counting a bypass: a
// caller that asks first and then, when false, leaves the statement to a
// path that calls Bind has it counted once.
func (pp *PointPlan) Usable() bool {
	return pp != nil && pp.t.ready.Load() && !pp.t.m.bypass.Load()
}

// Bind is the plan's Point for one execution: bv holds the statement's
// bind variables, session what else shapes the result (character set, time
// zone), which is part of the cache key. ok is false when the key's value
// cannot be cached (not an integer for an integer key, and so on).
func (pp *PointPlan) Bind(bv map[string]*querypb.BindVariable, session string) (Point, bool) {
	if pp == nil || !pp.t.ready.Load() {
		return Point{}, false
	}
	if pp.t.m.bypass.Load() {
		pp.t.m.bypasses.Add(1)
		return Point{}, false
	}
	if pp.limit != nil {
		v, ok := exprValue(pp.limit, bv)
		n, ok2 := "", false
		if ok {
			n, ok2 = canonInt(v)
		}
		if !ok2 || n == "0" || n[0] == '-' {
			return Point{}, false
		}
	}
	kc := pp.t.keyFor(pp.col)
	if kc == nil {
		return Point{}, false
	}
	row, ok := kc.canon(pp.val, bv, session, false)
	if !ok {
		return Point{}, false
	}
	return Point{t: pp.t, key: kc, row: row, variant: session + "\x00" + pp.variant}, true
}

// PlanPoint decides whether stmt is a point select of a cached table that
// the cache may answer: one table, plain columns (or *), WHERE exactly
// key = value for the primary key or a declared unique key, no grouping,
// ordering, locking or INTO, LIMIT at least 1 if any, no SQL_NO_CACHE.
// db is the session's database.
func (m *Manager) PlanPoint(stmt sqlparser.Statement, db string) (*PointPlan, bool) {
	if m == nil {
		return nil, false
	}
	sel, ok := stmt.(*sqlparser.Select)
	if !ok || sel.With != nil || len(sel.From) != 1 || sel.GroupBy != nil || sel.Having != nil ||
		len(sel.Windows) > 0 || len(sel.OrderBy) > 0 || sel.Lock != sqlparser.NoLock || sel.Into != nil ||
		sel.Where == nil || sel.SQLCalcFoundRows || (sel.Cache != nil && !*sel.Cache) {
		return nil, false
	}
	ate, ok := sel.From[0].(*sqlparser.AliasedTableExpr)
	if !ok || len(ate.Partitions) > 0 {
		return nil, false
	}
	tn, ok := ate.Expr.(sqlparser.TableName)
	if !ok {
		return nil, false
	}
	tdb := tn.Qualifier.String()
	if tdb == "" {
		tdb = db
	}
	t := m.tables[tdb+"."+tn.Name.String()]
	if t == nil {
		return nil, false
	}
	alias := ate.As.String()
	qualOK := func(q sqlparser.TableName) bool {
		if q.IsEmpty() {
			return true
		}
		if alias != "" {
			return q.Qualifier.IsEmpty() && q.Name.String() == alias
		}
		return q.Name.String() == tn.Name.String() && (q.Qualifier.IsEmpty() || q.Qualifier.String() == tdb)
	}
	for _, se := range sel.SelectExprs.Exprs {
		switch x := se.(type) {
		case *sqlparser.StarExpr:
			if !qualOK(x.TableName) {
				return nil, false
			}
		case *sqlparser.AliasedExpr:
			c, ok := x.Expr.(*sqlparser.ColName)
			if !ok || !qualOK(c.Qualifier) {
				return nil, false
			}
		default:
			return nil, false
		}
	}
	var limit *sqlparser.Argument
	if sel.Limit != nil {
		if sel.Limit.Offset != nil {
			return nil, false
		}
		// A LIMIT of a bind variable is checked at Bind: its value varies.
		switch l := sel.Limit.Rowcount.(type) {
		case *sqlparser.Literal:
			if l.Type != sqlparser.IntVal || l.Val == "0" {
				return nil, false
			}
		case *sqlparser.Argument:
			limit = l
		default:
			return nil, false
		}
	}
	cmp, ok := sel.Where.Expr.(*sqlparser.ComparisonExpr)
	if !ok || cmp.Operator != sqlparser.EqualOp {
		return nil, false
	}
	col, val := cmp.Left, cmp.Right
	if _, isCol := col.(*sqlparser.ColName); !isCol {
		col, val = val, col
	}
	cn, ok := col.(*sqlparser.ColName)
	if !ok || !qualOK(cn.Qualifier) {
		return nil, false
	}
	switch val.(type) {
	case *sqlparser.Literal, *sqlparser.Argument, *sqlparser.UnaryExpr:
	default:
		return nil, false
	}
	// Before the table's schema is read (it may not exist yet) any column
	// may be its key; Bind checks.
	if t.ready.Load() && t.keyFor(cn.Name.Lowered()) == nil {
		return nil, false
	}
	// The shape: the statement with the key's value taken out (so every
	// value of the key shares it).
	shape := sqlparser.Clone(sel)
	sc := shape.Where.Expr.(*sqlparser.ComparisonExpr)
	if sameCol(sc.Left, cn) {
		sc.Right = sqlparser.NewArgument(keyArg)
	} else {
		sc.Left = sqlparser.NewArgument(keyArg)
	}
	shape.Comments = nil
	if shape.Limit != nil {
		// Any LIMIT of at least 1 gives the same rows: the key names one.
		shape.Limit = &sqlparser.Limit{Rowcount: sqlparser.NewIntLiteral("1")}
	}
	return &PointPlan{t: t, col: cn.Name.Lowered(), val: val, limit: limit, variant: tdb + "\x00" + sqlparser.String(shape)}, true
}

func sameCol(e sqlparser.Expr, c *sqlparser.ColName) bool {
	x, ok := e.(*sqlparser.ColName)
	return ok && x.Name.Equal(c.Name) && x.Qualifier == c.Qualifier
}

// exprValue is the value of a literal or a bind variable.
func exprValue(e sqlparser.Expr, bv map[string]*querypb.BindVariable) (sqltypes.Value, bool) {
	switch x := e.(type) {
	case *sqlparser.Literal:
		switch x.Type {
		case sqlparser.IntVal:
			return sqltypes.MakeTrusted(sqltypes.Int64, []byte(x.Val)), true
		case sqlparser.StrVal:
			return sqltypes.NewVarChar(x.Val), true
		}
	case *sqlparser.Argument:
		b, ok := bv[x.Name]
		if !ok {
			return sqltypes.Value{}, false
		}
		v, err := sqltypes.BindVariableToValue(b)
		if err != nil {
			return sqltypes.Value{}, false
		}
		return v, true
	case *sqlparser.UnaryExpr:
		if x.Operator == sqlparser.UMinusOp {
			if l, ok := x.Expr.(*sqlparser.Literal); ok && l.Type == sqlparser.IntVal {
				return sqltypes.NewVarChar("-" + l.Val), true
			}
		}
	}
	return sqltypes.Value{}, false
}

// canonInt is the canonical decimal text of an integer value, or of a
// string that MySQL would compare with an integer column as exactly that
// integer (digits with an optional sign, nothing else).
func canonInt(v sqltypes.Value) (string, bool) {
	if v.IsNull() {
		return "", false
	}
	s := v.ToString()
	if v.IsIntegral() || v.IsText() || v.IsBinary() {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return strconv.FormatInt(n, 10), true
		}
		if n, err := strconv.ParseUint(s, 10, 64); err == nil {
			return strconv.FormatUint(n, 10), true
		}
	}
	return "", false
}
