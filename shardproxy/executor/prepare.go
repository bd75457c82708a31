package executor

import (
	"context"
	"strings"
	"time"

	"vitess.io/vitess/go/mysql"
	"vitess.io/vitess/go/mysql/sqlerror"
	"vitess.io/vitess/go/sqltypes"
	querypb "vitess.io/vitess/go/vt/proto/query"
	"vitess.io/vitess/go/vt/sqlparser"

	"github.com/strata-db/strata/shardproxy/engine"
	"github.com/strata-db/strata/shardproxy/mysqlerr"
	"github.com/strata-db/strata/shardproxy/rwsplit"
	"github.com/strata-db/strata/shardproxy/sqlmode"
)

// prepared is a statement prepared with COM_STMT_PREPARE. Statements the
// planner handles are planned once, here: executing one costs no parsing
// and no plan cache lookup, on sharded tables as on any other. The client's
// parameters (?) arrive as bind variables v1..vN, and the engine routes on
// them like on literals.
type prepared struct {
	query  string
	params int
	// primaryHint: the text carries /*+ strata:primary */ (read once at
	// prepare, not at every execute).
	primaryHint bool
	fields      []*querypb.Field
	kind        stmtKind
	// planned statements
	cp    *cachedPlan
	fixed map[string]*querypb.BindVariable // literals the normalizer lifted
	// anything else runs as text with the parameters substituted
	pq *sqlparser.ParsedQuery

	// The fast lane (lane.go): laneText is the statement for the shard
	// with the client's parameters as ?, in the client's order, for a
	// statement that one shard answers whole ("" if not); rawTypes are the
	// parameter types of the client's last execute that carried them, as it
	// sent them (nil when unknown: an execute took the ordinary path).
	laneText string
	rawTypes []byte
	// call: a CALL, relayed below the listener (relay.go).
	call bool
}

func (s *Session) prepare(ctx context.Context, query string, id uint32) (*prepared, error) {
	// text is the statement as the proxy reads it: in the default
	// sql_mode's text (package sqlmode); query stays the client's, which
	// the listener matches at every execute.
	text := query
	if m := s.Vars.Mode; m != 0 || sqlmode.Needed(query, 0) {
		text = sqlmode.Normalize(query, m).SQL
	}
	text = trimTerminator(text)
	stmt, known, err := s.srv.parse(text)
	if err != nil {
		// INSERT/REPLACE/DELETE ... RETURNING runs as text, the clause
		// after the statement's parameters (see returning).
		if base, clause, ok := sqlmode.SplitReturning(text, 0); ok && !strings.Contains(clause, "?") {
			if st, kn, err2 := s.srv.parse(base); err2 == nil {
				pq := sqlparser.NewParsedQuery(st)
				pq.Query += clause
				return s.register(id, &prepared{query: query, params: len(kn), kind: kindOf(st), pq: pq}), nil
			}
		}
		// In an unsharded database a statement without parameters that
		// vitess does not read runs as text (passRaw).
		if d := s.srv.vs.Databases[s.DB]; d != nil && !d.Sharded && !hasParams(text) && mariadbVerbs[sqlmode.Verb(text, 0)] {
			return s.register(id, &prepared{query: query, kind: kindOther, pq: &sqlparser.ParsedQuery{Query: text}}), nil
		}
		return nil, s.syntaxRefusal(ctx, query, err)
	}
	p := &prepared{query: query, params: len(known), kind: kindOf(stmt), primaryHint: mentionsStrata(query) && rwsplit.HasPrimaryHint(query)}
	switch stmt.(type) {
	case *sqlparser.Select, *sqlparser.Union, *sqlparser.Insert, *sqlparser.Update, *sqlparser.Delete:
		if p.kind == kindSelect && (hasAssignment(stmt) || containsFold(text, "processlist") && refsProcessList(stmt, s.DB)) {
			// Not planned: each execute runs as text, with := on the one
			// shard it touches (oneshard.go, passraw.go), or over the
			// proxy's sessions (kill.go).
			p.pq, _ = textParams(text)
			break
		}
		var fieldQuery *sqlparser.ParsedQuery
		if p.kind == kindSelect {
			// Before normalization rewrites the statement.
			buf := sqlparser.NewTrackedBuffer(sqlparser.FormatImpossibleQuery)
			buf.Myprintf("%v", stmt)
			fieldQuery = buf.ParsedQuery()
		}
		bv := map[string]*querypb.BindVariable{}
		cp, err := s.planFor(stmt, known, bv)
		if err != nil {
			return nil, err
		}
		p.cp, p.fixed = cp, bv
		if cp.lane && cp.needs == nil {
			p.laneText = laneStmtText(&cp.facts, bv, p.params)
		} else {
			p.laneText = namedLaneText(cp, query)
		}
		if fieldQuery != nil {
			fields, err := s.resultFields(ctx, cp, fieldQuery, known)
			if err != nil {
				return nil, err
			}
			p.fields = s.namedFields(cp, fields, query)
		}
	case *sqlparser.OtherAdmin:
		// vitess keeps no text of these (DO 1 prints as otheradmin): they
		// run as the client wrote them, parameters and all (DO @a := ?).
		p.pq, p.params = textParams(text)
	case *sqlparser.Load:
		// vitess keeps no text of LOAD DATA (an empty node): it runs as the
		// client wrote it.
		p.pq = &sqlparser.ParsedQuery{Query: text}
	default:
		p.pq = sqlparser.NewParsedQuery(stmt)
	}
	return s.register(id, p), nil
}

// register keeps a prepared statement under the listener's id.
func (s *Session) register(id uint32, p *prepared) *prepared {
	if s.prepared == nil {
		s.prepared = map[uint32]*prepared{}
	}
	s.sweepPrepared()
	p.call = isCall(p.query)
	s.prepared[id] = p
	return p
}

// namedFields are fields, the columns of cp's statement, named as the
// client's text query names them, as its executes name them (see
// engine.ColumnNames): the shard saw the statement re-formatted
// ("sum(u)" for "SUM(u)"). fields, cached in the plan that every spelling
// of the statement shares, are not changed.
func (s *Session) namedFields(cp *cachedPlan, fields []*querypb.Field, query string) []*querypb.Field {
	if !cp.facts.NeedsText || len(fields) != len(cp.facts.FromText) {
		return fields
	}
	texts := engine.SelectItemTexts(s.srv.parser, query)
	if len(texts) != len(fields) {
		return fields
	}
	out := fields
	for i, fromText := range cp.facts.FromText {
		if !fromText || texts[i] == "" || fields[i].Name == texts[i] {
			continue
		}
		if &out[0] == &fields[0] {
			out = append([]*querypb.Field(nil), fields...)
		}
		f := fields[i].CloneVT()
		f.Name = texts[i]
		out[i] = f
	}
	return out
}

// resultFields finds the columns a prepared SELECT returns: the prepare
// response carries them, and clients (libmariadb: sysbench, the mariadb
// client) read the result only when the statement announced columns. They
// come from the statement with an impossible WHERE on the database's home
// shard, once per plan.
func (s *Session) resultFields(ctx context.Context, cp *cachedPlan, fq *sqlparser.ParsedQuery, known sqlparser.BindVars) ([]*querypb.Field, error) {
	if f := cp.fields.Load(); f != nil {
		return *f, nil
	}
	bv := make(map[string]*querypb.BindVariable, len(known))
	for name := range known {
		bv[name] = sqltypes.NullBindVariable
	}
	sql, err := fq.GenerateQuery(bv, nil)
	if err != nil {
		return nil, nil
	}
	res, err := s.onShard(ctx, s.srv.homeShardOf(s.DB), sql)
	if err != nil {
		switch mysqlerr.From(err).Number() {
		case sqlerror.ERBadFieldError, sqlerror.ERNoSuchTable, sqlerror.ERNonUniq:
			// The statement names what is not there: MariaDB refuses it
			// at prepare.
			return nil, err
		}
		// The client learns the columns from the result instead.
		s.srv.log.Debug("shardproxy: prepare: no result columns", "query", sql, "err", err)
		return nil, nil
	}
	fields := res.Fields
	cp.fields.Store(&fields)
	return fields, nil
}

// cloneFields copies result columns for a writer that modifies them.
func cloneFields(fs []*querypb.Field) []*querypb.Field {
	if fs == nil {
		return nil
	}
	out := make([]*querypb.Field, len(fs))
	for i, f := range fs {
		out[i] = f.CloneVT()
	}
	return out
}

// sweepPrepared forgets statements the client closed: COM_STMT_CLOSE is
// handled by the listener, which drops them from its own table only.
func (s *Session) sweepPrepared() {
	if s.Conn == nil || len(s.prepared) <= len(s.Conn.PrepareData)+16 {
		return
	}
	for id := range s.prepared {
		if _, ok := s.Conn.PrepareData[id]; !ok {
			delete(s.prepared, id)
		}
	}
}

func (s *Session) executePrepared(ctx context.Context, prep *mysql.PrepareData) (*sqltypes.Result, error) {
	if len(s.cursors) > 0 {
		// Executing a statement closes its cursor, as on MariaDB.
		s.CloseCursor(prep.StatementID)
	}
	start := time.Now()
	s.Running(prep.PrepareStmt, start)
	kind, res, err := s.runPreparedSafe(ctx, prep)
	if err != nil {
		err = s.KilledErr(err) // as execute does
		s.RecordError(err)
	}
	s.finish(kind, prep.PrepareStmt, start, err)
	return res, err
}

func (s *Session) runPreparedSafe(ctx context.Context, prep *mysql.PrepareData) (kind stmtKind, res *sqltypes.Result, err error) {
	kind = kindOther // what a statement that panicked counts as
	defer s.srv.guard(s.ID, "prepared statement", prep.PrepareStmt, &err)
	return s.runPrepared(ctx, prep)
}

func (s *Session) runPrepared(ctx context.Context, prep *mysql.PrepareData) (stmtKind, *sqltypes.Result, error) {
	p := s.prepared[prep.StatementID]
	if p == nil || p.query != prep.PrepareStmt {
		var err error
		if p, err = s.prepare(ctx, prep.PrepareStmt, prep.StatementID); err != nil {
			return kindOther, nil, err
		}
	}
	if !typesMatch(p.rawTypes, prep.ParamsType) {
		p.rawTypes = nil // this execute bound types the fast lane did not see
	}
	if len(prep.BindVars) < p.params {
		return p.kind, nil, sqlerror.NewSQLErrorf(sqlerror.ERWrongArguments, sqlerror.SSUnknownSQLState,
			"Incorrect arguments to mysqld_stmt_execute: %d parameters, %d given", p.params, len(prep.BindVars))
	}
	s.ClearWarnings()
	s.Hint.ForcePrimary = p.primaryHint
	if p.cp == nil {
		// Written into the text as the engine writes them: a DOUBLE
		// parameter must not read back as an integer or DECIMAL.
		text, err := p.pq.GenerateQuery(engine.SQLBindVars(prep.BindVars), nil)
		if err != nil {
			return p.kind, nil, err
		}
		kind, res, err := s.dispatch(ctx, text)
		return kind, res, err
	}
	// The listener gives every execution a fresh map of the client's
	// parameters: add the statement's own bind variables to it.
	bv := prep.BindVars
	if bv == nil {
		bv = make(map[string]*querypb.BindVariable, len(p.fixed)+2)
	}
	for k, v := range p.fixed {
		bv[k] = v
	}
	res, err := s.execPlan(ctx, p.cp, bv, p.query)
	return p.kind, res, err
}

// trimTerminator drops the ';' that ends a statement and the comments and
// spaces after it (sqlx sends `INSERT … ;--`): MariaDB prepares the
// statement before it, vitess's parser would read a second statement.
func trimTerminator(sql string) string {
	if strings.IndexByte(sql, ';') < 0 {
		return sql
	}
	toks := sqlmode.Tokens(sql, 0)
	k := len(toks)
	for k > 0 && toks[k-1].Kind == sqlmode.Punct && sql[toks[k-1].Pos] == ';' {
		k--
	}
	if k == len(toks) || k == 0 {
		return sql
	}
	return strings.TrimRight(sql[:toks[k].Pos], " \t\r\n")
}
