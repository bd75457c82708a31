package executor

import (
	"context"
	"strings"

	"vitess.io/vitess/go/mysql"
	"vitess.io/vitess/go/sqltypes"
	"vitess.io/vitess/go/vt/sqlparser"

	"github.com/strata-db/strata/shardproxy/engine"
	"github.com/strata-db/strata/shardproxy/mysqlerr"
	"github.com/strata-db/strata/shardproxy/session"
	"github.com/strata-db/strata/shardproxy/sqlmode"
)

// passRaw runs a statement that the proxy does not plan (vitess's parser
// does not read it, or the planner refuses it) on the shard of the
// session's unsharded database, as the client wrote it, and answers with
// the server's answer: an unsharded database is one MariaDB database.
//
// It is decided by the text: the session's database is unsharded, and no
// name that qualifies another (x in x.y) is a database of the proxy that
// lives on other shards. Statements that leave state on their connection
// (PREPARE, EXECUTE, HANDLER, XA) keep it for the session (reserve.go).
// The user variables the statement names travel with it (session.RawVars),
// and a CALL's every result comes back (session.WantAll).
//
// ok is false when the statement cannot be passed: the caller answers.
func (s *Session) passRaw(ctx context.Context, sql string) (res *sqltypes.Result, err error, ok bool) {
	d := s.srv.vs.Databases[s.DB]
	if d == nil || d.Sharded {
		return nil, nil, false
	}
	for _, q := range sqlmode.Qualifiers(sql, 0) {
		od := s.srv.vs.Databases[q]
		if od != nil && q != s.DB && (od.Sharded || od.Shard != d.Shard) {
			return nil, mysqlerr.NotSupported("a statement the proxy does not plan that names database %s, which lives on other shards (only statements on the unsharded database %s pass through unplanned)", q, s.DB), true
		}
	}
	verb := sqlmode.Verb(sql, 0)
	switch verb {
	case "CREATE", "DROP", "ALTER", "RENAME", "TRUNCATE", "GRANT", "REVOKE":
		if err := s.implicitCommit(); err != nil {
			return nil, err, true
		}
	case "PREPARE", "HANDLER", "XA", "EXECUTE", "DEALLOCATE":
		s.Reserving = verb
		defer func() { s.Reserving = "" }()
	case "CALL":
		s.WantAll = true
		defer func() { s.WantAll = false }()
	}
	if (verb == "LOAD" && isLocalLoad(sql)) || (verb == "SET" && isLocalLoad(setStatementBody(sql))) {
		// LOAD XML LOCAL, SET STATEMENT ... FOR LOAD DATA LOCAL: the file
		// is relayed.
		done, err := s.relayInfile()
		if err != nil {
			return nil, err, true
		}
		defer done()
	}
	if reads, sets := userVars(sql); len(reads) > 0 {
		s.Raw = &session.RawVars{Reads: reads, Sets: sets}
		defer func() { s.Raw = nil }()
	}
	out, err := s.ExecuteShards(ctx, []engine.ShardQuery{{Shard: d.Shard, SQL: sql}})
	if err != nil {
		return nil, err, true
	}
	s.RowCount = int64(out[0].RowsAffected)
	if out[0].InsertID != 0 {
		s.LastInsertID = out[0].InsertID
	}
	return out[0], nil, true
}

// rawable: a statement the proxy refuses may pass through unplanned
// (passRaw) unless its meaning is the proxy's own: session and transaction
// state, databases, locks, KILL, LOAD DATA LOCAL (whose file the client
// holds).
func rawable(stmt sqlparser.Statement) bool {
	switch st := stmt.(type) {
	case *sqlparser.Set:
		// Only user variables (SET @a = @b := 1): the server computes
		// them, and the session reads them back.
		for _, e := range st.Exprs {
			if e.Var.Scope != sqlparser.VariableScope {
				return false
			}
		}
		return true
	case *sqlparser.Use, *sqlparser.Begin, *sqlparser.Commit, *sqlparser.Rollback,
		*sqlparser.Savepoint, *sqlparser.SRollback, *sqlparser.Release, *sqlparser.Kill,
		*sqlparser.LockTables, *sqlparser.UnlockTables, *sqlparser.CreateDatabase, *sqlparser.DropDatabase,
		*sqlparser.AlterDatabase:
		return false
	case *sqlparser.Load:
		return !strings.Contains(strings.ToUpper(sqlparser.String(st)), "LOCAL")
	}
	return true
}

// userVars lists the user variables a statement names (@v), lower-cased,
// and those it may assign (@v :=, SET @v =, SELECT … INTO @v, CALL p(@v)).
func userVars(sql string) (reads, sets []string) {
	toks := sqlmode.Tokens(sql, 0)
	seen := map[string]bool{}
	// CALL may assign any variable it names (OUT and INOUT parameters).
	into := len(toks) > 0 && strings.EqualFold(toks[0].Text(sql), "CALL")
	set := len(toks) > 0 && strings.EqualFold(toks[0].Text(sql), "SET")
	for i, t := range toks {
		txt := t.Text(sql)
		if t.Kind == sqlmode.Word && strings.EqualFold(txt, "INTO") {
			into = true
		}
		if t.Kind != sqlmode.Word || len(txt) < 2 || txt[0] != '@' || txt[1] == '@' {
			continue
		}
		name := strings.ToLower(strings.Trim(txt[1:], "`'\""))
		if !seen[name] {
			seen[name] = true
			reads = append(reads, name)
		}
		next := ""
		if i+1 < len(toks) {
			next = toks[i+1].Text(sql)
		}
		if into || next == ":=" || set && next == "=" {
			sets = append(sets, name)
		}
	}
	return reads, sets
}

// hasParams reports whether a statement has a ? parameter.
func hasParams(sql string) bool {
	for _, t := range sqlmode.Tokens(sql, 0) {
		if t.Kind == sqlmode.Punct && sql[t.Pos] == '?' {
			return true
		}
	}
	return false
}

// sendAll sends a statement's first result and the results it gave after
// it (a CALL's), then the error that ended them, if any. more says whether
// another statement of the client's text follows.
func sendAll(ss *Session, first *sqltypes.Result, more bool, callback func(qr sqltypes.QueryResponse, more bool, firstPacket bool) error) error {
	extra, xerr := ss.TakeExtra()
	results := append([]*sqltypes.Result{first}, extra...)
	for i, r := range results {
		last := i == len(results)-1 && xerr == nil
		if err := ss.withInfo(r, func() error {
			if len(r.Fields) == 0 || (last && !more) {
				return callback(sqltypes.QueryResponse{QueryResult: r}, !last || more, true)
			}
			// A result set with more after it: the EOF after its columns
			// says so too, as MariaDB's does (the listener writes it with
			// the connection's flags).
			c := ss.Conn
			status := c.StatusFlags
			c.StatusFlags |= mysql.ServerMoreResultsExists
			err := callback(sqltypes.QueryResponse{QueryResult: r}, true, true)
			c.StatusFlags = status
			return err
		}); err != nil {
			return err
		}
	}
	if r := results[len(results)-1]; more && xerr == nil && len(r.Fields) > 0 {
		// The listener ends this result set when the next statement's
		// answer comes, with the warning count it asks for then: this
		// statement's.
		ss.endWarnings, ss.endPending = ss.WarningCount(), true
	}
	if xerr != nil {
		return callback(sqltypes.QueryResponse{QueryError: mysqlerr.From(xerr)}, false, true)
	}
	return nil
}

// mariadbVerbs are the first words of MariaDB statements vitess's parser
// may not read: a prepared statement that starts otherwise and does not
// parse is refused at prepare, as MariaDB refuses it ("invalid sql").
var mariadbVerbs = map[string]bool{
	"CREATE": true, "DROP": true, "ALTER": true, "CALL": true, "DO": true, "HANDLER": true,
	"XA": true, "SET": true, "BEGIN": true, "COMMIT": true, "ROLLBACK": true, "RENAME": true,
	"TRUNCATE": true, "GRANT": true, "REVOKE": true, "SHOW": true, "SIGNAL": true,
	"RESIGNAL": true, "GET": true, "ANALYZE": true, "OPTIMIZE": true, "CHECK": true,
	"REPAIR": true, "FLUSH": true, "SELECT": true, "WITH": true, "VALUES": true, "TABLE": true,
}

// bigText is the size from which a statement in an unsharded database
// goes to its shard as the client wrote it (passBig).
const bigText = 1 << 20

// passBig passes a large statement of an unsharded database through as
// the client wrote it: planned, its text would come out of the parser
// rewritten (SELECT 1 becomes select 1 from dual), maybe longer than
// max_allowed_packet, which the client's text fits. ok is false when the
// statement is not one of those (the caller plans it).
func (s *Session) passBig(ctx context.Context, sql string) (res *sqltypes.Result, err error, ok bool) {
	if d := s.srv.vs.Databases[s.DB]; d == nil || d.Sharded {
		return nil, nil, false
	}
	switch sqlmode.Verb(sql, 0) {
	case "SELECT", "INSERT", "REPLACE", "UPDATE", "DELETE", "WITH", "VALUES", "CALL", "DO":
		s.ClearWarnings()
		return s.passRaw(ctx, sql)
	}
	return nil, nil, false
}
