package shardproxy

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"vitess.io/vitess/go/mysql"
	"vitess.io/vitess/go/mysql/sqlerror"
	"vitess.io/vitess/go/sqltypes"
	querypb "vitess.io/vitess/go/vt/proto/query"

	"github.com/strata-db/strata/shardproxy/backend"
	"github.com/strata-db/strata/shardproxy/engine"
)

// Session is one client connection's state. The listener calls a
// connection's handler methods one at a time, so a Session is used by one
// goroutine, except inside ExecuteShards, which fans out and reads (never
// writes) the session's fields from several.
type Session struct {
	srv  *Server
	conn *mysql.Conn
	id   uint32

	db         string
	autocommit bool
	// state is the session's system variables, applied to whichever
	// backend connection serves it.
	state *backend.State
	// udv are the user variables (@x). They live here, not on the backends:
	// statements get them as bind variables.
	udv map[string]*querypb.BindVariable

	// The transaction: explicitTx after BEGIN; with autocommit off every
	// statement is in one. tx is the pinned connection once a statement
	// has touched a shard; txBegin opens it there.
	explicitTx bool
	tx         *backend.Conn
	txShard    string
	txTarget   backend.Target
	txBegin    string
	// txLost is set when the pinned connection failed: the transaction is
	// gone on the server, so every statement but ROLLBACK fails until the
	// client ends it.
	txLost error

	lastInsertID uint64
	rowCount     int64
	foundRows    uint64
	// sv: settings the proxy applies itself (sessionvars.go).
	sv sessVars

	wmu      sync.Mutex
	warnings []sqltypes.Row
	warnMore int // warnings beyond those SHOW WARNINGS listed
	// The previous statement's warning and error counts, for SELECT
	// @@warning_count / @@error_count: the statement that asks clears the
	// list before it runs, and the backend connection it runs on need not
	// be the one that ran the previous statement.
	prevWarnings, prevErrors int

	prepared map[uint32]*prepared
	hint     backend.RouteHint
	// reserved are the backend connections the session holds for its life,
	// at most one per shard, because a statement left state on them that
	// lives with the connection (reserve.go). reserving names such a
	// statement while it runs: the connection it runs on is kept.
	reserved  map[string]*reservedConn
	reserving string
	// outsideTx makes ExecuteShards ignore the transaction while DDL runs:
	// MySQL commits before DDL, and a broadcast spans shards.
	outsideTx bool

	// For SHOW PROCESSLIST.
	user    string
	started time.Time
	curMu   sync.Mutex
	cur     []byte // a copy of the statement running, empty between statements
	curAt   time.Time

	// fast path state: see fastpath.go.
	fp fastState
	// lane is the fast lane's cursor (lane.go), reused by every statement.
	lane laneCursor

	// vc, when set, replaces the session as the plans' VCursor: tests run
	// the whole statement path in process without backends.
	vc engine.VCursor
}

func newSession(srv *Server, c *mysql.Conn) *Session {
	return &Session{
		srv: srv, conn: c, id: c.ConnectionID,
		autocommit: true,
		txBegin:    "BEGIN",
		started:    time.Now(),
	}
}

// PreferredShard implements engine.ShardPreferrer: in a transaction pinned
// to a shard, reads that may go to any shard (reference tables) stay there.
func (s *Session) PreferredShard() string { return s.txShard }

// running notes the statement being run, for SHOW PROCESSLIST. It keeps a
// copy, in a buffer reused from statement to statement (no allocation), so
// that the fast lane may pass text that lives in the client's read buffer.
func (s *Session) running(sql string, at time.Time) {
	s.curMu.Lock()
	if sql == "" && cap(s.cur) > 64<<10 {
		s.cur = nil // a huge statement's copy is not kept
	}
	s.cur, s.curAt = append(s.cur[:0], sql...), at
	s.curMu.Unlock()
}

func (s *Session) current() (sql string, at time.Time, user string) {
	s.curMu.Lock()
	defer s.curMu.Unlock()
	return string(s.cur), s.curAt, s.user
}

func (s *Session) inTx() bool { return s.explicitTx || !s.autocommit }

// statusFlags are the server status bits the client sees in OK packets.
func (s *Session) statusFlags() uint16 {
	var f uint16
	if s.autocommit {
		f |= mysql.ServerStatusAutocommit
	}
	if s.explicitTx || s.tx != nil {
		f |= mysql.ServerStatusInTrans
	}
	return f
}

// ExecuteShards implements engine.VCursor. Outside a transaction one query
// runs on the calling goroutine (no goroutine per query on the hot path);
// several run in parallel, and the first error interrupts the rest.
func (s *Session) ExecuteShards(ctx context.Context, qs []engine.ShardQuery) ([]*sqltypes.Result, error) {
	if err := s.calcShards(len(qs)); err != nil {
		return nil, err
	}
	if s.inTx() && !s.outsideTx {
		out := make([]*sqltypes.Result, len(qs))
		err := s.executeInTx(ctx, qs, out)
		s.clientFoundRows(qs, out)
		return out, err
	}
	out, err := s.executeOutsideTx(ctx, qs)
	s.clientFoundRows(qs, out)
	return out, err
}

// executeOutsideTx runs queries each on its own pooled connection, even
// when the session has a transaction open: for DDL (which commits anyway)
// and metadata reads.
func (s *Session) executeOutsideTx(ctx context.Context, qs []engine.ShardQuery) ([]*sqltypes.Result, error) {
	out := make([]*sqltypes.Result, len(qs))
	if len(qs) == 1 {
		r, err := s.executeOne(ctx, qs[0], nil)
		out[0] = r
		return out, err
	}
	if len(s.reserved) > 0 || s.reserving != "" {
		// One at a time: two of them may be for one shard, whose reserved
		// connection serves one statement at a time, and reserving writes
		// the session's map.
		for i, q := range qs {
			r, err := s.executeOne(ctx, q, nil)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	}
	fl := &inflight{}
	var wg sync.WaitGroup
	errs := make([]error, len(qs))
	for i := 1; i < len(qs); i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			out[i], errs[i] = s.executeOne(ctx, qs[i], fl)
		}(i)
	}
	out[0], errs[0] = s.executeOne(ctx, qs[0], fl)
	wg.Wait()
	if err := fl.firstErr(); err != nil {
		return nil, err
	}
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// inflight tracks the connections of a scatter so that the first failure
// can interrupt the others.
type inflight struct {
	mu    sync.Mutex
	conns []*backend.Conn
	err   error
}

func (f *inflight) add(c *backend.Conn) error {
	if f == nil {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.conns = append(f.conns, c)
	return nil
}

func (f *inflight) done(c *backend.Conn, err error) {
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, x := range f.conns {
		if x == c {
			f.conns = append(f.conns[:i], f.conns[i+1:]...)
			break
		}
	}
	if err != nil && f.err == nil {
		f.err = err
		for _, x := range f.conns {
			x.Interrupt()
		}
	}
}

func (f *inflight) firstErr() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

func (f *inflight) failed() bool {
	if f == nil {
		return false
	}
	return f.firstErr() != nil
}

// dbOn is the database a backend connection on shard should have selected
// for this session: the session's, when that shard holds it.
func (s *Session) dbOn(shard string) string {
	if s.db == "" {
		return ""
	}
	if set, ok := s.srv.dbShards[s.db]; ok && set[shard] {
		return s.db
	}
	return ""
}

// executeOne runs one query outside a transaction on a server the router
// picks. A plain read that fails because its connection broke is retried
// once on a fresh connection: it had no effect, and the pool has dropped
// the connections that died with it.
func (s *Session) executeOne(ctx context.Context, q engine.ShardQuery, fl *inflight) (*sqltypes.Result, error) {
	m := s.srv.metrics.shard(q.Shard)
	start := time.Now()
	read := q.Read && !s.hint.ForcePrimary
	held := s.heldConn(q.Shard) != nil // its state is gone with it: no retry
	var res *sqltypes.Result
	var err error
	for attempt := 0; ; attempt++ {
		res, err = s.tryOne(ctx, q, read, fl)
		if err == nil || !read || held || attempt > 0 || !backend.IsConnError(err) || fl.failed() {
			break
		}
	}
	if m != nil {
		m.observe(start, err)
	}
	if err != nil {
		fl.done(nil, err)
	}
	return res, err
}

func (s *Session) tryOne(ctx context.Context, q engine.ShardQuery, read bool, fl *inflight) (*sqltypes.Result, error) {
	if conn := s.heldConn(q.Shard); conn != nil {
		return s.runHeld(ctx, q, conn)
	}
	t, err := s.srv.cluster.Route(ctx, q.Shard, read, &s.hint)
	if err != nil {
		return nil, err
	}
	conn, err := t.Pool.GetFor(ctx, s.state, uint64(s.id))
	if err != nil {
		if t.Done != nil {
			t.Done(err)
		}
		return nil, err
	}
	if err := fl.add(conn); err != nil {
		t.Pool.Put(conn)
		if t.Done != nil {
			t.Done(err)
		}
		return nil, err
	}
	res, err := s.execOn(conn, q.Shard, q.SQL, "")
	fl.done(conn, nil)
	if s.reserving != "" && !conn.Broken() {
		s.keep(q.Shard, conn)
	} else {
		t.Pool.Put(conn)
	}
	if t.Done != nil {
		t.Done(err)
	}
	return res, err
}

// execOn runs a shard query on conn and, before the connection can serve
// anything else, collects what the server keeps on it about the statement:
// its warnings, and FOUND_ROWS() after a SELECT SQL_CALC_FOUND_ROWS.
func (s *Session) execOn(conn *backend.Conn, shard, sql, pre string) (*sqltypes.Result, error) {
	res, warn, err := conn.Exec(sql, s.dbOn(shard), s.state, pre, s.srv.maxRows, s.srv.cfg.QueryTimeout)
	if err == nil {
		if warn > 0 {
			s.collectWarnings(conn)
		}
		s.foundRowsAfter(conn)
	}
	return res, err
}

// collectWarnings fetches SHOW WARNINGS from the connection that ran the
// statement, before another session can use it: warnings live on backend
// connections, and the client asks for them through its own session.
func (s *Session) collectWarnings(conn *backend.Conn) {
	res, err := conn.Warnings()
	if err != nil || res == nil {
		return
	}
	more := 0
	if len(res.Rows) >= 64 {
		// SHOW WARNINGS lists at most max_error_count (64) of them; the
		// client's warning count is the server's.
		if c, _, err := conn.Exec("SELECT @@warning_count", "", conn.State(), "", 0, 0); err == nil && len(c.Rows) == 1 {
			if n, err := c.Rows[0][0].ToInt(); err == nil && n > len(res.Rows) {
				more = n - len(res.Rows)
			}
		}
	}
	s.wmu.Lock()
	s.warnings = append(s.warnings, res.Rows...)
	s.warnMore += more
	s.wmu.Unlock()
}

// executeInTx runs the queries on the transaction's connection, pinning
// one on the first statement. A transaction stays on one shard: a query for
// another gets an error naming both.
func (s *Session) executeInTx(ctx context.Context, qs []engine.ShardQuery, out []*sqltypes.Result) error {
	if s.txLost != nil {
		return s.txLost
	}
	shard := s.txShard
	for _, q := range qs {
		if shard == "" {
			shard = q.Shard
		}
		if q.Shard != shard {
			if s.txShard == "" {
				return crossShardErr(shard, q.Shard, "this statement")
			}
			return crossShardErr(shard, q.Shard, "the transaction")
		}
	}
	pre := ""
	if s.tx == nil {
		t, err := s.srv.cluster.Route(ctx, shard, false, &s.hint)
		if err != nil {
			return err
		}
		var conn *backend.Conn
		if rc := s.reserved[shard]; rc != nil {
			// The transaction begins on the session's reserved connection.
			if t.Pool != rc.conn.Pool() {
				if t.Done != nil {
					t.Done(nil)
				}
				return s.lostHeld(shard, rc.conn, "the shard's primary is now another server")
			}
			conn = rc.conn
		} else if conn, err = t.Pool.GetFor(ctx, s.state, uint64(s.id)); err != nil {
			if t.Done != nil {
				t.Done(err)
			}
			return err
		}
		s.tx, s.txShard, s.txTarget = conn, shard, t
		pre = s.sv.beginSQL(s.txBegin)
	}
	m := s.srv.metrics.shard(shard)
	for i, q := range qs {
		start := time.Now()
		res, err := s.execOn(s.tx, shard, q.SQL, pre)
		pre = ""
		if m != nil {
			m.observe(start, err)
		}
		if err != nil {
			if s.tx.Broken() {
				s.txLost = sqlerror.NewSQLErrorf(sqlerror.CRServerLost, sqlerror.SSUnknownSQLState,
					"the transaction on shard %s was lost (%v): ROLLBACK and retry it", shard, toSQLError(err).Message)
				if s.isReserved(s.tx) {
					// Its temporary tables and locks went with it: say so.
					err = s.lostReservedErr(shard, toSQLError(err).Message)
				}
				s.releaseTx(err)
				return err
			}
			var se *sqlerror.SQLError
			if errors.As(err, &se) && se.Number() == sqlerror.ERLockDeadlock {
				// MariaDB rolled the whole transaction back.
				s.releaseTx(nil)
				s.explicitTx = false
			}
			return err
		}
		out[i] = res
		if res.StatusFlags&mysql.ServerStatusInTrans == 0 {
			// The statement ended the transaction on the server (an
			// implicit commit): the session's transaction is over too.
			s.releaseTx(nil)
			s.explicitTx = false
			if i < len(qs)-1 {
				return s.executeInTx(ctx, qs[i+1:], out[i+1:])
			}
		}
	}
	return nil
}

func crossShardErr(a, b, what string) error {
	return sqlerror.NewSQLErrorf(sqlerror.ERNotSupportedYet, sqlerror.SSClientError,
		"transaction on shard %s cannot also touch shard %s: %s would span shards %s and %s, and cross-shard transactions are not supported yet (COMMIT or ROLLBACK first)", a, b, what, a, b)
}

// releaseTx gives the pinned connection back, unless the session holds it
// as its reserved connection (which it keeps while it is sound).
func (s *Session) releaseTx(err error) {
	if s.tx == nil {
		return
	}
	if !s.isReserved(s.tx) {
		s.tx.Pool().Put(s.tx)
	} else if s.tx.Broken() {
		s.dropReserved(s.txShard)
	}
	if s.txTarget.Done != nil {
		s.txTarget.Done(err)
	}
	s.tx, s.txShard, s.txTarget = nil, "", backend.Target{}
	s.txBegin = "BEGIN"
}

// endTx commits or rolls back. With nothing pinned there is nothing to send.
func (s *Session) endTx(commit bool) error {
	s.explicitTx = false
	s.sv.endTx()
	if lost := s.txLost; lost != nil {
		s.txLost = nil
		s.txBegin = "BEGIN"
		if commit {
			return lost
		}
		return nil
	}
	if s.tx == nil {
		s.txBegin = "BEGIN"
		return nil
	}
	sql := "ROLLBACK"
	if commit && !debugDropCommit() {
		sql = "COMMIT"
	}
	m := s.srv.metrics.shard(s.txShard)
	start := time.Now()
	_, _, err := s.tx.Exec(sql, "", s.state, "", 0, s.srv.cfg.QueryTimeout)
	if m != nil {
		m.observe(start, err)
	}
	if err != nil && s.tx.Broken() && s.isReserved(s.tx) {
		err = s.lostReservedErr(s.txShard, toSQLError(err).Message)
	}
	s.releaseTx(err)
	return err
}

// reset starts the session over for COM_RESET_CONNECTION: the transaction
// is rolled back, variables, user variables, prepared statements and
// warnings are dropped; the current database stays.
func (s *Session) reset() {
	s.close()
	s.explicitTx, s.txLost, s.txBegin = false, nil, "BEGIN"
	s.autocommit = true
	s.state = nil
	if names := s.srv.handshakeNames(s.conn); names != "" {
		s.state = s.srv.cluster.States.With(nil, "names", names)
	}
	s.udv = nil
	s.prepared = nil
	s.lastInsertID, s.rowCount, s.foundRows = 0, 0, 0
	s.sv = sessVars{insertIDs: s.sv.insertIDs}
	s.clearWarnings()
	s.hint.ForcePrimary = false
	s.hint.Consistency = ""
}

// close ends the session: an open transaction is rolled back, reserved
// connections are closed.
func (s *Session) close() {
	if s.tx != nil {
		_ = s.endTx(false)
	}
	s.releaseReserved()
}

func (s *Session) String() string { return fmt.Sprintf("session %d", s.id) }
