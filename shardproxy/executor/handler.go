package executor

import (
	"context"
	"strings"
	"time"

	"github.com/strata-db/strata/shardproxy/engine"
	"github.com/strata-db/strata/shardproxy/mariadbcoll"
	"github.com/strata-db/strata/shardproxy/mysqlerr"
	"github.com/strata-db/strata/shardproxy/sqlmode"
	"github.com/strata-db/strata/shardproxy/wire"
	"vitess.io/vitess/go/mysql"
	"vitess.io/vitess/go/mysql/replication"
	"vitess.io/vitess/go/mysql/sqlerror"
	"vitess.io/vitess/go/sqltypes"
	querypb "vitess.io/vitess/go/vt/proto/query"
	"vitess.io/vitess/go/vt/vtenv"
)

// The listener calls these methods; for one connection, one at a time.

// Env implements mysql.Handler.
func (s *handler) Env() *vtenv.Environment { return s.env }

// NewConnection implements mysql.Handler: the session exists before the
// handshake because a database named in the handshake arrives as a USE.
func (s *handler) NewConnection(c *mysql.Conn) {
	ss := newSession(s.Executor, c)
	c.ClientData = ss
	c.StatusFlags |= mysql.ServerStatusAutocommit
	if cc, ok := c.GetRawConn().(*wire.Conn); ok {
		cc.SetSession(ss)
	}
	s.mu.Lock()
	s.sessions[c.ConnectionID] = ss
	s.mu.Unlock()
}

// ConnectionReady implements mysql.Handler.
func (s *handler) ConnectionReady(c *mysql.Conn) {
	ss := s.session(c)
	if s.gate.leave(c.ConnectionID) {
		_ = c.GetRawConn().SetReadDeadline(time.Time{})
		if s.clients.Add(1) > int64(s.cfg.MaxClientConnections) {
			// Logged in while the last slots went: as if it had come a
			// moment later.
			s.clients.Add(-1)
			_ = c.GetRawConn().Close()
			return
		}
		ss.counted = true
	}
	ss.SetUser(c.User)
	// A client that announced a character set or collation other than the
	// backends' gets it applied as if it had run SET NAMES.
	if names := s.handshakeNames(c); names != "" {
		ss.HandshakeNames = names
		ss.State = s.cluster.States.With(ss.State, "names", names)
	}
	// From here on the listener reads commands, and the fast lane may take
	// them first.
	if cc, ok := c.GetRawConn().(*wire.Conn); ok && cc.Session() == wire.Session(ss) {
		cc.Ready(c.Capabilities&mysql.CapabilityClientDeprecateEOF != 0)
	}
}

// handshakeNames is the SET NAMES the collation a client announced in its
// handshake amounts to, "" for the backends' own (utf8mb4_general_ci, 45).
// The number is read in MariaDB 10.11's table (package mariadbcoll; MySQL
// numbers some differently): every collation MariaDB keeps is kept. A
// number MariaDB does not know (MySQL 8's utf8mb4_0900_*), or a character
// set no client may use (ucs2, utf16, utf32), leaves the backends' own, as
// MariaDB leaves its default.
func (s *Executor) handshakeNames(c *mysql.Conn) string {
	if c.CharacterSet == 45 {
		return ""
	}
	coll, ok := mariadbcoll.ByID(uint16(c.CharacterSet))
	if !ok || !mariadbcoll.ClientCharset(coll.Charset) || !identRE.MatchString(coll.Name) {
		return ""
	}
	if coll.Default {
		return "NAMES '" + coll.Charset + "'"
	}
	return "NAMES '" + coll.Charset + "' COLLATE '" + coll.Name + "'"
}

// ConnectionClosed implements mysql.Handler.
func (s *handler) ConnectionClosed(c *mysql.Conn) {
	if ss := s.session(c); ss != nil {
		ss.Close()
	}
	s.mu.Lock()
	delete(s.sessions, c.ConnectionID)
	s.mu.Unlock()
	s.gate.leave(c.ConnectionID)
	if ss := s.session(c); ss != nil && ss.counted {
		s.clients.Add(-1)
	}
}

// ComResetConnection implements mysql.Handler: the session starts over
// (transaction rolled back, variables and prepared statements dropped), as
// COM_RESET_CONNECTION does on a server; the current database stays.
func (s *handler) ComResetConnection(c *mysql.Conn) {
	ss := s.session(c)
	ss.reset()
	c.StatusFlags = ss.StatusFlags()
}

// WarningCount implements mysql.Handler.
func (s *handler) WarningCount(c *mysql.Conn) uint16 {
	ss := s.session(c)
	if ss.endPending {
		// The listener ends the previous result set of a multi-statement
		// text (see sendAll).
		ss.endPending = false
		return ss.endWarnings
	}
	return ss.WarningCount()
}

// ComQuery implements mysql.Handler. The listener runs in multi-query
// mode, so this only carries the USE of a database named in the handshake.
func (s *handler) ComQuery(c *mysql.Conn, sql string, callback func(*sqltypes.Result) error) error {
	ss := s.session(c)
	res, err := ss.execute(context.Background(), sql)
	c.StatusFlags = ss.StatusFlags()
	if err != nil {
		return mysqlerr.From(err)
	}
	return callback(res)
}

// ComQueryMulti implements mysql.Handler: one COM_QUERY, which may hold
// several statements when the client enabled multi-statements. Statements
// run in order until one fails.
func (s *handler) ComQueryMulti(c *mysql.Conn, sql string, callback func(qr sqltypes.QueryResponse, more bool, firstPacket bool) error) error {
	ss := s.session(c)
	ctx := context.Background()
	ss.TakeExtra() // nothing a previous command left
	ss.endPending = false
	if m := ss.Vars.Mode; m != 0 {
		// Read as MariaDB reads it under the session's sql_mode: from here
		// on the statement is in the default mode's text.
		sql = sqlmode.Normalize(sql, m).SQL
	}
	if !mayHoldSeveral(sql) {
		res, err := ss.execute(ctx, oneStatement(sql))
		c.StatusFlags = ss.StatusFlags()
		if err != nil && s.commentOnly(sql, err) {
			ss.ClearWarnings()
			res, err = &sqltypes.Result{}, nil
		}
		if err != nil {
			ss.TakeExtra()
			return callback(sqltypes.QueryResponse{QueryError: mysqlerr.From(err)}, false, true)
		}
		return sendAll(ss, res, false, callback)
	}
	compound := sqlmode.HasCompound(sql, 0)
	var pieces []string
	var err error
	if compound {
		// A procedure's body: vitess's splitter would cut it.
		pieces = sqlmode.Split(sql, 0)
	} else {
		pieces, err = s.parser.SplitStatementToPieces(sql)
	}
	if err != nil {
		return callback(sqltypes.QueryResponse{QueryError: mysqlerr.From(mysqlerr.ParseError(sql, err))}, false, true)
	}
	if len(pieces) == 0 {
		if s.commentOnly(sql, errEmpty) {
			return callback(sqltypes.QueryResponse{QueryResult: &sqltypes.Result{}}, false, true)
		}
		return callback(sqltypes.QueryResponse{QueryError: errEmpty}, false, true)
	}
	if len(pieces) > 1 && c.Capabilities&mysql.CapabilityClientMultiStatements == 0 {
		// Without CLIENT_MULTI_STATEMENTS a server sees one statement with
		// junk after it.
		return callback(sqltypes.QueryResponse{QueryError: mysqlerr.From(mysqlerr.SyntaxErrorAt(sql, afterFirstStatement(s.parser, sql)))}, false, true)
	}
	sh := stmtShape{strayAt: -1}
	if c.Capabilities&mysql.CapabilityClientMultiStatements != 0 && !compound {
		sh = scanStatements(s.parser, sql)
	}
	at := 0 // where the next piece is looked for in sql
	for i, q := range pieces {
		if sh.strayAt >= 0 && i == sh.strayAfter {
			return callback(sqltypes.QueryResponse{QueryError: mysqlerr.From(mysqlerr.SyntaxErrorAt(sql, sh.strayAt))}, false, true)
		}
		off := strings.Index(sql[at:], q)
		if off >= 0 {
			off += at
			at = off + len(q)
		}
		ss.laterStmt = i > 0
		res, err := ss.execute(ctx, q)
		ss.laterStmt = false
		c.StatusFlags = ss.StatusFlags()
		if err != nil {
			ss.TakeExtra()
			if !compound {
				err = mysqlerr.SyntaxErrorIn(sql, q, off, err)
			}
			return callback(sqltypes.QueryResponse{QueryError: mysqlerr.From(err)}, false, true)
		}
		if ss.ExtraErr != nil {
			// A CALL that ended in an error ends the text there.
			return sendAll(ss, res, false, callback)
		}
		if err := sendAll(ss, res, i < len(pieces)-1 || sh.trailingComment, callback); err != nil {
			return err
		}
	}
	if sh.trailingComment {
		return callback(sqltypes.QueryResponse{QueryResult: &sqltypes.Result{}}, false, true)
	}
	return nil
}

var errEmpty = sqlerror.NewSQLError(sqlerror.EREmptyQuery, sqlerror.SSClientError, "Query was empty")

// mayHoldSeveral is a cheap test that lets almost every statement skip the
// splitter: a single statement has no ';' before its last non-space byte.
func mayHoldSeveral(sql string) bool {
	i := strings.IndexByte(sql, ';')
	if i < 0 {
		return false
	}
	return strings.TrimRight(sql[i:], "; \t\r\n") != ""
}

// ComPrepare implements mysql.Handler.
func (s *handler) ComPrepare(c *mysql.Conn, query string) (fields []*querypb.Field, params uint16, err error) {
	ss := s.session(c)
	defer s.guard(ss.ID, "prepare", query, &err)
	// The listener numbers the statement after this returns.
	p, perr := ss.prepare(context.Background(), query, c.StatementID+1)
	if perr != nil {
		return nil, 0, mysqlerr.From(perr)
	}
	// vitess writes the columns of a prepare response by rewriting them
	// (writePrepare renames '?' to ?): it gets its own copy of the plan's,
	// which every session preparing the statement shares.
	return cloneFields(p.fields), uint16(p.params), nil
}

// ComStmtExecute implements mysql.Handler.
func (s *handler) ComStmtExecute(c *mysql.Conn, prep *mysql.PrepareData, callback func(*sqltypes.Result) error) error {
	ss := s.session(c)
	res, err := ss.executePrepared(context.Background(), prep)
	c.StatusFlags = ss.StatusFlags()
	if _, xerr := ss.TakeExtra(); err == nil && xerr != nil {
		// The binary protocol's answer here is one result: a CALL that
		// signalled after its first gets the error, not a partial success.
		err = xerr
	}
	if err != nil {
		return mysqlerr.From(err)
	}
	return ss.withInfo(res, func() error { return callback(res) })
}

// withInfo runs write, in which the listener writes res, so that an OK
// carries what MariaDB's does and the listener's lacks: res's info text
// and the shards' index flags (SERVER_QUERY_NO_INDEX_USED). The text's
// Warnings count is the statement's warning count, which the OK carries
// too (the shards' counts, or a part's that had no text).
func (s *Session) withInfo(res *sqltypes.Result, write func() error) error {
	if res == nil || len(res.Fields) != 0 || s.Conn == nil {
		return write()
	}
	status := res.StatusFlags & indexStatus
	if res.Info == "" && status == 0 {
		return write()
	}
	f, _ := s.Conn.GetRawConn().(*wire.Conn)
	if f == nil {
		return write()
	}
	info := res.Info
	if info != "" {
		info = engine.InfoWithCount(info, "Warnings", uint64(s.WarningCount()))
	}
	return f.WithOK(info, status, write)
}

// indexStatus are the status flags a shard's OK has about the statement's
// use of indexes.
const indexStatus = mysql.ServerStatusNoGoodIndexUsed | mysql.ServerStatusNoIndexUsed

// ComRegisterReplica implements mysql.Handler: the proxy is no replication
// source.
func (s *handler) ComRegisterReplica(*mysql.Conn, string, uint16, string, string) error {
	return mysqlerr.NotSupported("replication through the proxy")
}

// ComBinlogDump implements mysql.Handler.
func (s *handler) ComBinlogDump(*mysql.Conn, string, uint32) error {
	return mysqlerr.NotSupported("replication through the proxy")
}

// ComBinlogDumpGTID implements mysql.Handler.
func (s *handler) ComBinlogDumpGTID(*mysql.Conn, string, uint64, replication.GTIDSet, uint16) error {
	return mysqlerr.NotSupported("replication through the proxy")
}

// handler is the Executor as the listener sees it: the mysql.Handler
// methods are not part of the Executor's API.
type handler struct {
	mysql.UnimplementedHandler
	*Executor
}
