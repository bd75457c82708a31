package planner

import (
	"vitess.io/vitess/go/vt/sqlparser"

	"github.com/strata-db/strata/shardproxy/engine"
)

// aggPlan is the state of planning an aggregated SELECT across shards.
type aggPlan struct {
	*selectPlan
	agg         *engine.Aggregate
	distinctArg sqlparser.Expr
	// hiddenAggs are aggregates added for HAVING and ORDER BY.
	hiddenAggs []hiddenAgg
	// cols are the HAVING column references, fixed in the end.
	cols []*engine.ColumnExpr
	// probes are the hidden columns of GROUP BY names that are also select
	// aliases of other expressions, by lowercased name (see groupProbe).
	probes map[string]int
}

type hiddenAgg struct {
	e   sqlparser.Expr
	col int
}

// isKey reports whether e is the shard key of a co-located table that is
// not on the NULL side of an outer join: its values are disjoint across
// shards.
func (sp *selectPlan) isKey(e sqlparser.Expr) bool {
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

// planAggregate: the shards compute partial aggregates per group (grouped
// also by the DISTINCT aggregates' argument), the proxy merges them, then
// applies HAVING, ORDER BY and LIMIT, and drops the hidden columns.
func (sp *selectPlan) planAggregate(read bool) (engine.Primitive, error) {
	if sp.star {
		return nil, unsupported("SELECT * with GROUP BY, aggregates or DISTINCT across shards")
	}
	if sp.sel.Distinct && (sp.sel.GroupBy != nil || hasAggregate(sp.sel.SelectExprs)) {
		return nil, unsupported("SELECT DISTINCT with GROUP BY or aggregates across shards")
	}
	ap := &aggPlan{selectPlan: sp, agg: &engine.Aggregate{}}
	for i := range sp.items {
		e := sp.itemExpr(i)
		if af, ok := e.(sqlparser.AggrFunc); ok {
			if err := ap.addAggregate(i, af); err != nil {
				return nil, err
			}
			continue
		}
		if hasAggregate(e) {
			return nil, unsupported("an expression over aggregates (%s) across shards", sqlString(e))
		}
	}
	if sp.sel.GroupBy != nil {
		for _, g := range sp.sel.GroupBy.Exprs {
			i := sp.findItem(g, true)
			if i == -2 {
				return nil, badPosition(g, "GROUP BY")
			}
			if i >= 0 {
				if hasAggregate(sp.itemExpr(i)) {
					return nil, unsupported("GROUP BY an aggregate (%s)", sqlString(g))
				}
				if col, ok := g.(*sqlparser.ColName); ok && sp.aliasOfOther(i, col) {
					k := sp.keyFor(-1, groupProbe(col), false)
					if ap.probes == nil {
						ap.probes = map[string]int{}
					}
					ap.probes[col.Name.Lowered()] = k.Col
					ap.agg.GroupBy = append(ap.agg.GroupBy, k)
					continue
				}
			}
			ap.agg.GroupBy = append(ap.agg.GroupBy, sp.keyFor(i, g, false))
		}
	}
	if sp.sel.Distinct {
		for i := range sp.items {
			ap.agg.GroupBy = append(ap.agg.GroupBy, sp.keyFor(i, nil, false))
		}
	}
	var pred engine.Expr
	if sp.sel.Having != nil {
		var err error
		if pred, err = ap.compileHaving(sp.sel.Having.Expr); err != nil {
			return nil, err
		}
		sp.push.Having = nil
	}
	var sortKeys []engine.OrderKey
	for _, o := range sp.sel.OrderBy {
		if _, isNull := o.Expr.(*sqlparser.NullVal); isNull {
			continue
		}
		desc := o.Direction == sqlparser.DescOrder
		i := sp.findItem(o.Expr, true)
		switch {
		case i == -2:
			return nil, badPosition(o.Expr, "ORDER BY")
		case i >= 0:
			sortKeys = append(sortKeys, sp.keyFor(i, o.Expr, desc))
		default:
			if af, ok := o.Expr.(sqlparser.AggrFunc); ok {
				col, err := ap.aggColumn(af)
				if err != nil {
					return nil, err
				}
				k := engine.OrderKey{Col: col, Desc: desc}
				k.CollCol, k.HasColl = sp.collationOf(o.Expr)
				sortKeys = append(sortKeys, k)
				continue
			}
			if hasAggregate(o.Expr) {
				return nil, unsupported("ORDER BY an expression over aggregates (%s) across shards", sqlString(o.Expr))
			}
			if sp.sel.Distinct {
				return nil, unsupported("ORDER BY %s, not in the SELECT DISTINCT list, across shards", sqlString(o.Expr))
			}
			if sp.usesAlias(o.Expr) {
				return nil, unsupported("ORDER BY an expression over a select alias (%s) across shards", sqlString(o.Expr))
			}
			sortKeys = append(sortKeys, sp.keyFor(-1, o.Expr, desc))
		}
	}
	sp.push.OrderBy = nil
	var lim *engine.Limit
	if sp.sel.Limit != nil {
		var err error
		if lim, err = limitOf(sp.sel.Limit); err != nil {
			return nil, err
		}
		sp.push.Limit = nil
	}
	if ap.distinctArg != nil {
		k := engine.OrderKey{Col: sp.addHidden(sqlparser.CloneExpr(ap.distinctArg))}
		k.CollCol, k.HasColl = sp.collationOf(ap.distinctArg)
		ap.agg.Distinct = &k
		if sp.push.GroupBy == nil {
			sp.push.GroupBy = &sqlparser.GroupBy{}
		}
		sp.push.GroupBy.Exprs = append(sp.push.GroupBy.Exprs, sqlparser.CloneExpr(ap.distinctArg))
	}
	ap.agg.Scalar = sp.sel.GroupBy == nil && !sp.sel.Distinct
	sp.finish()

	// Every placeholder becomes a real column index.
	sp.fixKeys(ap.agg.GroupBy)
	if ap.agg.Distinct != nil {
		d := *ap.agg.Distinct
		d.Col, d.CollCol = sp.fix(d.Col), sp.fix(d.CollCol)
		ap.agg.Distinct = &d
	}
	for i := range ap.agg.Aggs {
		a := &ap.agg.Aggs[i]
		a.Col, a.SumCol, a.CountCol, a.CollCol = sp.fix(a.Col), sp.fix(a.SumCol), sp.fix(a.CountCol), sp.fix(a.CollCol)
	}
	for _, c := range ap.cols {
		c.Col = sp.fix(c.Col)
	}
	sp.fixKeys(sortKeys)

	r := sp.d.route
	r.Query = parsed(sp.push)
	r.Read = read
	ap.agg.Input = &r
	if ap.agg.Scalar && ap.distinctArg != nil {
		// The shards group by the DISTINCT argument, so over no rows they
		// return none; one server would still return one row.
		empty := sqlparser.CloneRefOfSelect(sp.push)
		empty.GroupBy = nil
		empty.Where = sqlparser.NewWhere(sqlparser.WhereClause, sqlparser.BoolVal(false))
		ap.agg.Empty = &engine.Route{Opcode: engine.AnyShard, VSchema: sp.pl.vs, Query: parsed(empty), Read: read, Sub: r.Sub}
	}
	var p engine.Primitive = ap.agg
	if pred != nil {
		p = &engine.Filter{Input: p, Pred: pred}
	}
	if len(sortKeys) > 0 {
		p = &engine.Sort{Input: p, Keys: sortKeys}
	}
	if lim != nil {
		lim.Input = p
		p = lim
	}
	if len(sp.hidden) > 0 {
		p = &engine.Truncate{Input: p, Hidden: len(sp.hidden)}
	}
	return p, nil
}

// aliasOfOther reports whether ref is an unqualified name that is item i's
// alias for an expression other than a column of that name: GROUP BY ref
// then means a column of a FROM table named ref if there is one (MySQL
// looks there before the select list), which the proxy cannot know.
func (sp *selectPlan) aliasOfOther(i int, ref *sqlparser.ColName) bool {
	ae, ok := sp.items[i].(*sqlparser.AliasedExpr)
	if !ok || !ref.Qualifier.IsEmpty() || ae.As.IsEmpty() || !ae.As.EqualString(ref.Name.String()) {
		return false
	}
	c, ok := ae.Expr.(*sqlparser.ColName)
	return !ok || !c.Name.EqualString(ref.Name.String())
}

// groupProbe is (SELECT name): a scalar subquery resolves an outer name
// as GROUP BY does, a FROM column first and then a select alias, so the
// shards return the value they grouped by whichever it is.
func groupProbe(name *sqlparser.ColName) sqlparser.Expr {
	return &sqlparser.Subquery{Select: &sqlparser.Select{
		SelectExprs: &sqlparser.SelectExprs{Exprs: []sqlparser.SelectExpr{&sqlparser.AliasedExpr{Expr: sqlparser.CloneRefOfColName(name)}}},
		From:        []sqlparser.TableExpr{&sqlparser.AliasedTableExpr{Expr: sqlparser.TableName{Name: sqlparser.NewIdentifierCS("dual")}}},
	}}
}

// aliasShadows reports whether item i's alias is also the name of a column
// the statement uses: GROUP BY and HAVING then mean the column in MySQL,
// while the proxy would merge by the aliased expression.
func (sp *selectPlan) aliasShadows(i int, ref *sqlparser.ColName) bool {
	ae, ok := sp.items[i].(*sqlparser.AliasedExpr)
	if !ok || ae.As.IsEmpty() || !ae.As.EqualString(ref.Name.String()) {
		return false
	}
	if c, ok := ae.Expr.(*sqlparser.ColName); ok && c.Name.EqualString(ae.As.String()) {
		return false
	}
	// Only the select list, FROM and WHERE cannot name aliases: a column
	// there with the alias's name is a real column.
	found := false
	visit := func(n sqlparser.SQLNode) (bool, error) {
		if c, ok := n.(*sqlparser.ColName); ok && c.Name.EqualString(ae.As.String()) {
			found = true
		}
		return !found, nil
	}
	nodes := []sqlparser.SQLNode{sp.sel.SelectExprs}
	for _, f := range sp.sel.From {
		nodes = append(nodes, f)
	}
	if sp.sel.Where != nil {
		nodes = append(nodes, sp.sel.Where)
	}
	for _, n := range nodes {
		_ = sqlparser.Walk(visit, n)
	}
	return found
}

func (ap *aggPlan) setDistinct(arg sqlparser.Expr) error {
	if ap.distinctArg == nil {
		ap.distinctArg = arg
		return nil
	}
	if !sqlparser.Equals.Expr(ap.distinctArg, arg) {
		return unsupported("DISTINCT aggregates over different expressions (%s, %s) across shards", sqlString(ap.distinctArg), sqlString(arg))
	}
	return nil
}

// addAggregate records how the aggregate af in column col (a visible item,
// or a hidden placeholder from aggColumn) merges.
func (ap *aggPlan) addAggregate(col int, af sqlparser.AggrFunc) error {
	sp := ap.selectPlan
	ac := engine.AggregateCol{Col: col}
	switch a := af.(type) {
	case *sqlparser.CountStar:
		ac.Op = engine.AggCount
	case *sqlparser.Count:
		ac.Op = engine.AggCount
		if a.Distinct {
			if len(a.Args) != 1 {
				return unsupported("COUNT(DISTINCT) of several expressions across shards")
			}
			if !sp.isKey(a.Args[0]) {
				if err := ap.setDistinct(a.Args[0]); err != nil {
					return err
				}
				ac.Op = engine.AggCountDistinct
			}
		}
	case *sqlparser.Sum:
		ac.Op = engine.AggSum
		if a.Distinct && !sp.isKey(a.Arg) {
			if err := ap.setDistinct(a.Arg); err != nil {
				return err
			}
			ac.Op = engine.AggSumDistinct
		}
		if hasDivision(a.Arg) {
			ac.SumCol, ac.ExactSum = sp.addHidden(exactSum(a)), true
		}
	case *sqlparser.Avg:
		ac.Op = engine.AggAvg
		if a.Distinct && !sp.isKey(a.Arg) {
			if err := ap.setDistinct(a.Arg); err != nil {
				return err
			}
			ac.Op = engine.AggAvgDistinct
		}
		sum := &sqlparser.Sum{Arg: sqlparser.CloneExpr(a.Arg), Distinct: a.Distinct}
		if hasDivision(a.Arg) {
			ac.SumCol = sp.addHidden(exactSum(sum))
		} else {
			ac.SumCol = sp.addHidden(sum)
		}
		ac.CountCol = sp.addHidden(&sqlparser.Count{Args: []sqlparser.Expr{sqlparser.CloneExpr(a.Arg)}, Distinct: a.Distinct})
	case *sqlparser.Min:
		ac.Op = engine.AggMin
		ac.CollCol, ac.HasColl = sp.collationOf(a)
	case *sqlparser.Max:
		ac.Op = engine.AggMax
		ac.CollCol, ac.HasColl = sp.collationOf(a)
	default:
		return unsupported("aggregate %s across shards (supported: COUNT, SUM, MIN, MAX, AVG, with or without DISTINCT)", af.AggrName())
	}
	ap.agg.Aggs = append(ap.agg.Aggs, ac)
	return nil
}

// aggColumn returns the column of an aggregate used by HAVING or ORDER BY:
// an equal visible one, or a hidden one added for it.
func (ap *aggPlan) aggColumn(af sqlparser.AggrFunc) (int, error) {
	sp := ap.selectPlan
	for i := range sp.items {
		if sqlparser.Equals.Expr(sp.itemExpr(i), af) {
			return i, nil
		}
	}
	for _, h := range ap.hiddenAggs {
		if sqlparser.Equals.Expr(h.e, af) {
			return h.col, nil
		}
	}
	col := sp.addHidden(sqlparser.CloneExpr(af))
	if err := ap.addAggregate(col, af); err != nil {
		return 0, err
	}
	ap.hiddenAggs = append(ap.hiddenAggs, hiddenAgg{e: af, col: col})
	return col, nil
}

func (ap *aggPlan) column(col int) *engine.ColumnExpr {
	c := &engine.ColumnExpr{Col: col}
	ap.cols = append(ap.cols, c)
	return c
}

// usesAlias reports whether e names a select alias (which only HAVING and
// ORDER BY may do, so e cannot be pushed into the select list).
func (sp *selectPlan) usesAlias(e sqlparser.Expr) bool {
	found := false
	_ = sqlparser.Walk(func(n sqlparser.SQLNode) (bool, error) {
		if c, ok := n.(*sqlparser.ColName); ok && c.Qualifier.IsEmpty() {
			for _, it := range sp.items {
				if ae, ok := it.(*sqlparser.AliasedExpr); ok && ae.As.NotEmpty() && ae.As.EqualString(c.Name.String()) {
					found = true
				}
			}
		}
		return !found, nil
	}, e)
	return found
}

// compileHaving turns HAVING into an engine expression over the merged
// rows. Parts without aggregates or alias references are pushed to the
// shards as hidden columns (evaluated there, with the right collations);
// aggregates become (hidden) aggregate columns.
func (ap *aggPlan) compileHaving(e sqlparser.Expr) (engine.Expr, error) {
	sp := ap.selectPlan
	if v, ok := evalValue(e); ok {
		return &engine.ValueExpr{Value: v}, nil
	}
	if !hasAggregate(e) && !sp.usesAlias(e) {
		if hasSubquery(e) {
			return nil, unsupported("a subquery in HAVING across shards")
		}
		return ap.column(sp.addHidden(sqlparser.CloneExpr(e))), nil
	}
	switch x := e.(type) {
	case sqlparser.AggrFunc:
		col, err := ap.aggColumn(x)
		if err != nil {
			return nil, err
		}
		return ap.column(col), nil
	case *sqlparser.ColName:
		i := sp.findItem(x, false)
		if i < 0 {
			return nil, unsupported("HAVING column %s across shards", sqlString(x))
		}
		if sp.aliasShadows(i, x) {
			return nil, unsupported("HAVING %s, which is both a select alias and a column name, across shards", sqlString(x))
		}
		if col, ok := ap.probes[x.Name.Lowered()]; ok && x.Qualifier.IsEmpty() {
			// HAVING prefers a GROUP BY column of that name to the alias.
			return ap.column(col), nil
		}
		if idx := sp.visibleIndex(i); idx >= 0 {
			return ap.column(idx), nil
		}
		return nil, unsupported("HAVING column %s after * across shards", sqlString(x))
	case *sqlparser.Argument, *sqlparser.Literal, *sqlparser.NullVal, sqlparser.ListArg, sqlparser.ValTuple:
		v, ok := evalValue(x)
		if !ok {
			return nil, unsupported("HAVING value %s across shards", sqlString(x))
		}
		return &engine.ValueExpr{Value: v}, nil
	case *sqlparser.ComparisonExpr:
		l, err := ap.compileHaving(x.Left)
		if err != nil {
			return nil, err
		}
		switch x.Operator {
		case sqlparser.InOp, sqlparser.NotInOp:
			var list []engine.Expr
			switch r := x.Right.(type) {
			case sqlparser.ValTuple:
				for _, it := range r {
					c, err := ap.compileHaving(it)
					if err != nil {
						return nil, err
					}
					list = append(list, c)
				}
			case sqlparser.ListArg:
				list = []engine.Expr{&engine.ValueExpr{Value: engine.ListVar(string(r))}}
			default:
				return nil, unsupported("HAVING ... IN %s across shards", sqlString(x.Right))
			}
			return &engine.InExpr{E: l, List: list, Not: x.Operator == sqlparser.NotInOp}, nil
		case sqlparser.EqualOp, sqlparser.NotEqualOp, sqlparser.LessThanOp, sqlparser.LessEqualOp,
			sqlparser.GreaterThanOp, sqlparser.GreaterEqualOp, sqlparser.NullSafeEqualOp:
			r, err := ap.compileHaving(x.Right)
			if err != nil {
				return nil, err
			}
			return &engine.CompareExpr{Op: x.Operator.ToString(), L: l, R: r}, nil
		}
		return nil, unsupported("HAVING with %s over aggregates across shards", x.Operator.ToString())
	case *sqlparser.AndExpr:
		return ap.logic("AND", x.Left, x.Right)
	case *sqlparser.OrExpr:
		return ap.logic("OR", x.Left, x.Right)
	case *sqlparser.XorExpr:
		return ap.logic("XOR", x.Left, x.Right)
	case *sqlparser.NotExpr:
		in, err := ap.compileHaving(x.Expr)
		if err != nil {
			return nil, err
		}
		return &engine.NotExpr{E: in}, nil
	case *sqlparser.IsExpr:
		in, err := ap.compileHaving(x.Left)
		if err != nil {
			return nil, err
		}
		switch x.Right {
		case sqlparser.IsNullOp:
			return &engine.IsNullExpr{E: in}, nil
		case sqlparser.IsNotNullOp:
			return &engine.IsNullExpr{E: in, Not: true}, nil
		}
		return nil, unsupported("HAVING %s over aggregates across shards", sqlString(x))
	case *sqlparser.BetweenExpr:
		v, err := ap.compileHaving(x.Left)
		if err != nil {
			return nil, err
		}
		lo, err := ap.compileHaving(x.From)
		if err != nil {
			return nil, err
		}
		hi, err := ap.compileHaving(x.To)
		if err != nil {
			return nil, err
		}
		if x.IsBetween {
			return &engine.LogicExpr{Op: "AND", L: &engine.CompareExpr{Op: ">=", L: v, R: lo}, R: &engine.CompareExpr{Op: "<=", L: v, R: hi}}, nil
		}
		return &engine.LogicExpr{Op: "OR", L: &engine.CompareExpr{Op: "<", L: v, R: lo}, R: &engine.CompareExpr{Op: ">", L: v, R: hi}}, nil
	case *sqlparser.BinaryExpr:
		if x.Operator == sqlparser.DivOp {
			// One server keeps more digits of a quotient than its scale and
			// uses them or not depending on the context; the proxy cannot
			// tell which.
			return nil, unsupported("division in HAVING over aggregates across shards (%s)", sqlString(x))
		}
		if e := sp.inexactOperand(x); e != nil {
			return nil, unsupported("arithmetic in HAVING over %s across shards (the proxy knows it only to its shown scale)", sqlString(e))
		}
		op := ""
		switch x.Operator {
		case sqlparser.PlusOp:
			op = "+"
		case sqlparser.MinusOp:
			op = "-"
		case sqlparser.MultOp:
			op = "*"
		case sqlparser.DivOp:
			op = "/"
		default:
			return nil, unsupported("HAVING with %s over aggregates across shards", x.Operator.ToString())
		}
		l, err := ap.compileHaving(x.Left)
		if err != nil {
			return nil, err
		}
		r, err := ap.compileHaving(x.Right)
		if err != nil {
			return nil, err
		}
		return &engine.ArithExpr{Op: op, L: l, R: r}, nil
	case *sqlparser.UnaryExpr:
		if x.Operator == sqlparser.UMinusOp {
			if e := sp.inexactOperand(x); e != nil {
				return nil, unsupported("arithmetic in HAVING over %s across shards (the proxy knows it only to its shown scale)", sqlString(e))
			}
			in, err := ap.compileHaving(x.Expr)
			if err != nil {
				return nil, err
			}
			return &engine.NegExpr{E: in}, nil
		}
	}
	return nil, unsupported("HAVING %s across shards", sqlString(e))
}

// inexactOperand returns an operand of the arithmetic e whose merged value
// the proxy knows only rounded to its column's scale while one server
// would compute with more digits: an AVG, a SUM over a division, a quotient
// (directly or through a select alias). Nil if there is none.
func (sp *selectPlan) inexactOperand(e sqlparser.Expr) sqlparser.Expr {
	var found sqlparser.Expr
	var visit func(n sqlparser.SQLNode) (bool, error)
	visit = func(n sqlparser.SQLNode) (bool, error) {
		if found != nil {
			return false, nil
		}
		switch x := n.(type) {
		case *sqlparser.Subquery:
			return false, nil
		case *sqlparser.Avg:
			found = x
		case *sqlparser.Sum:
			if hasDivision(x.Arg) {
				found = x
			}
			return false, nil
		case *sqlparser.BinaryExpr:
			if x.Operator == sqlparser.DivOp {
				found = x
			}
		case *sqlparser.ColName:
			if i := sp.findItem(x, false); i >= 0 && x.Qualifier.IsEmpty() {
				if ie := sp.itemExpr(i); ie != nil && !sqlparser.Equals.Expr(ie, x) {
					_ = sqlparser.Walk(visit, ie)
				}
			}
		}
		return found == nil, nil
	}
	_ = sqlparser.Walk(visit, e)
	return found
}

func (ap *aggPlan) logic(op string, l, r sqlparser.Expr) (engine.Expr, error) {
	le, err := ap.compileHaving(l)
	if err != nil {
		return nil, err
	}
	re, err := ap.compileHaving(r)
	if err != nil {
		return nil, err
	}
	return &engine.LogicExpr{Op: op, L: le, R: re}, nil
}

func hasSubquery(n sqlparser.SQLNode) bool {
	found := false
	_ = sqlparser.Walk(func(node sqlparser.SQLNode) (bool, error) {
		if _, ok := node.(*sqlparser.Subquery); ok {
			found = true
		}
		return !found, nil
	}, n)
	return found
}

// hasDivision reports whether e divides: a decimal quotient carries more
// digits inside the server (9 per word) than its column shows, and a SUM or
// AVG adds the inner digits. Partial sums must then travel with them.
func hasDivision(e sqlparser.Expr) bool {
	found := false
	_ = sqlparser.Walk(func(n sqlparser.SQLNode) (bool, error) {
		switch x := n.(type) {
		case *sqlparser.Subquery:
			return false, nil
		case *sqlparser.BinaryExpr:
			if x.Operator == sqlparser.DivOp {
				found = true
			}
		}
		return !found, nil
	}, e)
	return found
}

// exactSum is CAST(sum AS DECIMAL(65,30)): the partial sum with the digits
// the server keeps beyond the column's scale.
func exactSum(sum *sqlparser.Sum) sqlparser.Expr {
	l, sc := 65, 30
	return &sqlparser.CastExpr{Expr: sqlparser.CloneExpr(sum).(*sqlparser.Sum), Type: &sqlparser.ConvertType{Type: "decimal", Length: &l, Scale: &sc}}
}
