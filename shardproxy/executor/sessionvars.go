package executor

import (
	"context"
	"math"
	"regexp"
	"strconv"
	"strings"

	"vitess.io/vitess/go/mysql/sqlerror"
	"vitess.io/vitess/go/sqltypes"
	"vitess.io/vitess/go/vt/sqlparser"

	"github.com/strata-db/strata/shardproxy/backend"
	"github.com/strata-db/strata/shardproxy/mysqlerr"
	"github.com/strata-db/strata/shardproxy/session"
)

// MariaDB 10.11 names them tx_isolation and tx_read_only
// (transaction_isolation and transaction_read_only only from 11.1); the
// parser names SET TRANSACTION's the MySQL 8 way.
var txVarNames = map[string]string{
	"transaction_isolation": "tx_isolation", "tx_isolation": "tx_isolation",
	"transaction_read_only": "tx_read_only", "tx_read_only": "tx_read_only",
}

// nextTxVarRE finds @@tx_isolation / @@tx_read_only without a scope: MariaDB
// gives them next-transaction scope, as SET TRANSACTION without SESSION.
var nextTxVarRE = regexp.MustCompile(`(?i)@@(tx_isolation|tx_read_only|transaction_isolation|transaction_read_only)\b`)

var isoLevels = map[string]string{
	"READ-UNCOMMITTED": "READ UNCOMMITTED", "READ-COMMITTED": "READ COMMITTED",
	"REPEATABLE-READ": "REPEATABLE READ", "SERIALIZABLE": "SERIALIZABLE",
	"0": "READ UNCOMMITTED", "1": "READ COMMITTED", "2": "REPEATABLE READ", "3": "SERIALIZABLE",
}

// setTxVar handles one transaction characteristic of a SET: in session
// scope it becomes part of the state (under MariaDB's name); in
// next-transaction scope it waits in sv for the next transaction.
func (s *Session) setTxVar(ctx context.Context, sql string, v *sqlparser.Variable, expr sqlparser.Expr, state *backend.State, sv *session.Vars) (*backend.State, error) {
	name := txVarNames[strings.ToLower(v.Name.String())]
	next := v.Scope == sqlparser.NextTxScope
	if v.Scope == sqlparser.SessionScope {
		for _, m := range nextTxVarRE.FindAllStringSubmatch(sql, -1) {
			next = next || strings.EqualFold(m[1], v.Name.String())
		}
	}
	if _, isDefault := expr.(*sqlparser.Default); isDefault {
		if next {
			sv.NextIso, sv.NextRO = "", ""
			return state, nil
		}
		return s.srv.cluster.States.With(state, name, ""), nil
	}
	var words, assign string
	if name == "tx_isolation" {
		str, err := s.stringValue(ctx, expr)
		if err != nil {
			return nil, err
		}
		w, ok := isoLevels[strings.ReplaceAll(strings.ToUpper(strings.TrimSpace(str)), " ", "-")]
		if !ok {
			return nil, sqlerror.NewSQLErrorf(sqlerror.ERWrongValueForVar, sqlerror.SSClientError, "Variable '%s' can't be set to the value of '%s'", name, str)
		}
		words = "ISOLATION LEVEL " + w
		assign = "@@session.tx_isolation = '" + strings.ReplaceAll(w, " ", "-") + "'"
	} else {
		on, err := s.boolValue(ctx, name, expr)
		if err != nil {
			return nil, err
		}
		words, assign = "READ WRITE", "@@session.tx_read_only = 0"
		if on {
			words, assign = "READ ONLY", "@@session.tx_read_only = 1"
		}
	}
	if !next {
		return s.srv.cluster.States.With(state, name, assign), nil
	}
	if s.ExplicitTx || s.Tx != nil {
		return nil, sqlerror.NewSQLError(mysqlerr.ERCantChangeTxCharacteristics, mysqlerr.SSActiveTransaction, "Transaction characteristics can't be changed while a transaction is in progress")
	}
	if name == "tx_isolation" {
		sv.NextIso = words
	} else {
		sv.NextRO = words
	}
	return state, nil
}

// stringValue is the value of a SET as a string: a bare word as written.
func (s *Session) stringValue(ctx context.Context, expr sqlparser.Expr) (string, error) {
	switch e := expr.(type) {
	case *sqlparser.ColName:
		return e.Name.String(), nil
	case *sqlparser.Literal:
		return e.Val, nil
	}
	bv, err := s.evalExpr(ctx, expr)
	if err != nil {
		return "", err
	}
	return string(bv.Value), nil
}

// autocommitStmt applies pending next-transaction characteristics to a
// statement that is a transaction of its own (autocommit, no BEGIN): a write
// is refused under READ ONLY, as the server refuses it, and the
// characteristics stay for the next one; a statement on a table uses them
// up. (The isolation level of such a statement is the session's: one
// statement alone sees no difference but in locking.)
func (s *Session) autocommitStmt(cp *cachedPlan) error {
	sv := &s.Vars
	if sv.NextIso == "" && sv.NextRO == "" || s.InTx() {
		return nil
	}
	switch cp.kind {
	case kindInsert, kindUpdate, kindDelete:
		if sv.NextRO == "READ ONLY" {
			return sqlerror.NewSQLError(mysqlerr.ERCantExecuteInReadOnlyTransaction, mysqlerr.SSReadOnlyTransaction, "Cannot execute statement in a READ ONLY transaction")
		}
	case kindSelect, kindDDL:
	default:
		return nil
	}
	if cp.facts.NoTable {
		return nil // no transaction on the server
	}
	sv.NextIso, sv.NextRO = "", ""
	return nil
}

// setSelectLimit parses SET sql_select_limit's value into sv.
func (s *Session) setSelectLimit(ctx context.Context, expr sqlparser.Expr, sv *session.Vars) error {
	if _, isDefault := expr.(*sqlparser.Default); isDefault {
		sv.HasSelectLimit, sv.SelectLimit = false, 0
		return nil
	}
	str, err := s.stringValue(ctx, expr)
	if err != nil {
		return err
	}
	if strings.HasPrefix(str, "-") {
		if _, err := strconv.ParseInt(str, 10, 64); err == nil {
			str = "0" // MySQL takes a negative limit as 0
		}
	}
	n, err := strconv.ParseUint(str, 10, 64)
	if err != nil {
		return sqlerror.NewSQLErrorf(sqlerror.ERWrongTypeForVar, sqlerror.SSClientError, "Incorrect argument type to variable 'sql_select_limit'")
	}
	sv.HasSelectLimit, sv.SelectLimit = n != math.MaxUint64, n
	return nil
}

// applySelectLimit cuts a top-level SELECT's result to sql_select_limit
// when the statement has no LIMIT of its own.
func applySelectLimit(sv *session.Vars, cp *cachedPlan, res *sqltypes.Result) *sqltypes.Result {
	if !sv.HasSelectLimit || cp.kind != kindSelect || cp.facts.HasLimit || uint64(len(res.Rows)) <= sv.SelectLimit {
		return res
	}
	out := *res
	out.Rows = res.Rows[:sv.SelectLimit]
	return &out
}

// setInsertID: SET insert_id is a one-shot on the server (the next INSERT
// that generates an AUTO_INCREMENT value uses it up), so it is part of the
// state only until such an INSERT succeeds (insertIDUsed). Each SET makes a
// State of its own (numbered in a comment): a connection that used one up
// must not take a later SET of the same value for one it already carries.
func (s *Session) setInsertID(ctx context.Context, expr sqlparser.Expr, state *backend.State, sv *session.Vars) (*backend.State, error) {
	if _, isDefault := expr.(*sqlparser.Default); isDefault {
		return s.srv.cluster.States.With(state, "insert_id", ""), nil
	}
	val, err := s.valueSQL(ctx, expr)
	if err != nil {
		return nil, err
	}
	sv.InsertIDs++
	return s.srv.cluster.States.With(state, "insert_id",
		"@@session.insert_id = "+val+" /* strata "+strconv.FormatUint(uint64(s.ID), 10)+"."+strconv.FormatUint(sv.InsertIDs, 10)+" */"), nil
}

// insertIDUsed drops a pending insert_id once an INSERT generated a value.
func (s *Session) insertIDUsed(cp *cachedPlan, res *sqltypes.Result) {
	if cp.kind != kindInsert || res.InsertID == 0 {
		return
	}
	if _, ok := s.State.Get("insert_id"); ok {
		s.State = s.srv.cluster.States.With(s.State, "insert_id", "")
	}
}

// lastIDFrom sets LAST_INSERT_ID from the select-list item
// LAST_INSERT_ID(expr): the server set it to expr of the last row.
func (s *Session) lastIDFrom(cp *cachedPlan, res *sqltypes.Result) {
	col := cp.facts.LastInsertIDCol
	if col == 0 || len(res.Rows) == 0 {
		return
	}
	row := res.Rows[len(res.Rows)-1]
	if col > len(row) || row[col-1].IsNull() {
		return
	}
	str := row[col-1].ToString()
	if u, err := strconv.ParseUint(str, 10, 64); err == nil {
		s.LastInsertID = u
	} else if n, err := strconv.ParseInt(str, 10, 64); err == nil {
		s.LastInsertID = uint64(n)
	}
}

// namedLaneText is the statement the fast lane prepares on the shard for a
// prepared passthrough whose columns are named after the client's text: the
// client's text itself, which the shard answers whole (a passthrough sends
// the statement as it is but for the formatting of the normalized one). So
// the shard names the columns, and types the parameters' expressions, as a
// server does for the client's own statement. "" when the statement needs
// the ordinary path.
func namedLaneText(cp *cachedPlan, query string) string {
	if f := &cp.facts; !f.NeedsText || !f.Passthrough || !cp.plainSelect() || cp.needs != nil {
		return ""
	}
	return query
}
