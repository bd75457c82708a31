package executor

import (
	"context"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"vitess.io/vitess/go/mysql/sqlerror"
	"vitess.io/vitess/go/sqltypes"
	querypb "vitess.io/vitess/go/vt/proto/query"
	"vitess.io/vitess/go/vt/sqlparser"

	"github.com/strata-db/strata/shardproxy/config"
	"github.com/strata-db/strata/shardproxy/internal/sqltext"
	"github.com/strata-db/strata/shardproxy/mysqlerr"
	"github.com/strata-db/strata/shardproxy/session"
	"github.com/strata-db/strata/shardproxy/wire"
)

// KILL and the process list, with the proxy's own connection ids (those
// CONNECTION_ID() answers through the proxy, see reserve.go).
//
// A user sees and kills their own sessions (the same user name); a user with
// admin: true in the config sees and kills every session, as a MariaDB user
// with PROCESS and CONNECTION ADMIN does. KILL QUERY stops the statement on
// every backend it runs on (session/kill.go); KILL [CONNECTION] also closes
// the client's connection, whose backend connections are then given up and
// its transaction rolled back. The answers are MariaDB's: 1094 for an id no
// session has, 1095 for another user's session, 1317 to the statement
// killed (and to KILL QUERY of one's own session), 1927 to KILL of one's own
// connection, which is then closed. KILL is never passed to a backend: a
// backend's ids are not the client's.

// killRE reads MariaDB's KILL [HARD | SOFT] [CONNECTION | QUERY] id. The id
// may be a number or CONNECTION_ID().
var killRE = regexp.MustCompile(`(?is)^\s*KILL\s+(?:(?:HARD|SOFT)\s+)?(?:(CONNECTION|QUERY)\s+)?(\d+|CONNECTION_ID\s*\(\s*\))\s*;?\s*$`)

// killStatement runs a KILL statement of the client.
func (s *Session) killStatement(ctx context.Context, sql string) (*sqltypes.Result, error) {
	m := killRE.FindStringSubmatch(sqltext.StripComments(sql))
	if m == nil {
		return nil, mysqlerr.NotSupported("this form of KILL through the proxy (KILL [CONNECTION | QUERY] id, with the id CONNECTION_ID() shows, is supported)")
	}
	var id uint64
	if strings.HasPrefix(strings.ToUpper(m[2]), "CONNECTION_ID") {
		id = uint64(s.ID)
	} else {
		var err error
		if id, err = strconv.ParseUint(m[2], 10, 64); err != nil {
			// Beyond 64 bits: no session has it.
			return nil, sqlerror.NewSQLErrorf(sqlerror.ERNoSuchThread, sqlerror.SSUnknownSQLState, "Unknown thread id: %s", m[2])
		}
	}
	return s.kill(ctx, id, strings.EqualFold(m[1], "QUERY"))
}

// kill ends session id's statement (query) or the session.
func (s *Session) kill(ctx context.Context, id uint64, query bool) (*sqltypes.Result, error) {
	var t *Session
	if id <= 1<<32-1 {
		s.srv.mu.Lock()
		t = s.srv.sessions[uint32(id)]
		s.srv.mu.Unlock()
	}
	if t == nil {
		return nil, sqlerror.NewSQLErrorf(sqlerror.ERNoSuchThread, sqlerror.SSUnknownSQLState, "Unknown thread id: %d", id)
	}
	if !s.mayControl(t) {
		return nil, sqlerror.NewSQLErrorf(sqlerror.ERKillDenied, sqlerror.SSUnknownSQLState, "You are not owner of thread %d", id)
	}
	if t == s {
		if query {
			// The statement killed is this KILL.
			return nil, session.ErrQueryInterrupted()
		}
		s.closeAfterAnswer()
		return nil, sqlerror.NewSQLError(1927, "70100", "Connection was killed")
	}
	if query {
		t.KillQuery(ctx, s.srv.log)
	} else {
		t.KillConnection(ctx, s.srv.log)
	}
	return okResult, nil
}

// closeAfterAnswer closes the session's client connection once its answer
// to the statement running went out: the listener reads no further command.
func (s *Session) closeAfterAnswer() {
	c := s.Conn
	if c == nil {
		return
	}
	c.MarkForClose()
	if cc, ok := c.GetRawConn().(*wire.Conn); ok {
		if cr, ok := cc.Conn.(interface{ CloseRead() error }); ok {
			// The listener's next read ends at once; the answer, written
			// before, still goes out.
			_ = cr.CloseRead()
		}
	}
}

// mayControl: s may see t in the process list and kill it.
func (s *Session) mayControl(t *Session) bool {
	if t == s || s.srv.isAdmin(s.User) {
		return true
	}
	_, _, user, _ := t.Current()
	return user != "" && user == s.User
}

// isAdmin: the config gives user admin: true.
func (srv *Executor) isAdmin(user string) bool {
	return slices.ContainsFunc(srv.cfg.Users, func(u config.User) bool { return u.Admin && u.Name == user })
}

// process is one row of the process list.
type process struct {
	id                         uint64
	user, host, db, cmd, state string
	hasDB                      bool
	info                       string
	hasInfo                    bool
	since                      time.Duration
}

// processes lists the sessions s may see, by id.
func (s *Session) processes() []process {
	s.srv.mu.Lock()
	sessions := make([]*Session, 0, len(s.srv.sessions))
	for _, ss := range s.srv.sessions {
		sessions = append(sessions, ss)
	}
	s.srv.mu.Unlock()
	slices.SortFunc(sessions, func(a, b *Session) int { return int(int64(a.ID) - int64(b.ID)) })
	admin := s.srv.isAdmin(s.User)
	now := time.Now()
	var out []process
	for _, ss := range sessions {
		q, at, user, db := ss.Current()
		if ss == s {
			db = s.DB
		}
		if !admin && (user == "" || user != s.User) {
			continue
		}
		p := process{id: uint64(ss.ID), user: user, cmd: "Sleep", db: db, hasDB: db != "", since: now.Sub(at)}
		if user == "" {
			p.user, p.cmd, p.state = "unauthenticated user", "Connect", "login"
		}
		if q != "" {
			p.cmd, p.state, p.info, p.hasInfo = "Query", "executing", q, true
		}
		if ss.Conn != nil {
			p.host = ss.Conn.RemoteAddr().String()
		}
		out = append(out, p)
	}
	return out
}

// showProcessList answers SHOW [FULL] PROCESSLIST with the proxy's own
// sessions, in MariaDB's columns.
func (s *Session) showProcessList(full bool) *sqltypes.Result {
	res := &sqltypes.Result{Fields: []*querypb.Field{
		{Name: "Id", Type: sqltypes.Int64, ColumnLength: 21}, varcharField("User"), varcharField("Host"), varcharField("db"),
		varcharField("Command"), {Name: "Time", Type: sqltypes.Int32, ColumnLength: 7}, varcharField("State"), varcharField("Info"),
		{Name: "Progress", Type: sqltypes.Decimal, ColumnLength: 7, Decimals: 3},
	}}
	for _, p := range s.processes() {
		db, info := sqltypes.NULL, sqltypes.NULL
		if p.hasDB {
			db = sqltypes.NewVarChar(p.db)
		}
		if p.hasInfo {
			text := p.info
			if !full && len(text) > 100 {
				text = text[:100]
			}
			info = sqltypes.NewVarChar(text)
		}
		res.Rows = append(res.Rows, sqltypes.Row{
			sqltypes.NewInt64(int64(p.id)), sqltypes.NewVarChar(p.user), sqltypes.NewVarChar(p.host), db,
			sqltypes.NewVarChar(p.cmd), sqltypes.NewInt32(int32(p.since / time.Second)), sqltypes.NewVarChar(p.state), info,
			sqltypes.MakeTrusted(sqltypes.Decimal, []byte("0.000")),
		})
	}
	return res
}

// processListTable is the name information_schema.PROCESSLIST is replaced
// with in a query's text before the derived table of the proxy's sessions
// takes its place.
const processListTable = "strata_processlist_8c1f"

// refsProcessList reports whether stmt reads information_schema.PROCESSLIST
// (db is the session's database, for an unqualified name).
func refsProcessList(stmt sqlparser.Statement, db string) bool {
	found := false
	_ = sqlparser.Walk(func(node sqlparser.SQLNode) (bool, error) {
		if ate, ok := node.(*sqlparser.AliasedTableExpr); ok && isProcessList(ate, db) {
			found = true
		}
		return !found, nil
	}, stmt)
	return found
}

func isProcessList(ate *sqlparser.AliasedTableExpr, db string) bool {
	tn, ok := ate.Expr.(sqlparser.TableName)
	if !ok || !strings.EqualFold(tn.Name.String(), "processlist") {
		return false
	}
	q := tn.Qualifier.String()
	if q == "" {
		q = db
	}
	return strings.EqualFold(q, "information_schema")
}

// selectProcessList answers a SELECT that reads
// information_schema.PROCESSLIST: the table becomes a derived table of the
// proxy's sessions (those the user may see), in MariaDB's columns, and a
// server evaluates the rest of the query (WHERE, ORDER BY, functions) as it
// would on its own table. CONNECTION_ID() is the proxy's id; the session's
// user variables are not available to such a query.
func (s *Session) selectProcessList(ctx context.Context, stmt sqlparser.Statement) (*sqltypes.Result, error) {
	stmt = sqlparser.Rewrite(sqlparser.Clone(stmt), nil, func(c *sqlparser.Cursor) bool {
		switch n := c.Node().(type) {
		case *sqlparser.AliasedTableExpr:
			if isProcessList(n, s.DB) {
				if n.As.IsEmpty() {
					n.As = sqlparser.NewIdentifierCS(n.Expr.(sqlparser.TableName).Name.String())
				}
				n.Expr = sqlparser.NewTableName(processListTable)
			}
		case *sqlparser.FuncExpr:
			if n.Qualifier.IsEmpty() && n.Name.Lowered() == "connection_id" && len(n.Exprs) == 0 {
				c.Replace(sqlparser.NewIntLiteral(strconv.FormatUint(uint64(s.ID), 10)))
			}
		}
		return true
	}).(sqlparser.Statement)
	sql := strings.ReplaceAll(sqlparser.String(stmt), processListTable, "("+s.processListSQL()+")")
	return s.onShard(ctx, s.homeShard(), sql)
}

// processListSQL is a SELECT of the sessions s may see, in the columns of
// MariaDB 10.11's information_schema.PROCESSLIST.
func (s *Session) processListSQL() string {
	var b strings.Builder
	str := func(v string) {
		b.WriteString(sqltypes.EncodeStringSQL(v))
	}
	nullable := func(v string, ok bool) {
		if ok {
			str(v)
		} else {
			b.WriteString("NULL")
		}
	}
	for i, p := range s.processes() {
		if i > 0 {
			b.WriteString(" UNION ALL ")
		}
		b.WriteString("SELECT CAST(")
		b.WriteString(strconv.FormatUint(p.id, 10))
		b.WriteString(" AS UNSIGNED) AS ID, ")
		str(p.user)
		b.WriteString(" AS USER, ")
		str(p.host)
		b.WriteString(" AS HOST, ")
		nullable(p.db, p.hasDB)
		b.WriteString(" AS DB, ")
		str(p.cmd)
		b.WriteString(" AS COMMAND, ")
		b.WriteString(strconv.FormatInt(int64(p.since/time.Second), 10))
		b.WriteString(" AS TIME, ")
		str(p.state)
		b.WriteString(" AS STATE, ")
		nullable(p.info, p.hasInfo)
		b.WriteString(" AS INFO, CAST(")
		b.WriteString(strconv.FormatFloat(float64(p.since.Microseconds())/1000, 'f', 3, 64))
		b.WriteString(" AS DECIMAL(22,3)) AS TIME_MS, 0 AS STAGE, 0 AS MAX_STAGE, CAST(0 AS DECIMAL(7,3)) AS PROGRESS, 0 AS MEMORY_USED, 0 AS MAX_MEMORY_USED, 0 AS EXAMINED_ROWS, 0 AS QUERY_ID, ")
		nullable(p.info, p.hasInfo)
		b.WriteString(" AS INFO_BINARY, 0 AS TID")
	}
	return b.String()
}

// containsFold reports whether s contains the lower-case ASCII word w in
// any case, without allocating.
func containsFold(s, w string) bool {
	for i := 0; i+len(w) <= len(s); i++ {
		if equalFold(s[i:i+len(w)], w) {
			return true
		}
	}
	return false
}
