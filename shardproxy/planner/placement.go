package planner

import (
	"fmt"
	"math"
	"strings"

	"vitess.io/vitess/go/sqltypes"
	"vitess.io/vitess/go/vt/sqlparser"

	"github.com/strata-db/strata/shardproxy/engine"
	"github.com/strata-db/strata/shardproxy/vschema"
)

// This file decides where a statement's rows live: it collects every table
// of the statement (subqueries and derived tables included), groups sharded
// tables that are joined on their shard keys (co-located: matching rows are
// on the same shard), finds the shard-key predicates that narrow the shards,
// and checks that every subquery can run on the shard of the rows it is
// evaluated for.

// inst is one table instance: a table named in some FROM clause.
type inst struct {
	id       int
	name     string // the qualifier columns use: the alias, else the table name
	dbName   string
	t        *vschema.Table
	nullable bool // on the NULL-extended side of an outer join
	blk      *block
}

func (i *inst) sharded() bool { return i.t.Kind == vschema.Sharded }

func (i *inst) String() string { return i.dbName + "." + i.t.Name }

// block is one query block (SELECT, UPDATE or DELETE) and its FROM tables.
type block struct {
	parent *block
	insts  []*inst
	// where holds the conjuncts that filter the block's rows: WHERE and the
	// ON of inner joins. They route and co-locate.
	where []sqlparser.Expr
	// joinOn holds the ON conjuncts of outer joins: they co-locate only.
	joinOn []sqlparser.Expr
	// outer are the block's outer joins, each with its ON conjuncts and the
	// instances on its NULL-extended and preserved sides.
	outer []outerJoin
	// refPreserved is set when a reference table (or derived table) is the
	// preserved side of an outer join with a sharded table: every shard
	// would return its NULL-extended rows, so the query must run on one shard.
	refPreserved string
}

// outerJoin is one LEFT or RIGHT JOIN of a block.
type outerJoin struct {
	conds     []sqlparser.Expr
	null      []*inst // the side that is NULL-extended when nothing matches
	preserved []*inst // the side whose every row appears
}

// edgeKind is where an equality of two shard keys comes from.
type edgeKind int

const (
	// edgeInner is a WHERE or inner-join ON conjunct: every row of the
	// block's result satisfies it.
	edgeInner edgeKind = iota
	// edgeOuter is an outer-join ON conjunct: it holds for the rows of the
	// NULL-extended side that appear, never restricts the preserved side.
	edgeOuter
	// edgeMember is outer_key IN (SELECT inner_key ...): the members the
	// subquery yields for a key are on the key's shard.
	edgeMember
)

// edge says that two sharded instances' keys are equal (same shard
// function) for the rows a condition of block blk lets through.
type edge struct {
	x, y         *inst
	blk          *block
	kind         edgeKind
	xNull, yNull bool // edgeOuter: on the NULL-extended side of the join
	xPres, yPres bool // edgeOuter: on the preserved side of the join
}

// analysis is the placement of a whole statement.
type analysis struct {
	pl    *planner
	insts []*inst
	// edges are the key equalities of every block. A block's co-location
	// groups come from its own conditions only: a subquery's condition
	// (u.id = o.user_id inside NOT EXISTS) does not restrict the rows of the
	// block around it.
	edges []edge

	unsharded     map[string][]string // shard -> unsharded tables on it
	shardedTables []string
	checks        []engine.KeyCheck // keys of subqueries that must be on the route's shard
	needSingle    []string          // parts that make sense only on one shard
}

func newAnalysis(pl *planner) *analysis {
	return &analysis{pl: pl, unsharded: map[string][]string{}}
}

// unionFind groups instances.
type unionFind map[*inst]*inst

func (u unionFind) find(x *inst) *inst {
	for u[x] != x {
		u[x] = u[u[x]]
		x = u[x]
	}
	return x
}

func (u unionFind) union(x, y *inst) { u[u.find(x)] = u.find(y) }

// addTable resolves a table of a FROM clause.
func (a *analysis) addTable(blk *block, tn sqlparser.TableName, alias string, nullable bool) error {
	dbName, _, t, err := a.pl.resolveTable(tn)
	if err != nil {
		return err
	}
	name := alias
	if name == "" {
		name = tn.Name.String()
	}
	in := &inst{id: len(a.insts), name: name, dbName: dbName, t: t, nullable: nullable, blk: blk}
	a.insts = append(a.insts, in)
	blk.insts = append(blk.insts, in)
	switch t.Kind {
	case vschema.Sharded:
		a.shardedTables = append(a.shardedTables, in.String())
	case vschema.Unsharded:
		a.unsharded[t.Shard] = append(a.unsharded[t.Shard], in.String())
	}
	return nil
}

// analyzeStatement analyzes a SELECT or UNION (a subquery, a derived table
// or a whole statement) under parent.
func (a *analysis) analyzeTableStatement(ts sqlparser.TableStatement, parent *block) ([]*block, error) {
	switch s := ts.(type) {
	case *sqlparser.Select:
		b, err := a.analyzeSelect(s, parent)
		if err != nil {
			return nil, err
		}
		return []*block{b}, nil
	case *sqlparser.Union:
		if s.With != nil {
			return nil, unsupported("WITH (common table expressions) on sharded databases")
		}
		l, err := a.analyzeTableStatement(s.Left, parent)
		if err != nil {
			return nil, err
		}
		r, err := a.analyzeTableStatement(s.Right, parent)
		if err != nil {
			return nil, err
		}
		if err := a.subqueriesIn(parent, nil, s.OrderBy, s.Limit); err != nil {
			return nil, err
		}
		return append(l, r...), nil
	case *sqlparser.ValuesStatement:
		return nil, nil
	}
	return nil, unsupported("%T as a query", ts)
}

func (a *analysis) analyzeSelect(sel *sqlparser.Select, parent *block) (*block, error) {
	if sel.With != nil {
		return nil, unsupported("WITH (common table expressions) on sharded databases")
	}
	blk := &block{parent: parent}
	for _, te := range sel.From {
		if err := a.addTableExpr(blk, te, false); err != nil {
			return nil, err
		}
	}
	if sel.Where != nil {
		blk.where = sqlparser.SplitAndExpression(blk.where, sel.Where.Expr)
	}
	a.colocate(blk)
	var exprs []sqlparser.SQLNode
	if sel.SelectExprs != nil {
		exprs = append(exprs, sel.SelectExprs)
	}
	if sel.Where != nil {
		exprs = append(exprs, sel.Where.Expr)
	}
	if sel.GroupBy != nil {
		exprs = append(exprs, sel.GroupBy)
	}
	if sel.Having != nil {
		exprs = append(exprs, sel.Having.Expr)
	}
	for _, e := range blk.joinOn {
		exprs = append(exprs, e)
	}
	if err := a.subqueriesIn(blk, exprs, sel.OrderBy, sel.Limit); err != nil {
		return nil, err
	}
	// Inner-join ON conditions were added to where: look there too, but
	// only for the ones that came from ON (WHERE is already covered).
	return blk, nil
}

// addTableExpr adds the tables of one FROM item.
func (a *analysis) addTableExpr(blk *block, te sqlparser.TableExpr, nullable bool) error {
	switch t := te.(type) {
	case *sqlparser.AliasedTableExpr:
		switch e := t.Expr.(type) {
		case sqlparser.TableName:
			if e.Qualifier.IsEmpty() && strings.EqualFold(e.Name.String(), "dual") && t.As.IsEmpty() {
				return nil // FROM DUAL: no table (what the parser puts under SELECT 1)
			}
			return a.addTable(blk, e, t.As.String(), nullable)
		case *sqlparser.DerivedTable:
			return a.addDerived(blk, e)
		}
		return unsupported("%T in FROM", t.Expr)
	case *sqlparser.ParenTableExpr:
		for _, x := range t.Exprs {
			if err := a.addTableExpr(blk, x, nullable); err != nil {
				return err
			}
		}
		return nil
	case *sqlparser.JoinTableExpr:
		return a.addJoin(blk, t, nullable)
	}
	return unsupported("%T in FROM", te)
}

func (a *analysis) addJoin(blk *block, j *sqlparser.JoinTableExpr, nullable bool) error {
	ln, rn := nullable, nullable
	switch j.Join {
	case sqlparser.LeftJoinType, sqlparser.NaturalLeftJoinType:
		rn = true
	case sqlparser.RightJoinType, sqlparser.NaturalRightJoinType:
		ln = true
	}
	before := len(blk.insts)
	if err := a.addTableExpr(blk, j.LeftExpr, ln); err != nil {
		return err
	}
	mid := len(blk.insts)
	if err := a.addTableExpr(blk, j.RightExpr, rn); err != nil {
		return err
	}
	left, right := blk.insts[before:mid], blk.insts[mid:]
	outer := ln != nullable || rn != nullable
	if outer {
		preserved, other := left, right
		if ln != nullable {
			preserved, other = right, left
		}
		if anySharded(other) && !anySharded(preserved) && blk.refPreserved == "" {
			blk.refPreserved = describeInsts(preserved)
			if blk.refPreserved == "" {
				blk.refPreserved = "a derived table"
			}
		}
	}
	var conds []sqlparser.Expr
	if j.Condition != nil {
		if j.Condition.On != nil {
			conds = sqlparser.SplitAndExpression(nil, j.Condition.On)
		}
		for _, col := range j.Condition.Using {
			// USING (c) equates c of the two sides: it co-locates when c is
			// the shard key of a table on each side.
			for _, l := range left {
				for _, r := range right {
					conds = append(conds, &sqlparser.ComparisonExpr{Operator: sqlparser.EqualOp,
						Left:  sqlparser.NewColNameWithQualifier(col.String(), sqlparser.NewTableName(l.name)),
						Right: sqlparser.NewColNameWithQualifier(col.String(), sqlparser.NewTableName(r.name))})
				}
			}
		}
	}
	if outer {
		blk.joinOn = append(blk.joinOn, conds...)
		null, preserved := right, left
		if ln != nullable {
			null, preserved = left, right
		}
		blk.outer = append(blk.outer, outerJoin{conds: conds,
			null: append([]*inst(nil), null...), preserved: append([]*inst(nil), preserved...)})
	} else {
		blk.where = append(blk.where, conds...)
	}
	return nil
}

func anySharded(is []*inst) bool {
	for _, i := range is {
		if i.sharded() {
			return true
		}
	}
	return false
}

func describeInsts(is []*inst) string {
	names := make([]string, len(is))
	for i, x := range is {
		names[i] = x.String()
	}
	return strings.Join(names, ", ")
}

// addDerived analyzes a derived table. Its rows are computed per shard, so
// if it reads sharded tables it must be pinned to one shard by its own key.
func (a *analysis) addDerived(blk *block, d *sqlparser.DerivedTable) error {
	if d.Lateral {
		return unsupported("LATERAL derived tables on sharded databases")
	}
	blocks, err := a.analyzeTableStatement(d.Select, nil)
	if err != nil {
		return err
	}
	return a.requireOwnShard(blocks, "a derived table")
}

// requireOwnShard accepts blocks (of a subquery or derived table) that read
// no sharded table, or whose sharded tables are pinned to one shard by a key
// predicate, which must then be the shard of the whole statement.
func (a *analysis) requireOwnShard(blocks []*block, what string) error {
	for _, b := range blocks {
		groups := a.groups(b)
		if len(groups) == 0 {
			continue
		}
		if len(groups) > 1 {
			return unsupported("%s joining sharded tables not on their shard keys (%s)", what, describeGroups(groups))
		}
		rc := a.routeOf(b, groups[0])
		if rc.opcode != engine.EqualUnique {
			return unsupported("%s on sharded table %s that needs rows from more than one shard (pin it with its shard key %s = value, or join it on the shard key)",
				what, groups[0][0], groups[0][0].t.Column)
		}
		a.checks = append(a.checks, engine.KeyCheck{Table: rc.table, Value: rc.values[0]})
		a.needSingle = append(a.needSingle, what+" on "+groups[0][0].String())
	}
	return nil
}

// colocate records the sharded instances equated on their shard keys in
// the block's conditions (including correlations to outer blocks).
func (a *analysis) colocate(blk *block) {
	keys := func(c sqlparser.Expr) (*inst, *inst) {
		cmp, ok := c.(*sqlparser.ComparisonExpr)
		if !ok || cmp.Operator != sqlparser.EqualOp {
			return nil, nil
		}
		l := a.keyColumn(blk, cmp.Left, true)
		r := a.keyColumn(blk, cmp.Right, true)
		if l == nil || r == nil || l == r || !sameFunction(l.t, r.t) {
			return nil, nil
		}
		return l, r
	}
	for _, c := range blk.where {
		if l, r := keys(c); l != nil {
			a.edges = append(a.edges, edge{x: l, y: r, blk: blk, kind: edgeInner})
		}
	}
	for _, oj := range blk.outer {
		for _, c := range oj.conds {
			if l, r := keys(c); l != nil {
				a.edges = append(a.edges, edge{x: l, y: r, blk: blk, kind: edgeOuter,
					xNull: containsInst(oj.null, l), yNull: containsInst(oj.null, r),
					xPres: containsInst(oj.preserved, l), yPres: containsInst(oj.preserved, r)})
			}
		}
	}
}

func containsInst(is []*inst, x *inst) bool {
	for _, i := range is {
		if i == x {
			return true
		}
	}
	return false
}

// sameFunction reports whether two sharded tables place equal keys on the
// same shard.
func sameFunction(x, y *vschema.Table) bool {
	if x.Func != y.Func || x.KeyType() != y.KeyType() {
		return false
	}
	if x.Func != vschema.Range {
		return true
	}
	if len(x.Ranges) != len(y.Ranges) {
		return false
	}
	for i := range x.Ranges {
		if x.Ranges[i] != y.Ranges[i] {
			return false
		}
	}
	return true
}

// keyColumn returns the sharded instance whose shard-key column e is, or
// nil. A qualified column is looked up in blk and then in the outer blocks
// (when outer is true); an unqualified one only in blk, and only when exactly
// one sharded table there has a key of that name (MySQL resolves it to the
// innermost table that has the column: if two had it, MySQL would refuse the
// query as ambiguous).
func (a *analysis) keyColumn(blk *block, e sqlparser.Expr, outer bool) *inst {
	col, ok := e.(*sqlparser.ColName)
	if !ok || blk == nil {
		return nil
	}
	if col.Qualifier.IsEmpty() {
		var found *inst
		for _, in := range blk.insts {
			if in.sharded() && strings.EqualFold(in.t.Column, col.Name.String()) {
				if found != nil {
					return nil
				}
				found = in
			}
		}
		return found
	}
	for b := blk; b != nil; b = b.parent {
		for _, in := range b.insts {
			if in.name == col.Qualifier.Name.String() && (col.Qualifier.Qualifier.IsEmpty() || col.Qualifier.Qualifier.String() == in.dbName) {
				if in.sharded() && strings.EqualFold(in.t.Column, col.Name.String()) {
					return in
				}
				return nil
			}
		}
		if !outer {
			return nil
		}
	}
	return nil
}

// groups returns the co-location groups of the block's sharded instances:
// instances whose rows that meet in one row of the block's result are
// always on the same shard. Only the block's own conditions count. An
// inner equality joins two groups. An outer join's ON equality joins its
// NULL-extended side to the preserved side only when that side meets
// exactly one preserved group: its rows appear only next to a row they
// equal, while preserved rows appear whatever matches (two preserved
// groups equated through the NULL side stay apart).
func (a *analysis) groups(blk *block) [][]*inst {
	uf := unionFind{}
	for _, in := range blk.insts {
		uf[in] = in
	}
	local := func(e edge) bool { return e.blk == blk && e.x.blk == blk && e.y.blk == blk }
	for _, e := range a.edges {
		if local(e) && (e.kind == edgeInner || (e.kind == edgeOuter && e.xNull && e.yNull)) {
			uf.union(e.x, e.y)
		}
	}
	for changed := true; changed; {
		changed = false
		targets := map[*inst]map[*inst]bool{}
		attach := func(null, pres *inst) {
			n, p := uf.find(null), uf.find(pres)
			if n == p {
				return
			}
			if targets[n] == nil {
				targets[n] = map[*inst]bool{}
			}
			targets[n][p] = true
		}
		for _, e := range a.edges {
			if !local(e) || e.kind != edgeOuter {
				continue
			}
			if e.xNull && e.yPres {
				attach(e.x, e.y)
			}
			if e.yNull && e.xPres {
				attach(e.y, e.x)
			}
		}
		// In instance order, so the result does not depend on map order.
		for _, in := range blk.insts {
			ts := targets[uf.find(in)]
			if len(ts) == 1 {
				for p := range ts {
					uf.union(in, p)
				}
				changed = true
				break
			}
		}
	}
	var out [][]*inst
	idx := map[*inst]int{}
	for _, in := range blk.insts {
		if !in.sharded() {
			continue
		}
		r := uf.find(in)
		if g, ok := idx[r]; ok {
			out[g] = append(out[g], in)
			continue
		}
		idx[r] = len(out)
		out = append(out, []*inst{in})
	}
	return out
}

func describeGroups(gs [][]*inst) string {
	parts := make([]string, len(gs))
	for i, g := range gs {
		parts[i] = fmt.Sprintf("%s by %s", g[0], g[0].t.Column)
	}
	return strings.Join(parts, "; ")
}

// routeChoice is how a block's co-located group is routed.
type routeChoice struct {
	opcode engine.Opcode
	table  *vschema.Table
	values []engine.EvalValue
	desc   string
}

// routeOf picks the best shard-key predicate on the group among the
// block's filtering conditions: = beats IN beats BETWEEN beats scatter.
func (a *analysis) routeOf(blk *block, group []*inst) routeChoice {
	inGroup := func(in *inst) bool {
		if in == nil {
			return false
		}
		for _, g := range group {
			if g == in {
				return true
			}
		}
		return false
	}
	var in, between *routeChoice
	// Range tables: the first lower and upper bounds on the key (a strict
	// bound is taken as inclusive: a superset of shards is still right).
	var lo, hi *engine.EvalValue
	var rangeTable *vschema.Table
	bound := func(col, val sqlparser.Expr, lower bool) {
		k := a.keyColumn(blk, col, false)
		if !inGroup(k) || k.t.Func != vschema.Range {
			return
		}
		v, ok := evalValue(val)
		if !ok || v.Tuple != nil || v.List {
			return
		}
		rangeTable = k.t
		if lower && lo == nil {
			lo = &v
		} else if !lower && hi == nil {
			hi = &v
		}
	}
	for _, c := range blk.where {
		switch e := c.(type) {
		case *sqlparser.ComparisonExpr:
			switch e.Operator {
			case sqlparser.GreaterThanOp, sqlparser.GreaterEqualOp:
				bound(e.Left, e.Right, true)
				bound(e.Right, e.Left, false)
			case sqlparser.LessThanOp, sqlparser.LessEqualOp:
				bound(e.Left, e.Right, false)
				bound(e.Right, e.Left, true)
			}
			switch e.Operator {
			case sqlparser.EqualOp:
				for _, side := range [2][2]sqlparser.Expr{{e.Left, e.Right}, {e.Right, e.Left}} {
					if k := a.keyColumn(blk, side[0], false); inGroup(k) {
						if v, ok := evalValue(side[1]); ok && v.Tuple == nil && !v.List {
							return routeChoice{opcode: engine.EqualUnique, table: k.t, values: []engine.EvalValue{v},
								desc: fmt.Sprintf("%s.%s = %s", k.t.Name, k.t.Column, v)}
						}
					}
				}
			case sqlparser.InOp:
				if k := a.keyColumn(blk, e.Left, false); inGroup(k) && in == nil {
					if v, ok := evalValue(e.Right); ok && (v.Tuple != nil || v.List) {
						in = &routeChoice{opcode: engine.InList, table: k.t, values: []engine.EvalValue{v},
							desc: fmt.Sprintf("%s.%s in %s", k.t.Name, k.t.Column, v)}
					}
				}
			}
		case *sqlparser.BetweenExpr:
			if k := a.keyColumn(blk, e.Left, false); inGroup(k) && e.IsBetween && k.t.Func == vschema.Range && between == nil {
				lo, ok1 := evalValue(e.From)
				hi, ok2 := evalValue(e.To)
				if ok1 && ok2 && lo.Tuple == nil && hi.Tuple == nil && !lo.List && !hi.List {
					between = &routeChoice{opcode: engine.Between, table: k.t, values: []engine.EvalValue{lo, hi},
						desc: fmt.Sprintf("%s.%s between %s and %s", k.t.Name, k.t.Column, lo, hi)}
				}
			}
		}
	}
	if in != nil {
		return *in
	}
	if between != nil {
		return *between
	}
	if lo != nil || hi != nil {
		l, h := engine.LiteralValue(sqltypes.NewInt64(math.MinInt64)), engine.LiteralValue(sqltypes.NewInt64(math.MaxInt64))
		if lo != nil {
			l = *lo
		}
		if hi != nil {
			h = *hi
		}
		return routeChoice{opcode: engine.Between, table: rangeTable, values: []engine.EvalValue{l, h},
			desc: fmt.Sprintf("%s.%s between %s and %s", rangeTable.Name, rangeTable.Column, l, h)}
	}
	return routeChoice{opcode: engine.Scatter, table: group[0].t}
}

// subqueriesIn finds the subqueries in the nodes of a block and checks each.
func (a *analysis) subqueriesIn(blk *block, nodes []sqlparser.SQLNode, orderBy sqlparser.OrderBy, limit *sqlparser.Limit) error {
	if orderBy != nil {
		nodes = append(nodes, orderBy)
	}
	if limit != nil {
		nodes = append(nodes, limit)
	}
	var err error
	for _, n := range nodes {
		_ = sqlparser.Walk(func(node sqlparser.SQLNode) (bool, error) {
			if err != nil {
				return false, err
			}
			switch x := node.(type) {
			case *sqlparser.ComparisonExpr:
				if sq, ok := x.Right.(*sqlparser.Subquery); ok && x.Operator == sqlparser.InOp {
					err = a.checkSubquery(blk, sq, x.Left)
					if err == nil {
						err = walkErr(a, blk, x.Left)
					}
					return false, err
				}
			case *sqlparser.Subquery:
				err = a.checkSubquery(blk, x, nil)
				return false, err
			}
			return true, nil
		}, n)
		if err != nil {
			return err
		}
	}
	return nil
}

func walkErr(a *analysis, blk *block, e sqlparser.Expr) error {
	return a.subqueriesIn(blk, []sqlparser.SQLNode{e}, nil, nil)
}

// checkSubquery accepts a subquery that reads no sharded table, that is
// correlated with the outer query on the shard key (its rows are on the
// outer row's shard), that is the right side of "outer_key IN (SELECT key
// ...)" without LIMIT or cross-key grouping (members of a key are on the
// key's shard), or that is pinned to one shard by its own key.
func (a *analysis) checkSubquery(blk *block, sq *sqlparser.Subquery, inLeft sqlparser.Expr) error {
	blocks, err := a.analyzeTableStatement(sq.Select, blk)
	if err != nil {
		return err
	}
	if len(blocks) == 1 && inLeft != nil {
		if outerKey := a.keyColumn(blk, inLeft, true); outerKey != nil {
			if inner := membershipKey(a, blocks[0], sq.Select); inner != nil && sameFunction(outerKey.t, inner.t) {
				a.edges = append(a.edges, edge{x: inner, y: outerKey, blk: inner.blk, kind: edgeMember})
			}
		}
	}
	var pinned []*block
	for _, b := range blocks {
		for _, g := range a.groups(b) {
			if !a.reachesOuter(g, b) {
				pinned = append(pinned, b)
				break
			}
		}
	}
	return a.requireOwnShard(pinned, "a subquery")
}

// reachesOuter reports whether a condition of block b equates the key of
// an instance of group g with the key of a sharded instance of an
// enclosing block, so that the rows of g that matter for an outer row are
// on that row's shard. An outer join's ON counts only for its NULL-extended
// side (its preserved rows appear whatever the outer row is).
func (a *analysis) reachesOuter(g []*inst, b *block) bool {
	outerInst := func(x *inst) bool { return x.blk != b && isAncestor(x.blk, b) }
	for _, e := range a.edges {
		if e.blk != b {
			continue
		}
		for _, side := range [2]struct {
			in, other *inst
			null      bool
		}{{e.x, e.y, e.xNull}, {e.y, e.x, e.yNull}} {
			if !containsInst(g, side.in) || !outerInst(side.other) {
				continue
			}
			if e.kind != edgeOuter || side.null {
				return true
			}
		}
	}
	return false
}

func isAncestor(anc, b *block) bool {
	for x := b.parent; x != nil; x = x.parent {
		if x == anc {
			return true
		}
	}
	return false
}

// membershipKey returns the sharded instance whose key is the only column
// the subquery selects, when the subquery's result per key does not depend
// on other shards: no LIMIT, and no aggregation unless grouped by that key.
func membershipKey(a *analysis, b *block, ts sqlparser.TableStatement) *inst {
	sel, ok := ts.(*sqlparser.Select)
	if !ok || sel.Limit != nil || sel.SelectExprs == nil || len(sel.SelectExprs.Exprs) != 1 {
		return nil
	}
	ae, ok := sel.SelectExprs.Exprs[0].(*sqlparser.AliasedExpr)
	if !ok {
		return nil
	}
	k := a.keyColumn(b, ae.Expr, false)
	if k == nil || k.nullable {
		return nil
	}
	if sel.GroupBy != nil || sel.Having != nil || hasAggregate(sel.SelectExprs) {
		grouped := false
		if sel.GroupBy != nil {
			for _, g := range sel.GroupBy.Exprs {
				if a.keyColumn(b, g, false) == k {
					grouped = true
				}
			}
		}
		if !grouped {
			return nil
		}
	}
	return k
}

// hasAggregate reports whether the node has an aggregate outside
// subqueries.
func hasAggregate(n sqlparser.SQLNode) bool {
	found := false
	_ = sqlparser.Walk(func(node sqlparser.SQLNode) (bool, error) {
		switch node.(type) {
		case *sqlparser.Subquery:
			return false, nil
		case sqlparser.AggrFunc:
			found = true
			return false, nil
		}
		return !found, nil
	}, n)
	return found
}
