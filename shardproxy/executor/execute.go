package executor

import (
	"context"
	"encoding/hex"
	"runtime/debug"
	"strings"
	"time"

	"vitess.io/vitess/go/mysql/sqlerror"
	"vitess.io/vitess/go/sqltypes"
	querypb "vitess.io/vitess/go/vt/proto/query"
	"vitess.io/vitess/go/vt/sqlparser"

	"github.com/strata-db/strata/shardproxy/engine"
	"github.com/strata-db/strata/shardproxy/internal/sqltext"
	"github.com/strata-db/strata/shardproxy/mysqlerr"
	"github.com/strata-db/strata/shardproxy/planner"
	"github.com/strata-db/strata/shardproxy/session"
	"github.com/strata-db/strata/shardproxy/sqlmode"
	"github.com/strata-db/strata/shardproxy/vschema"
)

// execute runs one statement of text: the fast path when its shape is
// known (see fastpath.go), else parse, classify and run.
func (s *Session) execute(ctx context.Context, sql string) (*sqltypes.Result, error) {
	start := time.Now()
	s.Running(sql, start)
	kind, res, err := s.dispatchSafe(ctx, sql)
	if err != nil {
		// What a backend answered once the others were stopped (an
		// interrupted read, a statement refused), or the proxy's own check:
		// the statement was killed (kill.go).
		err = s.KilledErr(err)
		s.RecordError(err)
	}
	s.finish(kind, sql, start, err)
	return res, err
}

// dispatchSafe turns a panic while running a statement into an error for
// that statement: the connection, and every other, goes on.
func (s *Session) dispatchSafe(ctx context.Context, sql string) (kind stmtKind, res *sqltypes.Result, err error) {
	kind = kindOther // what a statement that panicked counts as
	defer s.srv.guard(s.ID, "statement", sql, &err)
	kind, res, err = s.dispatch(ctx, sql)
	if err == nil && (kind == kindTx || kind == kindSet) {
		// The proxy answers these itself (no shard's ROW_COUNT() to
		// relay): MariaDB's is 0 after them.
		s.RowCount = 0
	}
	return kind, res, err
}

// guard, deferred, turns a panic while running a client's statement into
// that statement's error (1105, logged with the stack): the connection, and
// every other, goes on. The proxy's one panic guard; the parser's and the
// normalizer's panics, which have answers of their own, are parse's and
// normalize's.
func (srv *Executor) guard(conn uint32, what, query string, err *error) {
	if r := recover(); r != nil {
		srv.log.Error("shardproxy: panic in "+what, "conn", conn, "query", query, "panic", r, "stack", string(debug.Stack()))
		*err = sqlerror.NewSQLErrorf(sqlerror.ERUnknownError, sqlerror.SSUnknownSQLState, "internal error in the proxy: %v", r)
	}
}

// finish counts a statement and logs it when slow.
func (s *Session) finish(kind stmtKind, sql string, start time.Time, err error) {
	m := s.srv.metrics
	m.Statements[kind].Inc()
	if err != nil {
		m.StmtErrors[kind].Inc()
	}
	if thr := s.srv.cfg.SlowQueryThreshold; thr > 0 {
		if d := time.Since(start); d > thr {
			m.Slow.Inc()
			q := sql
			if len(q) > 1024 {
				q = q[:1024] + "..."
			}
			s.srv.log.Warn("slow query", "ms", d.Milliseconds(), "conn", s.ID, "user", s.User, "db", s.DB, "query", q, "err", err)
		}
	}
	s.Running("", time.Time{})
}

func (s *Session) dispatch(ctx context.Context, sql string) (stmtKind, *sqltypes.Result, error) {
	if mentionsStrata(sql) {
		if res, ok := s.cacheStatement(sql); ok {
			return kindShow, res, nil
		}
		if isShowTransactions(sql) {
			res, err := s.showTransactions(ctx)
			return kindShow, res, err
		}
		if res, err, ok := s.readWriteStatement(ctx, sql); ok {
			return kindShow, res, err
		}
	} else {
		s.Hint.ForcePrimary = false
	}
	if len(sql) > bigText {
		if res, err, ok := s.passBig(ctx, sql); ok {
			return kindOther, res, err
		}
	}
	if s.Vars.Mode == 0 {
		if kind, res, err, ok := s.fastExecute(ctx, sql); ok {
			return kind, res, err
		}
		if sqlmode.Needed(sql, 0) {
			// What vitess's parser reads differently from MariaDB in any
			// mode (a non-ASCII identifier, N"x", 7b).
			sql = sqlmode.Normalize(sql, 0).SQL
		}
	} else if s.Vars.Mode&sqlmode.PipesAsConcat != 0 && sqlmode.Normalize(sql, sqlmode.PipesAsConcat).Pipes {
		// vitess would read || as OR: only the server may read it.
		if res, err, ok := s.passRaw(ctx, sql); ok {
			return kindOther, res, err
		}
		return kindOther, nil, mysqlerr.NotSupported("|| under sql_mode PIPES_AS_CONCAT in a sharded database (the proxy would read it as OR): use CONCAT()")
	}
	stmt, known, err := s.srv.parse(sql)
	if err != nil {
		if strings.TrimSpace(sqltext.StripComments(sql)) == "" {
			return kindOther, nil, errEmpty
		}
		if isXAStatement(sql) {
			if ok, xerr := s.clientXA(); ok {
				return kindOther, nil, xerr
			}
		}
		// MariaDB's syntax that vitess's parser does not read.
		if base, clause, ok := sqlmode.SplitReturning(sql, 0); ok {
			return s.returning(ctx, sql, base, clause)
		}
		if set, ok := sqlmode.SetAssignments(sql, 0); ok {
			if st, kn, err2 := s.srv.parse(set); err2 == nil {
				s.ClearWarnings()
				return s.dispatchStmt(ctx, set, st, kn)
			}
		}
		s.ClearWarnings()
		if res, err, ok := s.txEndChain(sql); ok {
			// COMMIT AND CHAIN, ROLLBACK RELEASE: the proxy's own
			// transaction, as COMMIT and ROLLBACK are (chain.go).
			return kindTx, res, err
		}
		if sqlmode.Verb(sql, 0) == "KILL" {
			// Never a backend's: its ids are not the client's (kill.go).
			res, err := s.killStatement(ctx, sql)
			return kindOther, res, err
		}
		if res, err2, ok := s.passRaw(ctx, sql); ok {
			return kindOther, res, err2
		}
		switch w := firstWords(sql); {
		case strings.HasPrefix(w, "HANDLER "), strings.HasPrefix(w, "XA "), w == "SET STATEMENT":
			// MariaDB's statements that only an unsharded database passes
			// (XA across shards is the proxy's own: see its transactions).
			return kindOther, nil, mysqlerr.NotSupported("%s in a sharded database: the proxy passes it only in an unsharded database", firstWords(sql))
		}
		return kindOther, nil, s.syntaxRefusal(ctx, sql, err)
	}
	restore := func(error) {}
	if sh, ok := stmt.(*sqlparser.Show); ok && isWarningsShow(sh) {
		s.QuietCount = true
	} else {
		restore = s.clearWarnings(noTables(stmt))
	}
	kind, res, err := s.dispatchStmt(ctx, sql, stmt, known)
	restore(err)
	if err != nil && rawable(stmt) && mysqlerr.From(err).Number() == sqlerror.ERNotSupportedYet {
		// What the proxy cannot plan, an unsharded database's server runs.
		if r, err2, ok := s.passRaw(ctx, sql); ok {
			return kind, r, err2
		}
		// What touches one shard of a sharded database (oneshard.go).
		if r, err2, ok := s.oneShard(ctx, sql, stmt, known); ok {
			return kind, r, err2
		}
	}
	return kind, res, err
}

func (s *Session) dispatchStmt(ctx context.Context, sql string, stmt sqlparser.Statement, known sqlparser.BindVars) (stmtKind, *sqltypes.Result, error) {
	switch st := stmt.(type) {
	case *sqlparser.Select, *sqlparser.Union, *sqlparser.Insert, *sqlparser.Update, *sqlparser.Delete:
		kind := kindOf(stmt)
		if kind == kindSelect && containsFold(sql, "processlist") && refsProcessList(stmt, s.DB) {
			res, err := s.selectProcessList(ctx, stmt)
			return kind, res, err
		}
		res, err := s.runPlanned(ctx, sql, stmt, known)
		return kind, res, err
	case sqlparser.DDLStatement:
		// MySQL commits nothing for CREATE/DROP TEMPORARY TABLE.
		if !planner.IsTempDDL(st) {
			if err := s.implicitCommit(); err != nil {
				return kindDDL, nil, err
			}
		}
		res, err := s.runPlanned(ctx, sql, stmt, known)
		return kindDDL, res, err
	case *sqlparser.Set:
		res, err := s.set(ctx, sql, st)
		return kindSet, res, err
	case *sqlparser.Use:
		return kindOther, okResult, s.use(st.DBName.String())
	case *sqlparser.Begin:
		if err := s.implicitCommit(); err != nil {
			return kindTx, nil, err
		}
		s.ExplicitTx = true
		s.TxBegin = sqlparser.String(st)
		return kindTx, okResult, nil
	case *sqlparser.Commit:
		res, err := s.txEnd(true, clauseAbsent, clauseAbsent)
		return kindTx, res, err
	case *sqlparser.Rollback:
		res, err := s.txEnd(false, clauseAbsent, clauseAbsent)
		return kindTx, res, err
	case *sqlparser.Savepoint, *sqlparser.SRollback, *sqlparser.Release:
		res, err := s.savepoint(ctx, sqlparser.String(st))
		return kindTx, res, err
	case *sqlparser.Show:
		res, err := s.show(ctx, sql, st)
		return kindShow, res, err
	case *sqlparser.ExplainStmt:
		res, err := s.explain(ctx, st)
		return kindShow, res, err
	case *sqlparser.ExplainTab:
		res, err := s.showTable(ctx, "SHOW COLUMNS FROM "+tableSQL(st.Table), st.Table)
		return kindShow, res, err
	case *sqlparser.CreateDatabase, *sqlparser.DropDatabase, *sqlparser.AlterDatabase:
		if err := s.implicitCommit(); err != nil {
			return kindDDL, nil, err
		}
		res, err := s.databaseDDL(ctx, sql, st.(sqlparser.DBDDLStatement))
		if rc := s.srv.rc; rc != nil {
			rc.Invalidate(rc.Writes(st, s.DB, nil, s.State.Key()))
		}
		return kindDDL, res, err
	case *sqlparser.UnlockTables:
		res, err := s.unlockTables(ctx)
		return kindOther, res, err
	case *sqlparser.LockTables:
		res, err := s.lockTables(ctx, st)
		return kindOther, res, err
	case *sqlparser.Kill:
		res, err := s.killStatement(ctx, sql)
		return kindOther, res, err
	case *sqlparser.CallProc:
		return kindOther, nil, mysqlerr.NotSupported("CALL")
	case *sqlparser.Load:
		res, err := s.loadData(ctx, sql)
		return kindInsert, res, err
	case *sqlparser.PrepareStmt, *sqlparser.ExecuteStmt, *sqlparser.DeallocateStmt:
		return kindOther, nil, mysqlerr.NotSupported("PREPARE/EXECUTE statements (use the binary protocol's prepared statements)")
	}
	if strings.TrimSpace(sqltext.StripComments(sql)) == "" {
		return kindOther, nil, errEmpty
	}
	return kindOther, nil, mysqlerr.NotSupported("%s", firstWords(sql))
}

var okResult = &sqltypes.Result{}

// mentionsStrata is a cheap test for the word "strata" in any case: only
// then can a statement carry the primary hint or be a STRATA admin
// statement, and read/write splitting's (allocating) checks run.
func mentionsStrata(sql string) bool {
	for i := 0; i+6 <= len(sql); i++ {
		if (sql[i] == 's' || sql[i] == 'S') && equalFold(sql[i:i+6], "strata") {
			return true
		}
	}
	return false
}

// clearWarnings clears the warnings before a statement. MariaDB clears
// them at a statement that names a table, or that raises some of its own:
// SELECT @@warning_count, SET @x = 1, SELECT 1 (keep) leave the list for a
// SHOW WARNINGS after them, their own warning count 0. restore, called
// with the statement's error, gives such a statement the list back when it
// raised nothing.
func (s *Session) clearWarnings(keep bool) (restore func(error)) {
	if !keep || len(s.Warnings)+s.WarnMore == 0 {
		s.ClearWarnings()
		return func(error) {}
	}
	s.WMu.Lock()
	kept, keptMore := append([]sqltypes.Row(nil), s.Warnings...), s.WarnMore
	s.WMu.Unlock()
	s.ClearWarnings()
	return func(err error) {
		if err != nil {
			return
		}
		s.WMu.Lock()
		if len(s.Warnings) == 0 && s.WarnMore == 0 {
			s.Warnings, s.WarnMore = kept, keptMore
			s.QuietCount = true
		}
		s.WMu.Unlock()
	}
}

// noTables says stmt is a SELECT, SET or DO that names no table (dual
// aside).
func noTables(stmt sqlparser.Statement) bool {
	switch stmt.(type) {
	case *sqlparser.Select, *sqlparser.Set:
	default:
		return false
	}
	none := true
	_ = sqlparser.Walk(func(n sqlparser.SQLNode) (bool, error) {
		if t, ok := n.(sqlparser.TableName); ok && !t.Name.IsEmpty() && !strings.EqualFold(t.Name.String(), "dual") {
			none = false
			return false, nil
		}
		return none, nil
	}, stmt)
	return none
}

func isWarningsShow(sh *sqlparser.Show) bool {
	b, ok := sh.Internal.(*sqlparser.ShowBasic)
	return ok && (b.Command == sqlparser.Warnings || b.Command == sqlparser.Errors)
}

func kindOf(stmt sqlparser.Statement) stmtKind {
	switch stmt.(type) {
	case *sqlparser.Select, *sqlparser.Union:
		return kindSelect
	case *sqlparser.Insert:
		return kindInsert
	case *sqlparser.Update:
		return kindUpdate
	case *sqlparser.Delete:
		return kindDelete
	case sqlparser.DDLStatement:
		return kindDDL
	}
	return kindOther
}

// firstWords names an unsupported statement in an error: its first two
// words.
func firstWords(sql string) string {
	f := strings.Fields(sqltext.StripComments(sql))
	if len(f) > 2 {
		f = f[:2]
	}
	return strings.ToUpper(strings.Join(f, " "))
}

// runPlanned normalizes a statement (literals become bind variables), finds
// or builds its plan and runs it.
func (s *Session) runPlanned(ctx context.Context, sql string, stmt sqlparser.Statement, known sqlparser.BindVars) (*sqltypes.Result, error) {
	bv := make(map[string]*querypb.BindVariable)
	cp, err := s.planFor(stmt, known, bv)
	if err != nil {
		return nil, err
	}
	return s.execPlan(ctx, cp, bv, sql)
}

// planFor normalizes stmt into bv and returns its (cached) plan.
func (s *Session) planFor(stmt sqlparser.Statement, known sqlparser.BindVars, bv map[string]*querypb.BindVariable) (*cachedPlan, error) {
	if known == nil {
		known = sqlparser.BindVars{}
	}
	if err := planner.RefuseIntoVariables(stmt); err != nil {
		return nil, err
	}
	stmt = foldNegative(stmt)
	r, err := s.srv.normalize(stmt, known, bv, s.DB)
	if err != nil {
		return nil, toNotSupported(err)
	}
	normalized := sqlparser.String(r.AST)
	key := s.DB + "\x00" + normalized
	if cp := s.srv.plans.get(key); cp != nil {
		return cp, nil
	}
	if containsFold(normalized, "processlist") && refsProcessList(r.AST, s.DB) {
		// The proxy's own sessions, answered each time (kill.go): never a
		// cached plan, a fast shape, or a prepared statement's plan.
		return nil, mysqlerr.NotSupported("information_schema.PROCESSLIST in a statement other than a SELECT: the proxy lists its own sessions in a SELECT only")
	}
	if ast, ok := planner.RewriteConnectionID(r.AST, connIDName); ok {
		r.AST = ast
		if r.BindVarNeeds == nil {
			r.BindVarNeeds = &sqlparser.BindVarNeeds{}
		}
		r.AddFuncResult(connIDName)
	}
	plan, err := s.srv.planner(r.AST, s.srv.vs, s.DB)
	if err != nil {
		return nil, err
	}
	needs := r.BindVarNeeds
	if needs != nil && len(needs.NeedFunctionResult)+len(needs.NeedSystemVariable)+len(needs.NeedUserDefinedVariables) == 0 {
		needs = nil // nothing from the session
	}
	cp := &cachedPlan{plan: plan.Root, facts: plan.Facts, needs: needs, kind: kindOf(r.AST), normalized: normalized}
	cp.refRead = cp.kind == kindSelect && len(cp.facts.Writes) == 0 && !cp.facts.SideEffects() && s.srv.referenceOnly(cp.facts.Reads)
	if rc := s.srv.rc; rc != nil {
		if cp.plainSelect() {
			cp.point, _ = rc.PlanPoint(r.AST, s.DB)
		} else if cp.kind != kindSelect {
			cp.ast = r.AST
		}
	}
	// A cached point select is the cache's to answer, not the lane's.
	cp.lane = cp.plainSelect() && cp.facts.OneShardWhole && cp.point == nil
	cp.pipe = cp.lane && cp.facts.Point && pipeable(r.AST)
	s.srv.plans.put(key, cp)
	return cp, nil
}

// plainSelect: a SELECT whose rows are all it does, which the fast lane may
// pass on as the shard sends them: it leaves nothing on its connection
// (reserve, named locks) or in the session (SQL_CALC_FOUND_ROWS,
// LAST_INSERT_ID(expr)) for execPlan to handle.
func (cp *cachedPlan) plainSelect() bool {
	return cp.kind == kindSelect && !cp.facts.SideEffects()
}

// parse parses one statement; its errors are MySQL's 1064. So is a panic of
// vitess's parser, which it has on an identifier spelled ```` (a name of
// one backquote, whose "quotes" createIdentifierCI cuts off) where a
// variable is named, as in SET ```` or SELECT @````. MariaDB answers
// SET ```` with 1064 too, near the end of the statement. The parser runs
// on a worker of srv.deep (deep.go says why).
func (srv *Executor) parse(sql string) (stmt sqlparser.Statement, known sqlparser.BindVars, err error) {
	var panicked any
	atEnd := false
	srv.deep.run(func() {
		defer func() { panicked = recover() }()
		stmt, known, err = srv.parser.Parse2(sql)
		if pos, near, ok := mysqlerr.SyntaxPosition(err); ok && !near && pos == len(sql)+1 {
			// The parser names no token when the text ended too soon, or
			// when the last token is wrong: with a token that fits nowhere
			// after it, the first fails at that token, the second where it
			// did. MariaDB says near '' for the first.
			_, _, err2 := srv.parser.Parse2(sql + " \x01")
			pos2, _, ok2 := mysqlerr.SyntaxPosition(err2)
			atEnd = err2 == nil || ok2 && pos2 > pos
		}
	})
	if panicked != nil {
		srv.log.Warn("shardproxy: the parser panicked: answered as a syntax error", "query", sql, "panic", panicked)
		return nil, nil, mysqlerr.SyntaxErrorAt(sql, len(strings.TrimRight(sql, " \t\r\n")))
	}
	if atEnd {
		return nil, nil, mysqlerr.SyntaxErrorAt(sql, len(sql))
	}
	if err != nil {
		return nil, nil, mysqlerr.ParseError(sql, err)
	}
	return stmt, known, nil
}

// normalize is sqlparser.Normalize with its panics turned into the refusal
// of the statement.
func (srv *Executor) normalize(stmt sqlparser.Statement, known sqlparser.BindVars, bv map[string]*querypb.BindVariable, db string) (r *sqlparser.RewriteASTResult, err error) {
	defer func() {
		if p := recover(); p != nil {
			srv.log.Warn("shardproxy: the normalizer panicked: statement refused", "query", sqlparser.String(stmt), "panic", p, "stack", string(debug.Stack()))
			r, err = nil, mysqlerr.NotSupported("%s (vitess's normalizer failed on it: %v)", firstWords(sqlparser.String(stmt)), p)
		}
	}()
	return sqlparser.Normalize(stmt, sqlparser.NewReservedVars("vtg", known), bv, true, db, -1, "", proxySysVars, nil, nil)
}

// foldNegative turns -<number> into one negative literal before
// normalization, so that a negative shard key (INSERT ... VALUES (-5, ...))
// becomes one bind variable holding -5 rather than minus a bind variable,
// which the planner could not route.
func foldNegative(stmt sqlparser.Statement) sqlparser.Statement {
	out := sqlparser.SafeRewrite(stmt, nil, func(c *sqlparser.Cursor) bool {
		u, ok := c.Node().(*sqlparser.UnaryExpr)
		if !ok || u.Operator != sqlparser.UMinusOp {
			return true
		}
		lit, ok := u.Expr.(*sqlparser.Literal)
		if !ok || strings.HasPrefix(lit.Val, "-") {
			return true
		}
		switch lit.Type {
		case sqlparser.IntVal, sqlparser.FloatVal, sqlparser.DecimalVal:
			c.Replace(&sqlparser.Literal{Type: lit.Type, Val: "-" + lit.Val})
		}
		return true
	})
	return out.(sqlparser.Statement)
}

// toNotSupported maps the normalizer's refusals (VT12001 unsupported) to
// 1235; other errors pass.
func toNotSupported(err error) error {
	se := mysqlerr.From(err)
	if strings.Contains(se.Message, "VT12001") || se.Number() == sqlerror.ERUnknownError {
		return sqlerror.NewSQLErrorf(sqlerror.ERNotSupportedYet, sqlerror.SSClientError, "%s", se.Message)
	}
	return se
}

// execPlan runs a plan with the session's values for the bind variables the
// normalizer asked for, and records what the session must remember
// (LAST_INSERT_ID, ROW_COUNT). text is the statement as the client sent it
// (a prepared statement's text with its ?), for columns named after it.
func (s *Session) execPlan(ctx context.Context, cp *cachedPlan, bv map[string]*querypb.BindVariable, text string) (*sqltypes.Result, error) {
	if cp.facts.NeedsText && text != "" {
		ctx = engine.WithSQL(ctx, text)
	}
	if cp.needs != nil {
		s.fillNeeds(cp.needs, bv)
	}
	if cp.kind == kindDDL || cp.facts.LockFuncs {
		// Lock functions, like DDL, are not part of a transaction: they
		// run on the lock shard whatever shard the transaction is on.
		s.OutsideTx = true
		s.Reserving = cp.facts.Reserve
		defer func() { s.OutsideTx, s.Reserving = false, "" }()
	}
	s.RefRead = cp.refRead
	defer func() { s.RefRead = false }()
	if s.tablelessBeforeTx(cp) {
		// Nothing of it is transactional: pinning the transaction to the
		// shard that answered (any) would refuse or span the next
		// statement, on the shard of its rows.
		s.OutsideTx = true
		defer func() { s.OutsideTx = false }()
	}
	if err := s.autocommitStmt(cp); err != nil {
		return nil, err
	}
	var vc engine.VCursor = s
	if s.vc != nil {
		vc = s.vc
	}
	if cp.facts.CalcFoundRows {
		s.Vars.Calc = &session.CalcFound{}
		defer func() { s.Vars.Calc = nil }()
	}
	res, cached, err := s.cachedRead(ctx, cp, vc, bv)
	if !cached {
		res, err = cp.plan.Execute(ctx, vc, bv)
		s.noteWrite(cp, bv)
	}
	if err != nil {
		return nil, err
	}
	switch cp.kind {
	case kindInsert, kindUpdate, kindDelete:
		s.RowCount = int64(res.RowsAffected)
		if res.InsertID != 0 {
			s.LastInsertID = res.InsertID
		}
		s.insertIDUsed(cp, res)
	case kindSelect:
		if text != "" {
			// Not for the proxy's own evaluations (SET's values).
			res = applySelectLimit(&s.Vars, cp, res)
		}
		s.RowCount = -1
		s.FoundRows = uint64(len(res.Rows))
		if cp.facts.CalcFoundRows && s.Vars.Calc != nil {
			n, err := s.Vars.Calc.Result()
			if err != nil {
				return nil, err
			}
			s.FoundRows = n
		}
		s.lastIDFrom(cp, res)
	default:
		s.RowCount = 0
	}
	return res, nil
}

func (s *Session) fillNeeds(n *sqlparser.BindVarNeeds, bv map[string]*querypb.BindVariable) {
	for _, f := range n.NeedFunctionResult {
		switch f {
		case sqlparser.LastInsertIDName:
			bv[f] = sqltypes.Uint64BindVariable(s.LastInsertID)
		case sqlparser.DBVarName:
			if s.DB == "" {
				bv[f] = sqltypes.NullBindVariable
			} else {
				bv[f] = sqltypes.StringBindVariable(s.DB)
			}
		case sqlparser.FoundRowsName:
			bv[f] = sqltypes.Uint64BindVariable(s.FoundRows)
		case sqlparser.RowCountName:
			bv[f] = sqltypes.Int64BindVariable(s.RowCount)
		case connIDName:
			bv[f] = sqltypes.Uint64BindVariable(uint64(s.ID))
		}
	}
	for _, name := range n.NeedSystemVariable {
		bv["__vt"+name] = s.sysVar(name)
	}
	for _, name := range n.NeedUserDefinedVariables {
		if v, ok := s.UDV[name]; ok {
			bv[sqlparser.UserDefinedVariableName+name] = v
		} else {
			bv[sqlparser.UserDefinedVariableName+name] = sqltypes.NullBindVariable
		}
	}
}

// proxySysVars are system variables the proxy answers itself, besides
// those the normalizer always turns into bind variables.
var proxySysVars = map[string]string{"strata_read_consistency": "", "warning_count": "", "error_count": "", "in_transaction": ""}

// sysVar answers the system variables the normalizer turns into bind
// variables (those the proxy, not a backend, knows).
func (s *Session) sysVar(name string) *querypb.BindVariable {
	switch name {
	case "autocommit":
		return sqltypes.BoolBindVariable(s.Autocommit)
	case "version":
		return sqltypes.StringBindVariable(s.srv.version)
	case "version_comment":
		return sqltypes.StringBindVariable("Strata shard proxy")
	case "strata_read_consistency":
		return sqltypes.StringBindVariable(s.ReadConsistency())
	case "in_transaction":
		// The session's transaction, which may span shards or have
		// reached none yet (with autocommit off, a shard's connection
		// would say 1 as the question itself began one there).
		return sqltypes.BoolBindVariable(s.ExplicitTx || s.Tx != nil)
	case "warning_count":
		return sqltypes.Int64BindVariable(int64(s.PrevWarnings))
	case "error_count":
		return sqltypes.Int64BindVariable(int64(s.PrevErrors))
	case "sql_select_limit":
		return sqltypes.ValueBindVariable(*s.Vars.SelectLimitValue())
	case "charset", "names":
		return sqltypes.StringBindVariable("utf8mb4")
	case "client_found_rows", "transaction_read_only", "tx_read_only", "skip_query_plan_cache",
		"read_after_write_timeout", "query_timeout", "transaction_timeout":
		return sqltypes.Int64BindVariable(0)
	case "enable_system_settings":
		return sqltypes.Int64BindVariable(1)
	case "socket", "session_uuid", "ddl_strategy", "migration_context", "transaction_mode", "workload",
		"read_after_write_gtid", "session_track_gtids":
		return sqltypes.StringBindVariable("")
	}
	return sqltypes.NullBindVariable
}

func (srv *Executor) homeShardOf(db string) string {
	return engine.HomeShard(srv.vs, srv.vs.Databases[db])
}

// implicitCommit ends an open transaction the way MySQL does before DDL
// and BEGIN.
func (s *Session) implicitCommit() error {
	if s.Tx == nil && !s.ExplicitTx && s.TxLost == nil {
		return nil
	}
	return s.endTx(true)
}

func (s *Session) use(db string) error {
	if _, ok := s.srv.vs.Databases[db]; ok || sqlparser.SystemSchema(db) {
		s.DB = db
		return nil
	}
	return sqlerror.NewSQLErrorf(sqlerror.ERBadDb, sqlerror.SSClientError, "Unknown database '%s'", db)
}

// savepoint runs SAVEPOINT, ROLLBACK TO and RELEASE on the transaction's
// connection, or queues them behind BEGIN when no statement has pinned one
// yet. Outside a transaction they have nothing to act on.
func (s *Session) savepoint(ctx context.Context, sql string) (*sqltypes.Result, error) {
	if s.TxLost != nil {
		return nil, s.TxLost
	}
	if len(s.Branches) > 0 {
		return nil, sqlerror.NewSQLError(sqlerror.ERNotSupportedYet, sqlerror.SSClientError,
			"savepoints are not supported in a transaction that spans shards")
	}
	if s.Tx != nil {
		res, err := s.ExecuteShards(ctx, []engine.ShardQuery{{Shard: s.TxShard, SQL: sql}})
		if err != nil {
			return nil, err
		}
		return res[0], nil
	}
	if s.InTx() {
		s.TxBegin += ";" + sql
	}
	return okResult, nil
}

// databaseDDL: CREATE/ALTER/DROP DATABASE of a configured database goes to
// the shards that hold it; other databases are not the proxy's to create.
func (s *Session) databaseDDL(ctx context.Context, sql string, st sqlparser.DBDDLStatement) (*sqltypes.Result, error) {
	name := st.GetDatabaseName()
	shards, ok := s.srv.dbShards[name]
	if !ok {
		return nil, sqlerror.NewSQLErrorf(sqlerror.ERNotSupportedYet, sqlerror.SSClientError,
			"database %s is not in the proxy's configuration: declare it under databases: and the proxy creates it", name)
	}
	var qs []engine.ShardQuery
	for _, sh := range s.srv.vs.Shards {
		if shards[sh] {
			qs = append(qs, engine.ShardQuery{Shard: sh, SQL: sql})
		}
	}
	res, err := s.ExecuteOutsideTx(ctx, qs)
	if err != nil {
		return nil, err
	}
	return res[0], nil
}

func tableSQL(t sqlparser.TableName) string { return sqlparser.String(t) }

// tablelessBeforeTx: a SELECT of no table (SELECT 1, SELECT @@tx_isolation,
// SELECT NOW(): what drivers and ORMs send as a transaction begins) in a
// transaction that has not yet reached a shard, with no SET TRANSACTION
// pending for it. Any shard answers it alike, and on MariaDB it touches no
// transactional table, so it runs outside the transaction and leaves it
// to begin on the shard its first table's rows are on.
func (s *Session) tablelessBeforeTx(cp *cachedPlan) bool {
	f := &cp.facts
	return cp.kind == kindSelect && s.InTx() && !s.OutsideTx && s.Tx == nil && s.TxShard == "" &&
		len(s.Branches) == 0 && s.TxLost == nil && len(s.Reserved) == 0 &&
		len(f.Reads) == 0 && len(f.Writes) == 0 && !f.SideEffects() && f.Shard == "" &&
		s.Vars.NextTxSQL() == ""
}

// maxSyntaxCheck bounds the statements syntaxRefusal has a shard read:
// longer ones keep the parser's answer.
const maxSyntaxCheck = 1 << 16

// syntaxRefusal is the answer to a statement of a sharded database that
// vitess's parser does not read (perr, its 1064). MariaDB reads more than
// vitess (SELECT ... FOR UPDATE WAIT 5, LOCK IN SHARE MODE NOWAIT, CREATE
// INDEX IF NOT EXISTS, CAST(x AS INTEGER)): answering those with 1064
// would tell the client its SQL is wrong when it is MariaDB's. The home
// shard's server prepares the text (SQL PREPARE parses without running)
// and says: a syntax error is its own 1064, exactly as the client would
// get it directly; anything else means MariaDB reads the statement, and
// the proxy refuses it with 1235 saying so.
func (s *Session) syntaxRefusal(ctx context.Context, sql string, perr error) error {
	d := s.srv.vs.Databases[s.DB]
	if d == nil || !d.Sharded || len(s.srv.vs.Shards) == 0 || mysqlerr.From(perr).Number() != sqlerror.ERParseError || len(sql) > maxSyntaxCheck {
		return perr
	}
	check := "PREPARE __strata_syntax FROM CONVERT(0x" + hex.EncodeToString([]byte(sql)) + " USING utf8mb4); DEALLOCATE PREPARE __strata_syntax"
	_, err := s.ExecuteOutsideTx(ctx, []engine.ShardQuery{{Shard: s.srv.vs.Shards[0], SQL: check}})
	if se := mysqlerr.From(err); err != nil && se.Number() == sqlerror.ERParseError {
		return se
	}
	if err != nil {
		switch n := mysqlerr.From(err).Number(); {
		case n >= 2000, n == sqlerror.ERUnknownError, n == sqlerror.ERNetPacketTooLarge, n == sqlerror.ERQueryInterrupted,
			n == sqlerror.ERTooManyUserConnections, n == sqlerror.ERConCount, n == sqlerror.ERUserLimitReached:
			// The server could not be asked, or said nothing of the
			// syntax: the parser's answer stands.
			return perr
		}
	}
	near := mysqlerr.From(perr).Message
	if i := strings.Index(near, "near '"); i >= 0 {
		near = near[i:]
		if j := strings.LastIndex(near, "' at line"); j > 0 {
			near = near[:j+1]
		}
	}
	return mysqlerr.NotSupported("MariaDB syntax that the proxy's SQL parser does not read (%s) in sharded database %s: MariaDB reads it, the proxy cannot plan it (statements pass unread only in an unsharded database)", near, s.DB)
}

// referenceOnly: every table of reads is a reference table of a sharded
// database (a copy on every shard).
func (srv *Executor) referenceOnly(reads []engine.Table) bool {
	for _, t := range reads {
		_, vt, err := srv.vs.FindTable(t.DB, t.Name)
		if err != nil || vt == nil || vt.Kind != vschema.Reference {
			return false
		}
	}
	return true
}
