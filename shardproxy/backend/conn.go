package backend

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"time"

	"vitess.io/vitess/go/mysql"
	"vitess.io/vitess/go/mysql/sqlerror"
	"vitess.io/vitess/go/sqlescape"
	"vitess.io/vitess/go/sqltypes"
	querypb "vitess.io/vitess/go/vt/proto/query"
)

// Conn is one connection to a server, taken from its Pool for one statement
// (or one transaction) and given back with Pool.Put. It is not safe for
// concurrent use.
type Conn struct {
	c    *mysql.Conn
	pool *Pool

	state *State // the session variables this connection carries
	db    string // its current database ("" until one is selected)
	gen   uint64 // the pool generation it was opened in
	owner uint64 // the session that used it last (GetFor), 0 if none
	// idleSince is when it was last put back, for the idle timeout and the
	// liveness check of long-idle connections.
	idleSince time.Time
	broken    bool
	buf       []byte // reused to build prefixed statements
	// inUse is set while the connection is out of the pool (under the
	// pool's mu), for InterruptInUse.
	inUse bool
	// intr is why InterruptInUse closed the connection, nil if it did not.
	intr atomic.Pointer[string]
	// cut is set by Interrupt: the socket's deadline is in the past, so
	// the connection must not serve again even if its statement had ended.
	cut atomic.Bool

	// all, while ExecAll runs, collects every result of the statement.
	all *[]*sqltypes.Result

	rd  *rawReader // the raw side (raw.go), made on first use
	snd *sock      // its socket (sock.go), with rd
	// stmts are the statements prepared on this connection (stmt.go).
	stmts map[stmtKey]stmt
	pkt   Packet // reused for each packet handed to a Sink
	// multi, while ExecStmtAll runs, hands every result to the Sink;
	// lastStmt is the server's id of the statement ExecStmtRaw or
	// ExecStmtAll ran last.
	multi    bool
	lastStmt uint32
	// infile answers the server's LOCAL INFILE request while ExecLocal
	// runs (loadlocal.go).
	infile LocalFile
	piped  bool
}

// Pool is the pool the connection belongs to.
func (c *Conn) Pool() *Pool { return c.pool }

// State is the session state the connection carries now; passing it to
// Exec changes nothing on the connection.
func (c *Conn) State() *State { return c.state }

// Broken reports whether the connection failed at the network level or
// was interrupted (Interrupt, or Pool.InterruptInUse); Put closes broken
// connections.
func (c *Conn) Broken() bool { return c.broken || c.intr.Load() != nil || c.cut.Load() }

// MarkBroken makes Put close the connection instead of pooling it, for a
// caller that left it in an unknown state.
func (c *Conn) MarkBroken() { c.broken = true }

// Interrupt aborts a statement in flight from another goroutine: the
// connection's reads fail at once and the connection is closed when put
// back. Used to cancel the rest of a scatter when one shard fails.
func (c *Conn) Interrupt() {
	c.cut.Store(true)
	if raw := c.c.GetRawConn(); raw != nil {
		_ = raw.SetDeadline(time.Unix(1, 0))
	}
}

// ExecOptions say how Exec runs a statement. The zero value runs it as it
// is, with no bound.
type ExecOptions struct {
	// DB is the database the connection must have selected first ("" for
	// whatever it has).
	DB string
	// State is the session state (system variables) the connection must
	// have first; nil leaves it as it is.
	State *State
	// Pre are statements to run first in the same round trip, such as
	// BEGIN.
	Pre string
	// MaxRows bounds the rows read (0: no bound).
	MaxRows int
	// Timeout bounds the whole exchange (0: no bound but ctx's).
	Timeout time.Duration
}

// bound makes ctx bound the exchange as o.Timeout does (the earlier wins)
// and interrupt the statement when ctx is cancelled; the caller hands what
// it returns to unbound when the exchange ends. A context that can never be
// done costs nothing.
func (c *Conn) bound(ctx context.Context, o *ExecOptions) (stop func() bool, err error) {
	if ctx.Done() == nil {
		return nil, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if d, ok := ctx.Deadline(); ok {
		if left := time.Until(d); o.Timeout == 0 || left < o.Timeout {
			o.Timeout = max(left, time.Nanosecond)
		}
	}
	return context.AfterFunc(ctx, c.Interrupt), nil
}

// unbound ends what bound started: a connection the context interrupted (or
// is about to) is not reusable.
func (c *Conn) unbound(stop func() bool) {
	if stop != nil && !stop() {
		c.broken = true
	}
}

// Exec runs sql after bringing the connection to the session's state
// (o.DB, o.State), then o.Pre, all in one round trip. It returns the result
// of sql and its warning count. ctx's deadline bounds the exchange as
// o.Timeout does (the earlier wins), and its cancellation interrupts the
// statement (the connection is then closed when put back); a context that
// can never be done costs nothing.
func (c *Conn) Exec(ctx context.Context, sql string, o ExecOptions) (*sqltypes.Result, uint16, error) {
	stop, err := c.bound(ctx, &o)
	if err != nil {
		return nil, 0, err
	}
	defer c.unbound(stop)
	return c.exec(sql, o.DB, o.State, o.Pre, o.MaxRows, o.Timeout)
}

func (c *Conn) exec(sql, db string, st *State, pre string, maxRows int, timeout time.Duration) (*sqltypes.Result, uint16, error) {
	x, err := c.send(sql, db, st, pre, timeout)
	if err != nil {
		return nil, 0, err
	}
	return x.receive(maxRows)
}

// Sent is an exchange that Send began; Receive reads its answer.
type Sent struct {
	c        *Conn
	nPre     int // results of the statements sent before sql
	db       string
	st       *State
	deadline bool
	stop     func() bool // from bound
}

// Send begins what Exec does: it writes sql after the statements that
// bring the connection to o.DB and o.State and o.Pre, in one packet, and
// returns without reading the answer, which Receive reads (ctx bounds the
// exchange until then, as Exec's). Until Receive the connection must not
// be used otherwise. One goroutine can so begin exchanges on several
// connections and then collect the answers, which the servers work on
// meanwhile, without a goroutine for each.
func (c *Conn) Send(ctx context.Context, sql string, o ExecOptions) (Sent, error) {
	stop, err := c.bound(ctx, &o)
	if err != nil {
		return Sent{}, err
	}
	x, err := c.send(sql, o.DB, o.State, o.Pre, o.Timeout)
	if err != nil {
		c.unbound(stop)
		return Sent{}, err
	}
	x.stop = stop
	return x, nil
}

// Receive reads the answer of the exchange Send began: the result of its
// statement and its warning count, as Exec returns them.
func (x Sent) Receive() (*sqltypes.Result, uint16, error) {
	defer x.c.unbound(x.stop)
	return x.receive(0)
}

// send writes the exchange's packet; on a failure nothing is left to read.
func (c *Conn) send(sql, db string, st *State, pre string, timeout time.Duration) (Sent, error) {
	if len(sql) > bigStatement {
		if err := c.applyAlone(db, st, pre, timeout); err != nil {
			return Sent{}, err
		}
		db, st, pre = "", c.state, ""
	}
	buf, nPre := c.appendPrefix(c.buf[:0], db, st, pre)
	query := sql
	if nPre > 0 {
		buf = append(buf, sql...)
		query = string(buf)
	}
	c.buf = buf[:0]
	if timeout > 0 {
		c.setDeadline(timeout)
	}
	if err := c.c.WriteComQuery(query); err != nil {
		c.broken = true
		return Sent{}, c.connError(err)
	}
	return Sent{c: c, nPre: nPre, db: db, st: st, deadline: timeout > 0}, nil
}

// receive reads the answers of the statements send wrote.
func (x Sent) receive(maxRows int) (*sqltypes.Result, uint16, error) {
	c := x.c
	if x.deadline {
		defer c.clearDeadline()
	}
	rows := mysql.FETCH_ALL_ROWS
	if maxRows > 0 {
		rows = maxRows
	}
	for i := 0; i < x.nPre; i++ {
		_, more, _, err := c.c.ReadQueryResult(mysql.FETCH_NO_ROWS, false)
		if err != nil {
			// The statements after the failed one were not run; what the
			// failed one changed is unknown: do not reuse the connection.
			c.broken = true
			return nil, 0, c.connError(err)
		}
		if !more {
			c.broken = true
			return nil, 0, c.connError(errors.New("backend: server ended a multi-statement early"))
		}
	}
	if x.nPre > 0 {
		if x.db != "" {
			c.db = x.db
		}
		c.state = x.st
	}
	if c.all != nil {
		return c.readAll(rows)
	}
	res, more, warnings, err := c.c.ReadQueryResult(rows, true)
	serverFlags(res)
	if more {
		// One statement gives one result; anything else (a CALL) is drained.
		for more && err == nil {
			_, more, _, err = c.c.ReadQueryResult(mysql.FETCH_NO_ROWS, false)
		}
		if err == nil {
			err = sqlerror.NewSQLError(sqlerror.ERNotSupportedYet, sqlerror.SSUnknownSQLState, "statements with more than one result are not supported through the proxy")
		}
	}
	if err != nil {
		if closesConn(err) {
			c.broken = true
		}
		return nil, 0, c.connError(err)
	}
	return res, warnings, nil
}

// setDeadline bounds the exchange that follows; clearDeadline (deferred)
// ends the bound of a connection that is to be used again. Methods rather
// than a returned closure, which would be allocated per statement.
func (c *Conn) setDeadline(timeout time.Duration) {
	if raw := c.c.GetRawConn(); raw != nil {
		_ = raw.SetDeadline(time.Now().Add(timeout))
	}
}

func (c *Conn) clearDeadline() {
	if raw := c.c.GetRawConn(); raw != nil && !c.broken {
		_ = raw.SetDeadline(time.Time{})
	}
}

// connError is Pool.connError for a failure on this connection: when
// InterruptInUse closed it, the error says so (2013, with the reason), and
// the other connections are left alone (they did not fail).
func (c *Conn) connError(err error) error {
	if why := c.intr.Load(); why != nil && isConnError(err) {
		return c.pool.interrupted(*why)
	}
	return c.pool.connError(err)
}

// appendPrefix appends the statements that bring the connection to the
// database db and the state st, then pre, each followed by ';', and says how
// many statements it appended.
func (c *Conn) appendPrefix(buf []byte, db string, st *State, pre string) ([]byte, int) {
	nPre := 0
	if db != "" && db != c.db {
		buf = append(buf, "USE "...)
		buf = append(buf, sqlescape.EscapeID(db)...)
		buf = append(buf, ';')
		nPre++
	}
	if st != c.state {
		if set := diffSQL(c.state, st); set != "" {
			buf = append(buf, set...)
			buf = append(buf, ';')
			nPre++
		}
	}
	if pre != "" {
		buf = append(buf, pre...)
		buf = append(buf, ';')
		nPre += strings.Count(pre, ";") + 1
	}
	return buf, nPre
}

// Warnings fetches SHOW WARNINGS of the statement just run.
func (c *Conn) Warnings() (*sqltypes.Result, error) {
	res, _, err := c.exec("SHOW WARNINGS", "", c.state, "", 0, 0)
	return res, err
}

// isConnError tells a failure of the connection (the statement's outcome is
// unknown, the connection unusable) from an error the server returned for
// the statement.
func isConnError(err error) bool {
	var se *sqlerror.SQLError
	if !errors.As(err, &se) {
		return true
	}
	n := se.Number()
	return n >= 2000 && n < 3000
}

// closesConn tells an error after which the connection is not to be used
// again: a failure of the connection, or an error the server sends just
// before it closes the connection itself (a packet over its
// max_allowed_packet, a network error on its side, a shutdown, KILL, an
// idle timeout). Pooled, such a connection would fail the next statement.
func closesConn(err error) bool {
	if isConnError(err) {
		return true
	}
	var se *sqlerror.SQLError
	if !errors.As(err, &se) {
		return true
	}
	switch se.Number() {
	case sqlerror.ERNetPacketTooLarge, // 1153
		1156, 1158, 1159, 1160, 1161, // net: packets out of order, read/write error or interrupted
		sqlerror.ERServerShutdown, // 1053
		1184,                      // aborted connection
		1927,                      // MariaDB: connection was killed
		4031:                      // idle too long (interactive/wait timeout)
		return true
	}
	return false
}

// IsConnError reports whether err means the connection (not the statement)
// failed, so that a read that did not run may be retried on another one.
func IsConnError(err error) bool { return isConnError(err) }

// ping checks the connection with COM_PING.
func (c *Conn) ping(timeout time.Duration) error {
	raw := c.c.GetRawConn()
	if raw != nil {
		_ = raw.SetDeadline(time.Now().Add(timeout))
	}
	err := c.c.Ping()
	if raw != nil && err == nil {
		_ = raw.SetDeadline(time.Time{})
	}
	if err != nil {
		c.broken = true
	}
	return err
}

func (c *Conn) close() {
	c.c.Close()
}

// ExecAll is Exec for a statement that may answer with several results (a
// CALL: each result set of the procedure, then its own status): it returns
// them all. With an error after some results (a SIGNAL after a SELECT),
// it returns those that came before it with the error.
func (c *Conn) ExecAll(ctx context.Context, sql string, o ExecOptions) ([]*sqltypes.Result, uint16, error) {
	var all []*sqltypes.Result
	c.all = &all
	defer func() { c.all = nil }()
	_, warnings, err := c.Exec(ctx, sql, o)
	return all, warnings, err
}

// serverFlags gives res's columns the flags the server sent: vitess's
// client adds NUM_FLAG to numeric columns, as libmysql does when it reads
// them, and the listener would write it on to clients, which MariaDB never
// does.
func serverFlags(res *sqltypes.Result) {
	if res == nil {
		return
	}
	for _, f := range res.Fields {
		f.Flags &^= uint32(querypb.MySqlFlag_NUM_FLAG)
	}
}

// readAll reads every result of the statement into c.all.
func (c *Conn) readAll(rows int) (*sqltypes.Result, uint16, error) {
	var warnings uint16
	for {
		res, more, w, err := c.c.ReadQueryResult(rows, true)
		serverFlags(res)
		if err != nil {
			if closesConn(err) {
				c.broken = true
			}
			return nil, 0, c.connError(err)
		}
		*c.all = append(*c.all, res)
		warnings = w
		if !more {
			return res, warnings, nil
		}
	}
}
