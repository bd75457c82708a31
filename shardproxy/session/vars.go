package session

import (
	"context"
	"math"
	"strconv"
	"strings"

	"github.com/strata-db/strata/shardproxy/backend"
	"github.com/strata-db/strata/shardproxy/mysqlerr"
	"github.com/strata-db/strata/shardproxy/sqlmode"
	"vitess.io/vitess/go/mysql/sqlerror"
	"vitess.io/vitess/go/sqltypes"
)

// Vars are the session settings the proxy keeps itself rather than in
// the backend.State every connection of the session carries: they apply to
// one transaction or one statement, or to the merged result, not to each
// backend connection.
type Vars struct {
	// The next transaction's characteristics (SET TRANSACTION without
	// SESSION): SQL words, "" when not set.
	NextIso, NextRO string
	// sql_select_limit bounds the rows of a top-level SELECT without its
	// own LIMIT. The proxy applies it to the merged result: sent to the
	// shards, a scatter would return it once per shard.
	HasSelectLimit bool
	SelectLimit    uint64
	// insertIDs numbers SET insert_id assignments, so that each is a new
	// State (see setInsertID).
	InsertIDs uint64
	// calc collects FOUND_ROWS() from the shard while a SELECT
	// SQL_CALC_FOUND_ROWS runs (nil otherwise).
	Calc *CalcFound
	// Mode is how the session's sql_mode reads statements (package
	// sqlmode): the executor rewrites what the client sends into the
	// default mode's text before it parses it, and ExecOn what it sends a
	// shard back into the session's.
	Mode sqlmode.Mode
	// Completion is the session's completion_type: what a COMMIT or
	// ROLLBACK that does not say AND [NO] CHAIN / [NO] RELEASE does. The
	// proxy applies it to the client's statements; its own COMMITs and
	// ROLLBACKs on the shards say AND NO CHAIN NO RELEASE (EndSQL), since
	// the variable reaches the shards' connections too.
	Completion Completion
}

// Completion is a completion_type value.
type Completion int

const (
	NoChain Completion = iota
	Chain
	Release
)

// ParseCompletion reads a completion_type value as the server took it
// (a number or a name, perhaps quoted); anything else is NoChain.
func ParseCompletion(v string) Completion {
	switch strings.ToUpper(strings.Trim(v, "'\"` ")) {
	case "1", "CHAIN":
		return Chain
	case "2", "RELEASE":
		return Release
	}
	return NoChain
}

// EndSQL is the statement that ends a shard connection's transaction
// (commit or roll back) whatever its completion_type: it never begins
// another one or closes the connection.
func EndSQL(commit bool) string {
	if commit {
		return "COMMIT AND NO CHAIN NO RELEASE"
	}
	return "ROLLBACK AND NO CHAIN NO RELEASE"
}

// CalcFound is what the shard's connection answered to SELECT FOUND_ROWS()
// right after the statement.
type CalcFound struct {
	queries int    // shard queries the statement ran
	got     int    // FOUND_ROWS() answers collected
	rows    uint64 // their sum
	err     error
}

// nextTxSQL is the SET TRANSACTION that gives the next transaction its
// characteristics, "" when none are pending.
func (sv *Vars) NextTxSQL() string {
	switch {
	case sv.NextIso != "" && sv.NextRO != "":
		return "SET TRANSACTION " + sv.NextIso + ", " + sv.NextRO
	case sv.NextIso != "":
		return "SET TRANSACTION " + sv.NextIso
	case sv.NextRO != "":
		return "SET TRANSACTION " + sv.NextRO
	}
	return ""
}

// beginSQL is what opens the session's transaction on its connection:
// begin, after the pending characteristics, which it uses up.
func (sv *Vars) BeginSQL(begin string) string {
	nx := sv.NextTxSQL()
	if nx == "" {
		return begin
	}
	sv.NextIso, sv.NextRO = "", ""
	return nx + ";" + begin
}

// endTx: a transaction's end uses up the characteristics SET TRANSACTION
// gave it, as on the server, even when nothing reached a shard.
func (sv *Vars) EndTx() { sv.NextIso, sv.NextRO = "", "" }

// laneOff: statements of a session with these settings need the ordinary
// path (execPlan applies them); the fast lane sends the shard's answer as it is.
// (calc is set only while execPlan runs a statement, never when the lane
// is asked; a SELECT SQL_CALC_FOUND_ROWS is kept off it by its plan.)
func (sv *Vars) LaneOff() bool {
	return sv.HasSelectLimit || sv.NextIso != "" || sv.NextRO != "" || sv.Mode != 0
}

// selectLimitValue answers @@sql_select_limit.
func (sv *Vars) SelectLimitValue() *sqltypes.Value {
	v := sqltypes.NewUint64(math.MaxUint64)
	if sv.HasSelectLimit {
		v = sqltypes.NewUint64(sv.SelectLimit)
	}
	return &v
}

// foundRowsAfter runs on the connection that just ran a shard query of a
// SELECT SQL_CALC_FOUND_ROWS: FOUND_ROWS() is the connection's, so it is
// asked there before the connection serves anything else.
func (s *Session) foundRowsAfter(conn *backend.Conn) {
	c := s.Vars.Calc
	if c == nil {
		return
	}
	res, _, err := conn.Exec(context.Background(), "SELECT FOUND_ROWS()", backend.ExecOptions{State: conn.State(), Timeout: s.sh.QueryTimeout})
	if err == nil && (len(res.Rows) != 1 || len(res.Rows[0]) != 1) {
		err = sqlerror.NewSQLError(sqlerror.ERUnknownError, sqlerror.SSUnknownSQLState, "FOUND_ROWS() gave no row")
	}
	var n uint64
	if err == nil {
		n, err = strconv.ParseUint(res.Rows[0][0].ToString(), 10, 64)
	}
	if err != nil {
		c.err = err
		return
	}
	c.got++
	c.rows += n
}

// calcShards counts the shard queries of a SELECT SQL_CALC_FOUND_ROWS. One
// shard's FOUND_ROWS() is the answer; over several, per-shard counts add up
// only when no row, group or aggregate spans shards, which the planner
// refuses anyway.
func (s *Session) calcShards(n int) error {
	c := s.Vars.Calc
	if c == nil {
		return nil
	}
	c.queries += n
	if c.queries > 1 {
		return mysqlerr.NotSupported("SQL_CALC_FOUND_ROWS with a statement that runs more than one query on the shards")
	}
	return nil
}

// result is FOUND_ROWS() after a SELECT SQL_CALC_FOUND_ROWS, or the
// error that says why the proxy does not know it.
func (c *CalcFound) Result() (uint64, error) {
	if c.err != nil {
		return 0, c.err
	}
	if c.got != c.queries {
		// A path to the shard that did not ask (foundRowsAfter): no count
		// rather than a wrong one.
		return 0, mysqlerr.NotSupported("SQL_CALC_FOUND_ROWS here: the shard's FOUND_ROWS() was not collected")
	}
	return c.rows, nil
}
