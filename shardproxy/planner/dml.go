package planner

import (
	"errors"
	"strings"

	"vitess.io/vitess/go/mysql/sqlerror"
	"vitess.io/vitess/go/vt/sqlparser"

	"github.com/strata-db/strata/shardproxy/engine"
	"github.com/strata-db/strata/shardproxy/vschema"
)

func (pl *planner) planInsert(ins *sqlparser.Insert) (engine.Primitive, error) {
	tn, ok := ins.Table.Expr.(sqlparser.TableName)
	if !ok {
		return nil, unsupported("INSERT into %s", sqlString(ins.Table.Expr))
	}
	dbName, _, t, err := pl.resolveTable(tn)
	if err != nil {
		return nil, err
	}
	// Tables read by INSERT ... SELECT or subqueries in VALUES.
	a := newAnalysis(pl)
	blk := &block{}
	if sel, ok := ins.Rows.(sqlparser.TableStatement); ok {
		if _, err := a.analyzeTableStatement(sel, nil); err != nil {
			return nil, err
		}
	} else if err := a.subqueriesIn(blk, []sqlparser.SQLNode{ins.Rows, ins.OnDup}, nil, nil); err != nil {
		return nil, err
	}
	switch t.Kind {
	case vschema.Unsharded:
		if len(a.shardedTables) > 0 || len(a.unsharded) > 1 || (len(a.unsharded) == 1 && a.unsharded[t.Shard] == nil) {
			return nil, unsupported("INSERT into unsharded table %s reading tables on other shards", t.Name)
		}
		return &engine.Route{Opcode: engine.Unsharded, VSchema: pl.vs, Shard: t.Shard, Query: parsed(ins)}, nil
	case vschema.Reference:
		if len(a.shardedTables) > 0 || len(a.unsharded) > 0 {
			return nil, unsupported("INSERT into reference table %s reading non-reference tables (the copies would differ)", t.Name)
		}
		if f := nondeterministic(ins); f != "" {
			return nil, unsupported("%s in a write to reference table %s (each shard's copy would get its own value: pass the value as a literal or parameter)", f, t.Name)
		}
		return &engine.Route{Opcode: engine.AllShards, VSchema: pl.vs, Query: parsed(ins), Copies: true}, nil
	}
	// Sharded.
	if len(a.shardedTables) > 0 || len(a.unsharded) > 0 {
		return nil, unsupported("INSERT into sharded table %s reading other non-reference tables", t.Name)
	}
	rows, ok := ins.Rows.(sqlparser.Values)
	switch {
	case !ok:
		return nil, unsupported("INSERT ... SELECT into sharded table %s", t.Name)
	case ins.RowAlias != nil:
		return nil, unsupported("INSERT ... AS row alias into sharded table %s", t.Name)
	case len(ins.Partitions) > 0:
		return nil, unsupported("INSERT ... PARTITION into sharded table %s", t.Name)
	case len(ins.Columns) == 0:
		return nil, unsupported("INSERT into sharded table %s without a column list (the proxy must find the shard key %s)", t.Name, t.Column)
	}
	key := -1
	for i, c := range ins.Columns {
		if c.EqualString(t.Column) {
			key = i
		}
	}
	// Sequence columns: where the statement gives one, seqAt is its index;
	// those it leaves out are appended after the shard key.
	seqAt := make([]int, len(t.Sequences))
	keySeq := -1
	for k, sq := range t.Sequences {
		seqAt[k] = -1
		for i, c := range ins.Columns {
			if c.EqualString(sq.Column) {
				seqAt[k] = i
			}
		}
		if strings.EqualFold(sq.Column, t.Column) {
			keySeq = k
		}
	}
	generate := key < 0 && keySeq < 0
	if generate {
		// The session's ID service (engine.KeyGenerator) fills the key.
		key = len(ins.Columns)
	}
	for _, u := range ins.OnDup {
		if !u.Name.Name.EqualString(t.Column) {
			continue
		}
		keeps, lastID := keepsKey(u.Expr, t.Column)
		switch {
		case !keeps:
			return nil, unsupported("ON DUPLICATE KEY UPDATE of shard key %s.%s (it would move the row to another shard)", t.Name, t.Column)
		case lastID && len(rows) > 1:
			// One server reports the argument of the last row that
			// updated; over shards the proxy cannot tell which row that was.
			return nil, unsupported("ON DUPLICATE KEY UPDATE %s = LAST_INSERT_ID(%s) in a multi-row INSERT into sharded table %s (insert one row per statement)", t.Column, t.Column, t.Name)
		}
	}
	month := -1
	if t.Sub.By == vschema.SubMonth {
		for i, c := range ins.Columns {
			if c.EqualString(t.Sub.Column) {
				month = i
			}
		}
		if month < 0 {
			return nil, unsupported("INSERT into month-partitioned table %s without its column %s, whose month picks the sub-table", t.Name, t.Sub.Column)
		}
		for _, u := range ins.OnDup {
			if u.Name.Name.EqualString(t.Sub.Column) {
				return nil, unsupported("ON DUPLICATE KEY UPDATE of %s.%s (it would move the row to another month's sub-table)", t.Name, t.Sub.Column)
			}
		}
	}
	plan := &engine.Insert{VSchema: pl.vs, DB: dbName, Table: t, GenerateKeys: generate}
	if t.HasSubTables() {
		plan.Sub = &engine.SubTables{Layout: t, Names: pl.subs.names}
	}
	extra := []sqlparser.IdentifierCI{}
	if generate {
		extra = append(extra, sqlparser.NewIdentifierCI(t.Column))
	}
	for k, sq := range t.Sequences {
		sc := engine.SeqColumn{Column: sq.Column, Tag: sq.Tag}
		if seqAt[k] >= 0 {
			sc.Given = make([]*engine.EvalValue, len(rows))
		} else {
			seqAt[k] = len(ins.Columns) + len(extra)
			extra = append(extra, sqlparser.NewIdentifierCI(sq.Column))
		}
		if k == keySeq {
			key = seqAt[k]
		}
		plan.Seqs = append(plan.Seqs, sc)
	}
	for n, row := range rows {
		if len(row) != len(ins.Columns) {
			return nil, sqlerror.NewSQLErrorf(sqlerror.ERWrongValueCountOnRow, sqlerror.SSWrongValueCountOnRow, "Column count doesn't match value count at row %d", n+1)
		}
		row = append(row[:len(row):len(row)], make(sqlparser.ValTuple, len(extra))...)
		if generate {
			row[len(ins.Columns)] = sqlparser.NewArgument(engine.GeneratedKeyVar(n))
		}
		for k := range plan.Seqs {
			sc := &plan.Seqs[k]
			if sc.Given != nil {
				v, ok := evalValue(row[seqAt[k]])
				if !ok || v.Tuple != nil || v.List {
					continue // an expression: kept as written
				}
				sc.Given[n] = &v
			}
			row[seqAt[k]] = sqlparser.NewArgument(engine.SeqVar(k, n))
		}
		v, ok := evalValue(row[key])
		if !ok || v.Tuple != nil || v.List {
			return nil, unsupported("shard key %s.%s given as the expression %s: it must be a literal or a parameter", t.Name, t.Column, sqlString(row[key]))
		}
		plan.Keys = append(plan.Keys, v)
		if month >= 0 {
			m, ok := evalValue(row[month])
			if !ok || m.Tuple != nil || m.List {
				return nil, unsupported("%s.%s given as the expression %s: the month that picks the sub-table must be a literal or a parameter", t.Name, t.Sub.Column, sqlString(row[month]))
			}
			plan.Months = append(plan.Months, m)
		}
		plan.Rows = append(plan.Rows, parsed(row))
	}
	// The prefix is the statement up to its rows: format it with a marker
	// row and cut there.
	head := *ins
	head.Columns = append(ins.Columns[:len(ins.Columns):len(ins.Columns)], extra...)
	const marker = "__strata_rows__"
	head.Rows = sqlparser.Values{sqlparser.ValTuple{sqlparser.NewArgument(marker)}}
	head.OnDup = nil
	text := parsed(&head).Query
	cut := strings.Index(text, "(:"+marker+")")
	if cut < 0 {
		return nil, unsupported("INSERT form %s", sqlString(ins))
	}
	plan.Prefix = text[:cut]
	if len(ins.OnDup) > 0 {
		plan.Suffix = parsed(ins.OnDup)
	}
	return plan, nil
}

// analyzeDML analyzes the tables and WHERE of an UPDATE or DELETE.
func (pl *planner) analyzeDML(with *sqlparser.With, tables []sqlparser.TableExpr, where *sqlparser.Where, extra []sqlparser.SQLNode, orderBy sqlparser.OrderBy, limit *sqlparser.Limit) (*analysis, *block, error) {
	if with != nil {
		return nil, nil, unsupported("WITH in UPDATE or DELETE through the proxy")
	}
	a := newAnalysis(pl)
	blk := &block{}
	for _, te := range tables {
		if err := a.addTableExpr(blk, te, false); err != nil {
			return nil, nil, err
		}
	}
	if where != nil {
		blk.where = sqlparser.SplitAndExpression(blk.where, where.Expr)
	}
	a.colocate(blk)
	nodes := extra
	for _, c := range blk.where {
		nodes = append(nodes, c)
	}
	for _, c := range blk.joinOn {
		nodes = append(nodes, c)
	}
	if err := a.subqueriesIn(blk, nodes, orderBy, limit); err != nil {
		return nil, nil, err
	}
	return a, blk, nil
}

// planWrite routes an UPDATE or DELETE.
func (pl *planner) planWrite(stmt sqlparser.Statement, verb string, a *analysis, blk *block, orderBy sqlparser.OrderBy, limit *sqlparser.Limit) (engine.Primitive, error) {
	var target *inst
	for _, in := range blk.insts {
		if target == nil {
			target = in
		}
	}
	if target == nil {
		return nil, unsupported("%s without a table", verb)
	}
	multi := len(blk.insts) > 1
	if target.t.Kind == vschema.Reference && !multi {
		if len(a.shardedTables) > 0 || len(a.unsharded) > 0 {
			return nil, unsupported("%s of reference table %s reading non-reference tables (the copies would differ)", verb, target.t.Name)
		}
		if f := nondeterministic(stmt); f != "" {
			return nil, unsupported("%s in a write to reference table %s (each shard's copy would get its own value: pass the value as a literal or parameter)", f, target.t.Name)
		}
		return &engine.Route{Opcode: engine.AllShards, VSchema: pl.vs, Query: parsed(stmt), Copies: true}, nil
	}
	d, err := a.decide([]*block{blk}, verb)
	if err != nil {
		return nil, err
	}
	if multi && d.route.Opcode != engine.Unsharded {
		return nil, unsupported("multi-table %s on a sharded database", verb)
	}
	if d.route.Opcode == engine.AnyShard {
		return nil, unsupported("%s of reference tables only through one shard", verb)
	}
	r := d.route
	r.Query = parsed(stmt)
	r.ScatterSafe = len(orderBy) == 0 && limit == nil && !d.byCheck
	if !d.single {
		if len(orderBy) > 0 || limit != nil {
			return nil, unsupported("%s with ORDER BY or LIMIT across shards", verb)
		}
	}
	return &r, nil
}

// nondeterministic names the first call in node whose value differs from
// server to server or from call to call (clocks, random numbers, UUIDs,
// sequences, connection ids), or returns "". A write to a reference table
// runs on every shard, and each copy would store its own value.
func nondeterministic(node sqlparser.SQLNode) string {
	found := ""
	_ = sqlparser.Walk(func(n sqlparser.SQLNode) (bool, error) {
		switch x := n.(type) {
		case *sqlparser.CurTimeFuncExpr:
			found = strings.ToUpper(x.Name.String()) + "()"
		case *sqlparser.FuncExpr:
			switch x.Name.Lowered() {
			case "rand", "uuid", "uuid_short", "sys_guid", "random_bytes", "curdate", "current_date", "utc_date",
				"connection_id", "nextval", "lastval", "setval", "sleep", "benchmark":
				found = strings.ToUpper(x.Name.String()) + "()"
			case "unix_timestamp":
				if len(x.Exprs) == 0 {
					found = "UNIX_TIMESTAMP()"
				}
			}
		case *sqlparser.Variable:
			// The session's own variables become bind variables before
			// planning; one left in the statement is each server's
			// (@@hostname, @@server_id).
			if x.Scope != sqlparser.VariableScope {
				found = "@@" + x.Name.String()
			}
		}
		return found == "", nil
	}, node)
	return found
}

func (pl *planner) planUpdate(upd *sqlparser.Update) (engine.Primitive, error) {
	var extra []sqlparser.SQLNode
	for _, u := range upd.Exprs {
		extra = append(extra, u.Expr)
	}
	a, blk, err := pl.analyzeDML(upd.With, upd.TableExprs, upd.Where, extra, upd.OrderBy, upd.Limit)
	if err != nil {
		return nil, err
	}
	for _, in := range blk.insts {
		if !in.sharded() {
			continue
		}
		for _, u := range upd.Exprs {
			q := u.Name.Qualifier.Name.String()
			if u.Name.Name.EqualString(in.t.Column) && (q == "" || q == in.name) {
				return nil, unsupported("changing shard key %s.%s with UPDATE (the row would belong on another shard: delete it and insert it again)", in.t.Name, in.t.Column)
			}
			if in.t.Sub.By == vschema.SubMonth && u.Name.Name.EqualString(in.t.Sub.Column) && (q == "" || q == in.name) {
				return nil, unsupported("changing %s.%s with UPDATE (the row would belong in another month's sub-table: delete it and insert it again)", in.t.Name, in.t.Sub.Column)
			}
		}
	}
	p, err := pl.planWrite(upd, "UPDATE", a, blk, upd.OrderBy, upd.Limit)
	if err != nil {
		return nil, err
	}
	if c := combinable(upd, blk, p); c != nil {
		return c, nil
	}
	return p, nil
}

// combinable returns the plan of UPDATE t SET c = c + v [, d = d - w]
// WHERE key = k on a table that combines writes, or nil.
func combinable(upd *sqlparser.Update, blk *block, p engine.Primitive) *engine.Combine {
	r, ok := p.(*engine.Route)
	if !ok || r.Opcode != engine.EqualUnique || len(blk.insts) != 1 || len(r.SameShard) > 0 {
		return nil
	}
	in := blk.insts[0]
	if !in.t.CombineWrites || bool(upd.Ignore) || upd.OrderBy != nil || upd.Limit != nil || upd.Where == nil || len(blk.where) != 1 {
		return nil
	}
	isCol := func(e sqlparser.Expr, name string) bool {
		c, ok := e.(*sqlparser.ColName)
		return ok && c.Name.EqualString(name) && (c.Qualifier.IsEmpty() || c.Qualifier.Name.String() == in.name)
	}
	cmp, ok := blk.where[0].(*sqlparser.ComparisonExpr)
	if !ok || cmp.Operator != sqlparser.EqualOp || !isCol(cmp.Left, in.t.Column) {
		return nil
	}
	if _, ok := evalValue(cmp.Right); !ok {
		return nil
	}
	c := &engine.Combine{Route: r, KeyCol: in.t.Column, DB: in.dbName}
	for _, u := range upd.Exprs {
		col := u.Name.Name.String()
		be, ok := u.Expr.(*sqlparser.BinaryExpr)
		if !ok || (be.Operator != sqlparser.PlusOp && be.Operator != sqlparser.MinusOp) || !isCol(be.Left, col) || !isCol(u.Name, col) {
			return nil
		}
		v, ok := evalValue(be.Right)
		if !ok || v.Tuple != nil || v.List {
			return nil
		}
		for _, seen := range c.Cols {
			if strings.EqualFold(seen, col) {
				return nil
			}
		}
		c.Cols = append(c.Cols, col)
		c.Neg = append(c.Neg, be.Operator == sqlparser.MinusOp)
		c.Deltas = append(c.Deltas, v)
	}
	return c
}

func (pl *planner) planDelete(del *sqlparser.Delete) (engine.Primitive, error) {
	a, blk, err := pl.analyzeDML(del.With, del.TableExprs, del.Where, nil, del.OrderBy, del.Limit)
	if err != nil {
		return nil, err
	}
	if len(del.Targets) > 1 && len(blk.insts) == 1 {
		return nil, unsupported("DELETE of several targets")
	}
	return pl.planWrite(del, "DELETE", a, blk, del.OrderBy, del.Limit)
}

func (pl *planner) planDDL(ddl sqlparser.DDLStatement) (engine.Primitive, error) {
	if !ddl.IsFullyParsed() {
		// The parser kept only part of it: sending that part would run a
		// different statement.
		return nil, unsupported("this DDL statement through the proxy (only part of it was understood: %s)", sqlString(ddl))
	}
	var names sqlparser.TableNames
	switch s := ddl.(type) {
	case *sqlparser.CreateTable:
		names = sqlparser.TableNames{s.Table}
		if s.OptLike != nil {
			names = append(names, s.OptLike.LikeTable)
		}
		if s.Select != nil {
			return nil, unsupported("CREATE TABLE ... SELECT on a sharded database")
		}
	case *sqlparser.AlterTable, *sqlparser.DropTable, *sqlparser.TruncateTable, *sqlparser.RenameTable:
		names = ddl.AffectedTables()
	case *sqlparser.CreateView, *sqlparser.AlterView, *sqlparser.DropView:
		names = ddl.AffectedTables()
		for _, n := range names {
			db := n.Qualifier.String()
			if db == "" {
				db = pl.db
			}
			if d, ok := pl.vs.Databases[db]; ok && d.Sharded {
				return nil, unsupported("views on sharded database %s", db)
			}
		}
	default:
		return nil, unsupported("%s statements through the shard planner", stmtKind(ddl))
	}
	if len(names) == 0 {
		return nil, unsupported("%s without a table", stmtKind(ddl))
	}
	var (
		all     bool
		sharded bool
		shard   string
		placed  []string
	)
	drop, _ := ddl.(*sqlparser.DropTable)
	undeclared := 0
	for _, n := range names {
		_, _, t, err := pl.resolveTable(n)
		if err != nil {
			var se *sqlerror.SQLError
			if drop != nil && drop.IfExists && errors.As(err, &se) && se.Number() == sqlerror.ERNoSuchTable {
				// DROP TABLE IF EXISTS of a table the proxy does not know:
				// where the statement runs, the server answers it with a
				// note (1051), as it would any table that does not exist.
				undeclared++
				continue
			}
			return nil, err
		}
		switch t.Kind {
		case vschema.Sharded, vschema.Reference:
			all = true
			sharded = sharded || t.Kind == vschema.Sharded
			placed = append(placed, t.Name+" (every shard)")
		case vschema.Unsharded:
			if shard != "" && shard != t.Shard {
				return nil, unsupported("DDL over unsharded tables on different shards")
			}
			shard = t.Shard
			placed = append(placed, t.Name+" (on "+t.Shard+")")
		}
	}
	if all && shard != "" {
		return nil, unsupported("DDL over tables placed differently: %s", strings.Join(placed, ", "))
	}
	if undeclared == len(names) {
		// Nothing the proxy knows: every shard answers, each with its
		// notes (the same notes, which the warnings fold into one set).
		all = true
	}
	sub, ddl, err := pl.subDDL(ddl, names)
	if err != nil {
		return nil, err
	}
	q := parsed(ddl)
	if sub != nil {
		// Every sub-table of every shard.
		return &engine.Route{Opcode: engine.AllShards, VSchema: pl.vs, Query: q, Sub: sub}, nil
	}
	if all {
		// A copying ALTER counts the rows it copied: the shards' own rows of a
		// sharded table (summed, as one server would count them all), the
		// same rows on every copy of a reference table.
		return &engine.Route{Opcode: engine.AllShards, VSchema: pl.vs, Query: q, Copies: !sharded}, nil
	}
	return &engine.Route{Opcode: engine.Unsharded, VSchema: pl.vs, Shard: shard, Query: q}, nil
}

// subDDL rewrites DDL over sub-tabled tables to run on each sub-table: the
// tables it names must all be sub-tabled alike.
func (pl *planner) subDDL(ddl sqlparser.DDLStatement, names sqlparser.TableNames) (*engine.SubTables, sqlparser.DDLStatement, error) {
	var subbed, plain []string
	var lay *vschema.Table
	for _, n := range names {
		t := pl.subTableOf(n)
		if t == nil {
			plain = append(plain, sqlString(n))
			continue
		}
		if lay != nil && !vschema.SameSubLayout(lay, t) {
			return nil, nil, unsupported("DDL over sub-tabled tables %s and %s, which are not partitioned alike", lay.Name, t.Name)
		}
		lay = t
		subbed = append(subbed, t.Name)
	}
	if lay == nil {
		return nil, ddl, nil
	}
	if len(plain) > 0 {
		return nil, nil, unsupported("DDL over sub-tabled table %s together with %s, which has no sub-tables alike", subbed[0], plain[0])
	}
	if _, ok := ddl.(*sqlparser.RenameTable); ok {
		return nil, nil, unsupported("RENAME TABLE of sub-tabled table %s", subbed[0])
	}
	pl.subs = &subMarks{}
	out := sqlparser.Rewrite(sqlparser.Clone(sqlparser.SQLNode(ddl)), func(c *sqlparser.Cursor) bool {
		if tn, ok := c.Node().(sqlparser.TableName); ok {
			if t := pl.subTableOf(tn); t != nil {
				c.Replace(pl.subs.mark(tn, t))
			}
		}
		return true
	}, nil)
	return &engine.SubTables{Layout: lay, Names: pl.subs.names}, out.(sqlparser.DDLStatement), nil
}

// keepsKey says an ON DUPLICATE KEY UPDATE assignment to the shard key
// column keeps the row's key: key = key, or key = LAST_INSERT_ID(key)
// (lastID), the idiom that makes the OK's insert id and LAST_INSERT_ID()
// the existing row's id.
func keepsKey(e sqlparser.Expr, column string) (keeps, lastID bool) {
	if f, ok := e.(*sqlparser.FuncExpr); ok && f.Qualifier.IsEmpty() && f.Name.Lowered() == "last_insert_id" && len(f.Exprs) == 1 {
		e, lastID = f.Exprs[0], true
	}
	c, ok := e.(*sqlparser.ColName)
	return ok && c.Name.EqualString(column), lastID
}
