package executor

import (
	"context"
	"regexp"
	"strings"

	"vitess.io/vitess/go/mysql/sqlerror"
	"vitess.io/vitess/go/sqltypes"
	querypb "vitess.io/vitess/go/vt/proto/query"
	"vitess.io/vitess/go/vt/sqlparser"

	"github.com/strata-db/strata/shardproxy/backend"
	"github.com/strata-db/strata/shardproxy/mysqlerr"
	"github.com/strata-db/strata/shardproxy/session"
	"github.com/strata-db/strata/shardproxy/sqlmode"
)

// set runs SET. Session system variables become part of the session's
// backend.State, applied to whichever backend connection serves the session
// (and checked on one now, so that a bad name or value fails here with the
// server's error). User variables stay in the proxy and reach statements as
// bind variables. autocommit is the proxy's own. Nothing changes unless the
// whole SET succeeds.
func (s *Session) set(ctx context.Context, sql string, st *sqlparser.Set) (*sqltypes.Result, error) {
	state := s.State
	autocommit := s.Autocommit
	sv := s.Vars
	udv := map[string]*querypb.BindVariable{}
	for _, e := range st.Exprs {
		v := e.Var
		if v.Scope == sqlparser.GlobalScope || v.Scope == sqlparser.PersistSysScope || v.Scope == sqlparser.PersistOnlySysScope {
			return nil, sqlerror.NewSQLErrorf(sqlerror.ERSpecifiedAccessDenied, sqlerror.SSClientError,
				"Access denied; SET GLOBAL/PERSIST of %s is not allowed through the proxy: set it on every server", v.Name.String())
		}
		if v.Scope == sqlparser.VariableScope {
			val, err := s.evalExpr(ctx, e.Expr)
			if err != nil {
				return nil, err
			}
			udv[strings.ToLower(v.Name.CompliantName())] = val
			continue
		}
		name := strings.ToLower(v.Name.String())
		switch name {
		case "autocommit":
			on, err := s.boolValue(ctx, name, e.Expr)
			if err != nil {
				return nil, err
			}
			autocommit = on
		case "strata_read_consistency":
			// The proxy's own (read/write splitting), never sent to a server.
			if err := s.setReadConsistency(ctx, e.Expr); err != nil {
				return nil, err
			}
		case "transaction_isolation", "tx_isolation", "transaction_read_only", "tx_read_only":
			next, err := s.setTxVar(ctx, sql, v, e.Expr, state, &sv)
			if err != nil {
				return nil, err
			}
			state = next
		case "sql_select_limit":
			// The proxy's: applied to the merged result (sessionvars.go).
			if err := s.setSelectLimit(ctx, e.Expr, &sv); err != nil {
				return nil, err
			}
		case "insert_id":
			next, err := s.setInsertID(ctx, e.Expr, state, &sv)
			if err != nil {
				return nil, err
			}
			state = next
		case "names", "charset":
			assign, err := namesAssign(sql, name, e.Expr)
			if err != nil {
				return nil, err
			}
			state = s.srv.cluster.States.With(state, backend.NamesVar, assign)
		default:
			if _, isDefault := e.Expr.(*sqlparser.Default); isDefault {
				// Back to the server's default: drop it from the state, and
				// every connection that carries it resets it.
				state = s.srv.cluster.States.With(state, name, "")
				switch name {
				case "sql_mode":
					sv.Mode = 0
				case "completion_type":
					sv.Completion = session.NoChain
				}
				continue
			}
			val, err := s.valueSQL(ctx, e.Expr)
			if err != nil {
				return nil, err
			}
			switch name {
			case "sql_mode":
				// How the session's statements are read from now on.
				sv.Mode = sqlmode.Parse(strings.Trim(val, "'"))
			case "completion_type":
				// What the client's COMMIT and ROLLBACK do (chain.go); the
				// server checks the value, and answers @@completion_type.
				sv.Completion = session.ParseCompletion(val)
			}
			state = s.srv.cluster.States.With(state, name, "@@session."+name+" = "+val)
		}
	}
	if state != s.State {
		if err := s.applyState(ctx, state); err != nil {
			return nil, err
		}
	}
	s.Vars = sv
	for k, v := range udv {
		if s.UDV == nil {
			s.UDV = map[string]*querypb.BindVariable{}
		}
		s.UDV[k] = v
	}
	if autocommit && !s.Autocommit {
		// Turning autocommit on commits the open transaction.
		s.Autocommit = true
		if err := s.endTx(true); err != nil {
			return nil, err
		}
	}
	s.Autocommit = autocommit
	return okResult, nil
}

// applyState sends the new state to a connection (the transaction's, or one
// of the home shard's primary) with a no-op statement, so that the server
// checks it; on success it becomes the session's.
func (s *Session) applyState(ctx context.Context, state *backend.State) error {
	if s.Tx != nil {
		if _, _, err := s.Tx.Exec(ctx, "DO 0", backend.ExecOptions{DB: s.DBOn(s.TxShard), State: state, Timeout: s.srv.cfg.QueryTimeout}); err != nil {
			return err
		}
		s.State = state
		return nil
	}
	shard := s.srv.homeShardOf(s.DB)
	t, err := s.srv.cluster.Route(ctx, shard, false, &s.Hint)
	if err != nil {
		return err
	}
	conn, err := t.Pool.Get(ctx, state)
	if err != nil {
		return err
	}
	_, _, err = conn.Exec(ctx, "DO 0", backend.ExecOptions{DB: s.DBOn(shard), State: state, Timeout: s.srv.cfg.QueryTimeout})
	t.Pool.Put(conn)
	if t.Done != nil {
		t.Done(err)
	}
	if err != nil {
		return err
	}
	s.State = state
	return nil
}

var namesRE = regexp.MustCompile(`(?is)\b(NAMES|CHARACTER\s+SET|CHARSET)\s+('[^']*'|"[^"]*"|` + "`[^`]*`" + `|[A-Za-z0-9_]+)(\s+COLLATE\s+('[^']*'|"[^"]*"|[A-Za-z0-9_]+))?`)

// namesAssign rebuilds SET NAMES / SET CHARACTER SET from the statement's
// text: the parsed form drops the COLLATE clause.
func namesAssign(sql, name string, expr sqlparser.Expr) (string, error) {
	if _, isDefault := expr.(*sqlparser.Default); isDefault {
		return backend.DefaultNames, nil
	}
	m := namesRE.FindStringSubmatch(sql)
	if m == nil {
		return "", mysqlerr.SyntaxErrorAt(sql, 0)
	}
	cs := strings.Trim(m[2], "'\"`")
	if !identRE.MatchString(cs) {
		return "", sqlerror.NewSQLErrorf(sqlerror.ERUnknownCharacterSet, sqlerror.SSClientError, "Unknown character set: '%s'", cs)
	}
	kw := "NAMES"
	if name == "charset" {
		kw = "CHARACTER SET"
	}
	out := kw + " '" + cs + "'"
	if m[4] != "" {
		coll := strings.Trim(m[4], "'\"")
		if !identRE.MatchString(coll) {
			return "", sqlerror.NewSQLErrorf(sqlerror.ERUnknownCollation, sqlerror.SSUnknownSQLState, "Unknown collation: '%s'", coll)
		}
		out += " COLLATE '" + coll + "'"
	}
	return out, nil
}

var identRE = regexp.MustCompile(`^[A-Za-z0-9_]+$`)

// valueSQL turns the value of a SET into SQL for the backends: literals as
// they are, bare words (SET sql_mode = TRADITIONAL, ON) as strings, and any
// other expression evaluated now (it may read the session's variables).
func (s *Session) valueSQL(ctx context.Context, expr sqlparser.Expr) (string, error) {
	switch e := expr.(type) {
	case *sqlparser.Literal, *sqlparser.NullVal, sqlparser.BoolVal:
		return sqlparser.String(e), nil
	case *sqlparser.ColName:
		if e.Qualifier.IsEmpty() {
			return sqltypes.EncodeStringSQL(e.Name.String()), nil
		}
	}
	bv, err := s.evalExpr(ctx, expr)
	if err != nil {
		return "", err
	}
	v, err := sqltypes.BindVariableToValue(bv)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	v.EncodeSQLStringBuilder(&b)
	return b.String(), nil
}

// evalExpr computes an expression the way the session sees it: literals
// here, anything else as SELECT expr on a backend.
func (s *Session) evalExpr(ctx context.Context, expr sqlparser.Expr) (*querypb.BindVariable, error) {
	switch e := expr.(type) {
	case *sqlparser.NullVal:
		return sqltypes.NullBindVariable, nil
	case *sqlparser.Literal:
		if v, err := sqlparser.LiteralToValue(e); err == nil {
			return sqltypes.ValueBindVariable(v), nil
		}
	case sqlparser.BoolVal:
		return sqltypes.BoolBindVariable(bool(e)), nil
	}
	sel := &sqlparser.Select{
		SelectExprs: &sqlparser.SelectExprs{Exprs: []sqlparser.SelectExpr{&sqlparser.AliasedExpr{Expr: expr}}},
		From:        []sqlparser.TableExpr{&sqlparser.AliasedTableExpr{Expr: sqlparser.TableName{Name: sqlparser.NewIdentifierCS("dual")}}},
	}
	res, err := s.runPlanned(ctx, "", sel, nil)
	if err != nil {
		return nil, err
	}
	if len(res.Rows) != 1 || len(res.Rows[0]) != 1 {
		return nil, sqlerror.NewSQLErrorf(sqlerror.ERSubqueryNo1Row, sqlerror.SSWrongNumberOfColumns, "Subquery returns more than 1 row")
	}
	return sqltypes.ValueBindVariable(res.Rows[0][0]), nil
}

func (s *Session) boolValue(ctx context.Context, name string, expr sqlparser.Expr) (bool, error) {
	var str string
	switch e := expr.(type) {
	case sqlparser.BoolVal:
		return bool(e), nil
	case *sqlparser.ColName:
		str = e.Name.String()
	default:
		bv, err := s.evalExpr(ctx, expr)
		if err != nil {
			return false, err
		}
		str = string(bv.Value)
	}
	switch strings.ToLower(str) {
	case "1", "on", "true":
		return true, nil
	case "0", "off", "false":
		return false, nil
	}
	return false, sqlerror.NewSQLErrorf(sqlerror.ERWrongValueForVar, sqlerror.SSClientError, "Variable '%s' can't be set to the value of '%s'", name, str)
}
