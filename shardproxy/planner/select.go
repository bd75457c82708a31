package planner

import (
	"sort"
	"strconv"
	"strings"

	"vitess.io/vitess/go/mysql/sqlerror"
	"vitess.io/vitess/go/sqltypes"
	"vitess.io/vitess/go/vt/sqlparser"

	"github.com/strata-db/strata/shardproxy/engine"
	"github.com/strata-db/strata/shardproxy/vschema"
)

// decision is where a statement goes.
type decision struct {
	single bool // one shard: the statement is sent unchanged
	route  engine.Route
	top    routeChoice // the top block's route when it spans shards
	blk    *block      // the top block (SELECT)
	group  []*inst     // its co-located sharded tables
	// byCheck is set when only subqueries or derived tables read sharded
	// tables and the route is one of their keys: the statement's rows do
	// not come from that shard's rows, so the answers of several shards
	// cannot be concatenated (a derived COUNT would come once per shard).
	byCheck bool
}

// decide places a statement from its analysis. blocks are its top-level
// query blocks (one, or the parts of a UNION).
func (a *analysis) decide(blocks []*block, what string) (*decision, error) {
	vs := a.pl.vs
	if len(a.shardedTables) == 0 {
		switch len(a.unsharded) {
		case 0:
			return &decision{single: true, route: engine.Route{Opcode: engine.AnyShard, VSchema: vs}}, nil
		case 1:
			for s := range a.unsharded {
				return &decision{single: true, route: engine.Route{Opcode: engine.Unsharded, VSchema: vs, Shard: s}}, nil
			}
		}
		return nil, unsupported("%s over unsharded tables on different shards (%s)", what, describeUnsharded(a.unsharded))
	}
	if len(a.unsharded) > 0 {
		return nil, unsupported("%s mixing sharded table %s with unsharded table %s", what, a.shardedTables[0], describeUnsharded(a.unsharded))
	}
	var choices []routeChoice
	d := &decision{}
	for _, b := range blocks {
		gs := a.groups(b)
		switch {
		case len(gs) > 1:
			return nil, unsupported("a join of sharded tables that is not on their shard keys (%s)", describeGroups(gs))
		case len(gs) == 1:
			choices = append(choices, a.routeOf(b, gs[0]))
			if d.blk == nil {
				d.blk, d.group = b, gs[0]
			}
		}
	}
	checks := a.checks
	allEqual := len(choices) > 0
	for _, c := range choices {
		if c.opcode != engine.EqualUnique {
			allEqual = false
		}
	}
	if len(choices) == 0 && len(checks) > 0 {
		// Only subqueries read sharded tables, each pinned by its key.
		choices = []routeChoice{{opcode: engine.EqualUnique, table: checks[0].Table, values: []engine.EvalValue{checks[0].Value},
			desc: checks[0].Table.Name + "." + checks[0].Table.Column + " = " + checks[0].Value.String()}}
		checks = checks[1:]
		allEqual = true
		d.byCheck = true
	}
	if len(choices) == 0 {
		return nil, unsupported("%s: no sharded table to route by", what)
	}
	sub, err := a.checkSubTables()
	if err != nil {
		return nil, err
	}
	if allEqual && a.pl.monthSub() {
		// One shard, but the key's rows span months: merge their answers.
		first := choices[0]
		d.top = first
		d.route = engine.Route{Opcode: engine.EqualUnique, VSchema: vs, Table: first.table, Values: first.values,
			SameShard: checks, Desc: first.desc, Sub: sub}
		return d, nil
	}
	if allEqual {
		first := choices[0]
		for _, c := range choices[1:] {
			checks = append(checks, engine.KeyCheck{Table: c.table, Value: c.values[0]})
		}
		d.single = true
		d.route = engine.Route{Opcode: engine.EqualUnique, VSchema: vs, Table: first.table, Values: first.values,
			SameShard: checks, Desc: first.desc, Sub: sub}
		return d, nil
	}
	if len(a.needSingle) > 0 {
		return nil, unsupported("%s that spans shards (%s) together with %s", what, a.shardedTables[0], a.needSingle[0])
	}
	for _, b := range blocks {
		if b.refPreserved != "" {
			return nil, unsupported("an outer join that preserves reference table %s against a sharded table across shards (each shard would return its unmatched rows)", b.refPreserved)
		}
	}
	if len(blocks) > 1 && len(choices) < len(blocks) {
		return nil, unsupported("a UNION across shards with a part that reads no sharded table (its rows would come once per shard)")
	}
	if len(choices) > 1 {
		// Parts of a UNION: every shard must get the whole statement.
		d.top = routeChoice{opcode: engine.Scatter, table: choices[0].table}
	} else {
		d.top = choices[0]
	}
	d.route = engine.Route{Opcode: d.top.opcode, VSchema: vs, Table: d.top.table, Values: d.top.values, Desc: d.top.desc, Sub: sub}
	return d, nil
}

func describeUnsharded(m map[string][]string) string {
	var parts []string
	for s, ts := range m {
		parts = append(parts, strings.Join(ts, ", ")+" on "+s)
	}
	sort.Strings(parts)
	return strings.Join(parts, "; ")
}

func (pl *planner) planSelectStatement(stmt sqlparser.TableStatement) (engine.Primitive, error) {
	p, err := pl.planSelect(stmt)
	if err != nil && isUnsupported(err) {
		if sub, not, ok := existsShape(stmt); ok {
			if ep, eerr := pl.planScatterExists(stmt, sub, not); eerr == nil {
				return ep, nil
			}
		}
	}
	return p, err
}

func (pl *planner) planSelect(stmt sqlparser.TableStatement) (engine.Primitive, error) {
	if err := RefuseIntoVariables(stmt); err != nil {
		return nil, err
	}
	a := newAnalysis(pl)
	blocks, err := a.analyzeTableStatement(stmt, nil)
	if err != nil {
		return nil, err
	}
	d, err := a.decide(blocks, "SELECT")
	if err != nil {
		return nil, err
	}
	read := IsPlainRead(stmt)
	if d.single {
		r := d.route
		r.Query = parsed(stmt)
		r.Read = read
		r.ScatterSafe = concatSafe(stmt) && !d.byCheck
		return withNames(stmt, &r), nil
	}
	var p engine.Primitive
	switch s := stmt.(type) {
	case *sqlparser.Select:
		p, err = pl.planScatterSelect(s, a, d, read)
	case *sqlparser.Union:
		p, err = pl.planScatterUnion(s, d, read)
	default:
		return nil, unsupported("%T across shards", stmt)
	}
	if err != nil {
		return nil, err
	}
	return withNames(stmt, p), nil
}

// WithNames wraps the plan of a SELECT the planner did not build (the
// proxy's passthrough of statements one shard answers whole) as withNames
// wraps its own: the shard sees the normalized text, with its literals
// written back as the engine writes them (1 /* INT64 */).
func WithNames(stmt sqlparser.TableStatement, p engine.Primitive) engine.Primitive {
	return withNames(stmt, p)
}

// withNames wraps a SELECT's plan in engine.ColumnNames when MySQL would
// name some of its columns by their text (see engine.ColumnNames).
func withNames(stmt sqlparser.TableStatement, p engine.Primitive) engine.Primitive {
	sel, _ := sqlparser.GetFirstSelect(stmt)
	if sel == nil || sel.SelectExprs == nil {
		return p
	}
	fromText := make([]bool, len(sel.SelectExprs.Exprs))
	any := false
	for i, it := range sel.SelectExprs.Exprs {
		ae, ok := it.(*sqlparser.AliasedExpr)
		if !ok {
			return p // a * expands to columns named by the table
		}
		if ae.As.NotEmpty() && !normalizerAlias(ae) {
			continue
		}
		switch x := ae.Expr.(type) {
		case *sqlparser.ColName:
			continue
		case *sqlparser.Argument:
			if x.Type == sqltypes.VarChar && !strings.HasPrefix(x.Name, "__") {
				// A string literal is named by its value, as the shards
				// name it; DATABASE() (__vtdbname) and the like by their text.
				continue
			}
		case *sqlparser.Literal:
			if x.Type == sqlparser.StrVal {
				continue
			}
		case *sqlparser.UnaryExpr:
			if x.Operator == sqlparser.NStringOp {
				continue // N'b' is named "b", as the shards name it
			}
		case *sqlparser.NullVal, sqlparser.BoolVal:
			continue // MySQL names them NULL, TRUE, FALSE however spelled
		case *sqlparser.IntroducerExpr:
			continue // _utf8mb4'a' is named "a", as the shards name it
		}
		fromText[i] = true
		any = true
	}
	if !any {
		return p
	}
	return &engine.ColumnNames{Input: p, FromText: fromText, Parser: sqlparser.NewTestParser()}
}

// normalizerAlias: the normalizer replaced a function call such as
// DATABASE() with a bind variable (__vtdbname) and named the column after
// the call as it formats it (database()); the client's text names it.
func normalizerAlias(ae *sqlparser.AliasedExpr) bool {
	arg, ok := ae.Expr.(*sqlparser.Argument)
	as := ae.As.String()
	return ok && strings.HasPrefix(arg.Name, "__") && strings.HasSuffix(as, "()") && strings.ToLower(as) == as
}

// RefuseIntoVariables refuses a statement that selects INTO user
// variables: the shard would set its connection's variables, while the
// session's user variables live in the proxy, so a later SELECT @v would
// not see the value. The proxy asks before it normalizes a statement
// (vitess's normalizer panics on it), the planner for what it is given.
func RefuseIntoVariables(stmt sqlparser.Statement) error {
	found := false
	_ = sqlparser.Walk(func(n sqlparser.SQLNode) (bool, error) {
		if x, ok := n.(*sqlparser.SelectInto); ok && x.Type == sqlparser.IntoVariables {
			found = true
		}
		return !found, nil
	}, stmt)
	if found {
		return unsupported("SELECT ... INTO @variable through the proxy (the session's user variables live in the proxy, not on the shard)")
	}
	return nil
}

// concatSafe reports whether the answers of several shards to stmt may be
// concatenated: a single SELECT without ORDER BY, LIMIT, aggregates,
// grouping or DISTINCT.
func concatSafe(stmt sqlparser.TableStatement) bool {
	sel, ok := stmt.(*sqlparser.Select)
	if !ok || sel.Distinct || sel.GroupBy != nil || sel.Having != nil || sel.Limit != nil || sel.Into != nil || sel.SelectExprs == nil {
		return false
	}
	for _, o := range sel.OrderBy {
		if _, isNull := o.Expr.(*sqlparser.NullVal); !isNull {
			return false
		}
	}
	return !hasAggregate(sel.SelectExprs)
}

// IsPlainRead is true for reads that may run on a replica: without locks,
// INTO or functions with side effects (user-level locks, sequences, SLEEP,
// LAST_INSERT_ID(expr)), which must run where the session writes. The
// proxy asks it of the statements it passes whole to a shard.
func IsPlainRead(stmt sqlparser.TableStatement) bool {
	plain := true
	_ = sqlparser.Walk(func(n sqlparser.SQLNode) (bool, error) {
		switch x := n.(type) {
		case *sqlparser.LockingFunc:
			plain = false
		case *sqlparser.FuncExpr:
			switch x.Name.Lowered() {
			case "nextval", "setval", "lastval", "sleep", "last_insert_id",
				"get_lock", "release_lock", "release_all_locks", "is_free_lock", "is_used_lock":
				plain = false
			}
		case *sqlparser.Select:
			if x.Lock != sqlparser.NoLock || x.Into != nil {
				plain = false
			}
		case *sqlparser.Union:
			if x.Lock != sqlparser.NoLock || x.Into != nil {
				plain = false
			}
		}
		return plain, nil
	}, stmt)
	return plain
}

// planScatterUnion handles UNION ALL of plain SELECTs across shards: each
// shard runs the union over its rows and the results are concatenated.
func (pl *planner) planScatterUnion(u *sqlparser.Union, d *decision, read bool) (engine.Primitive, error) {
	var check func(ts sqlparser.TableStatement) error
	check = func(ts sqlparser.TableStatement) error {
		switch s := ts.(type) {
		case *sqlparser.Union:
			if s.Distinct {
				return unsupported("UNION (DISTINCT) across shards; UNION ALL is supported")
			}
			if len(s.OrderBy) > 0 || s.Limit != nil {
				return unsupported("ORDER BY or LIMIT on a UNION across shards")
			}
			if err := check(s.Left); err != nil {
				return err
			}
			return check(s.Right)
		case *sqlparser.Select:
			if s.Distinct || s.GroupBy != nil || s.Having != nil || hasAggregate(s.SelectExprs) || s.Limit != nil || len(s.OrderBy) > 0 {
				return unsupported("a UNION across shards whose parts aggregate, group, deduplicate, order or limit")
			}
			return nil
		}
		return unsupported("%T in a UNION across shards", ts)
	}
	if err := check(u); err != nil {
		return nil, err
	}
	r := d.route
	r.Query = parsed(u)
	r.Read = read
	return &r, nil
}

// selectPlan builds the query pushed to the shards and the merge above it.
type selectPlan struct {
	pl    *planner
	a     *analysis
	d     *decision
	sel   *sqlparser.Select // the original
	push  *sqlparser.Select // the query sent to the shards
	items []sqlparser.SelectExpr
	star  bool
	// hidden are the expressions appended to the pushed select list.
	hidden []sqlparser.Expr
}

// hiddenRef is a placeholder column index for hidden column j: real
// indexes are fixed in finish(), when the number of hidden columns is
// known. Hidden columns are addressed from the end (after any *).
func hiddenRef(j int) int { return -1_000_000 - j }

func (sp *selectPlan) addHidden(e sqlparser.Expr) int {
	for j, h := range sp.hidden {
		if sqlparser.Equals.Expr(h, e) {
			return hiddenRef(j)
		}
	}
	sp.hidden = append(sp.hidden, e)
	return hiddenRef(len(sp.hidden) - 1)
}

// fix turns a placeholder into a real index (negative: from the end).
func (sp *selectPlan) fix(c int) int {
	if c <= -1_000_000 {
		j := -1_000_000 - c
		return -(len(sp.hidden) - j)
	}
	return c
}

func (sp *selectPlan) fixKeys(keys []engine.OrderKey) []engine.OrderKey {
	for i := range keys {
		keys[i].Col = sp.fix(keys[i].Col)
		keys[i].CollCol = sp.fix(keys[i].CollCol)
	}
	return keys
}

// itemExpr returns the expression of visible item i (nil for *).
func (sp *selectPlan) itemExpr(i int) sqlparser.Expr {
	if ae, ok := sp.items[i].(*sqlparser.AliasedExpr); ok {
		return ae.Expr
	}
	return nil
}

// visibleIndex is item i's column index, or -1 when a * comes before it
// (the * expands to an unknown number of columns).
func (sp *selectPlan) visibleIndex(i int) int {
	for j := 0; j < i; j++ {
		if _, ok := sp.items[j].(*sqlparser.StarExpr); ok {
			return -1
		}
	}
	return i
}

// findItem finds the visible item an ORDER BY / GROUP BY / HAVING
// expression names: a position (ORDER BY 2), an alias, or an equal
// expression. It returns the item number or -1.
func (sp *selectPlan) findItem(e sqlparser.Expr, positional bool) int {
	if lit, ok := e.(*sqlparser.Literal); ok && positional && lit.Type == sqlparser.IntVal {
		n, err := strconv.Atoi(lit.Val)
		if err != nil || n < 1 || n > len(sp.items) {
			return -2
		}
		return n - 1
	}
	if col, ok := e.(*sqlparser.ColName); ok && col.Qualifier.IsEmpty() {
		for i, it := range sp.items {
			if ae, ok := it.(*sqlparser.AliasedExpr); ok && ae.As.NotEmpty() && ae.As.EqualString(col.Name.String()) {
				return i
			}
		}
	}
	for i, it := range sp.items {
		if ae, ok := it.(*sqlparser.AliasedExpr); ok && sqlparser.Equals.Expr(ae.Expr, e) {
			return i
		}
	}
	return -1
}

// needsCollation is false for expressions that are surely numeric, whose
// order does not depend on a collation.
func needsCollation(e sqlparser.Expr) bool {
	switch x := e.(type) {
	case *sqlparser.CountStar, *sqlparser.Count, *sqlparser.Sum, *sqlparser.Avg:
		return false
	case *sqlparser.BinaryExpr:
		switch x.Operator {
		case sqlparser.PlusOp, sqlparser.MinusOp, sqlparser.MultOp, sqlparser.DivOp, sqlparser.IntDivOp, sqlparser.ModOp:
			return false
		}
	case *sqlparser.Literal:
		return x.Type == sqlparser.StrVal
	}
	return true
}

// collationOf is the hidden COLLATION(e) column.
func (sp *selectPlan) collationOf(e sqlparser.Expr) (int, bool) {
	if e == nil || !needsCollation(e) {
		return 0, false
	}
	if k := sp.a.keyColumn(sp.d.blk, e, false); k != nil && k.t.KeyType() == vschema.KeyInt {
		return 0, false // an integer shard key
	}
	return sp.addHidden(&sqlparser.FuncExpr{Name: sqlparser.NewIdentifierCI("collation"), Exprs: []sqlparser.Expr{sqlparser.CloneExpr(e)}}), true
}

// keyFor makes an order/group key for item i or, when i < 0, for a hidden
// copy of e.
func (sp *selectPlan) keyFor(i int, e sqlparser.Expr, desc bool) engine.OrderKey {
	k := engine.OrderKey{Desc: desc}
	if i >= 0 {
		if idx := sp.visibleIndex(i); idx >= 0 {
			k.Col = idx
		} else {
			k.Col = sp.addHidden(sqlparser.CloneExpr(sp.itemExpr(i)))
		}
		e = sp.itemExpr(i)
	} else {
		k.Col = sp.addHidden(sqlparser.CloneExpr(e))
	}
	k.CollCol, k.HasColl = sp.collationOf(e)
	return k
}

// finish appends the hidden columns to the pushed query.
func (sp *selectPlan) finish() {
	exprs := make([]sqlparser.SelectExpr, 0, len(sp.items)+len(sp.hidden))
	exprs = append(exprs, sp.push.SelectExprs.Exprs...)
	for _, h := range sp.hidden {
		exprs = append(exprs, &sqlparser.AliasedExpr{Expr: h})
	}
	sp.push.SelectExprs = &sqlparser.SelectExprs{Exprs: exprs}
}

func (pl *planner) planScatterSelect(sel *sqlparser.Select, a *analysis, d *decision, read bool) (engine.Primitive, error) {
	switch {
	case sel.Into != nil:
		return nil, unsupported("SELECT ... INTO across shards")
	case sel.SQLCalcFoundRows:
		return nil, unsupported("SQL_CALC_FOUND_ROWS across shards")
	case sel.GroupBy != nil && sel.GroupBy.WithRollup:
		return nil, unsupported("GROUP BY ... WITH ROLLUP across shards")
	case len(sel.Windows) > 0 || hasWindow(sel):
		return nil, unsupported("window functions (OVER) across shards")
	case sel.SelectExprs == nil:
		return nil, unsupported("a SELECT without columns")
	}
	sp := &selectPlan{pl: pl, a: a, d: d, sel: sel, push: sqlparser.CloneRefOfSelect(sel)}
	sp.items = sel.SelectExprs.Exprs
	for _, it := range sp.items {
		switch it.(type) {
		case *sqlparser.StarExpr:
			sp.star = true
		case *sqlparser.AliasedExpr:
		default:
			return nil, unsupported("%s in the select list across shards", sqlString(it))
		}
	}
	aggregated := sel.GroupBy != nil || hasAggregate(sel.SelectExprs) || hasAggregate(sel.OrderBy) ||
		(sel.Having != nil && hasAggregate(sel.Having.Expr))
	if (aggregated || sel.Distinct) && !sp.shardLocal() {
		return sp.planAggregate(read)
	}
	return sp.planPlain(read)
}

func hasWindow(n sqlparser.SQLNode) bool {
	found := false
	_ = sqlparser.Walk(func(node sqlparser.SQLNode) (bool, error) {
		switch node.(type) {
		case *sqlparser.Subquery:
			return false, nil
		case *sqlparser.OverClause, *sqlparser.WindowSpecification:
			found = true
		}
		return !found, nil
	}, n)
	return found
}

// shardLocal reports whether every group (or distinct row) lives on one
// shard: GROUP BY or SELECT DISTINCT includes the shard key of a table
// that is not on the NULL side of an outer join. Then the shards compute
// whole groups and the proxy only merges rows.
func (sp *selectPlan) shardLocal() bool {
	if sp.pl.monthSub() {
		return false // a key's rows span months
	}
	isKey := func(e sqlparser.Expr) bool {
		k := sp.a.keyColumn(sp.d.blk, e, false)
		if k == nil || k.nullable {
			return false
		}
		for _, g := range sp.d.group {
			if g == k {
				return true
			}
		}
		return false
	}
	if sp.sel.GroupBy != nil {
		for _, g := range sp.sel.GroupBy.Exprs {
			if i := sp.findItem(g, true); i >= 0 {
				if col, ok := g.(*sqlparser.ColName); ok && sp.aliasOfOther(i, col) {
					// A FROM column of that name would win over the alias:
					// only the key column itself is sure to be meant.
					if isKey(g) {
						return true
					}
					continue
				}
				g = sp.itemExpr(i)
			}
			if g != nil && isKey(g) {
				return true
			}
		}
		return false
	}
	if sp.sel.Distinct && !hasAggregate(sp.sel.SelectExprs) {
		for i := range sp.items {
			if e := sp.itemExpr(i); e != nil && isKey(e) {
				return true
			}
		}
	}
	return false
}

// planPlain merges rows: merge sort by ORDER BY, LIMIT offset+count pushed
// down and applied again, hidden columns dropped.
func (sp *selectPlan) planPlain(read bool) (engine.Primitive, error) {
	var keys []engine.OrderKey
	for _, o := range sp.sel.OrderBy {
		if _, isNull := o.Expr.(*sqlparser.NullVal); isNull {
			continue // ORDER BY NULL: no order
		}
		i := sp.findItem(o.Expr, true)
		if i == -2 {
			return nil, badPosition(o.Expr, "ORDER BY")
		}
		if i < 0 && sp.sel.Distinct {
			return nil, unsupported("ORDER BY %s, not in the SELECT DISTINCT list, across shards", sqlString(o.Expr))
		}
		if i < 0 && sp.usesAlias(o.Expr) {
			return nil, unsupported("ORDER BY an expression over a select alias (%s) across shards", sqlString(o.Expr))
		}
		if i >= 0 && sp.itemExpr(i) == nil {
			return nil, unsupported("ORDER BY a position inside * across shards")
		}
		keys = append(keys, sp.keyFor(i, o.Expr, o.Direction == sqlparser.DescOrder))
	}
	var lim *engine.Limit
	if sp.sel.Limit != nil {
		l, err := limitOf(sp.sel.Limit)
		if err != nil {
			return nil, err
		}
		l.PushDown = true
		lim = l
		sp.push.Limit = &sqlparser.Limit{Rowcount: sqlparser.NewArgument(engine.UpperLimitVar)}
	}
	sp.finish()
	r := sp.d.route
	r.Query = parsed(sp.push)
	r.Read = read
	r.OrderBy = sp.fixKeys(keys)
	var p engine.Primitive = &r
	if lim != nil {
		lim.Input = p
		p = lim
	}
	if len(sp.hidden) > 0 {
		p = &engine.Truncate{Input: p, Hidden: len(sp.hidden)}
	}
	return p, nil
}

func limitOf(l *sqlparser.Limit) (*engine.Limit, error) {
	if l.Rowcount == nil {
		return nil, unsupported("LIMIT without a row count")
	}
	c, ok := evalValue(l.Rowcount)
	if !ok || c.Tuple != nil || c.List {
		return nil, unsupported("LIMIT %s across shards", sqlString(l.Rowcount))
	}
	out := &engine.Limit{Count: c}
	if l.Offset != nil {
		o, ok := evalValue(l.Offset)
		if !ok || o.Tuple != nil || o.List {
			return nil, unsupported("OFFSET %s across shards", sqlString(l.Offset))
		}
		out.Offset = &o
	}
	return out, nil
}

// badPosition is MariaDB's error for a GROUP BY or ORDER BY position
// beyond the select list (ORDER BY 5 of three columns).
func badPosition(e sqlparser.Expr, clause string) error {
	return sqlerror.NewSQLErrorf(sqlerror.ERBadFieldError, sqlerror.SSBadFieldError, "Unknown column '%s' in '%s'", sqlString(e), clause)
}
