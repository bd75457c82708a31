package session

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
	"github.com/strata-db/strata/shardproxy/config"
	"github.com/strata-db/strata/shardproxy/engine"
	"github.com/strata-db/strata/shardproxy/mysqlerr"
	"github.com/strata-db/strata/shardproxy/sqlmode"
)

// Session is one client connection's state. The listener calls a
// connection's handler methods one at a time, so a Session is used by one
// goroutine, except inside ExecuteShards, which fans out and reads (never
// writes) the session's fields from several.
type Session struct {
	sh   *Shared
	Conn *mysql.Conn
	ID   uint32
	// HandshakeNames is the SET NAMES the client's handshake asked for, ""
	// for the backends' own: COM_RESET_CONNECTION goes back to it.
	HandshakeNames string

	DB         string
	Autocommit bool
	// state is the session's system variables, applied to whichever
	// backend connection serves it.
	State *backend.State
	// udv are the user variables (@x). They live here, not on the backends:
	// statements get them as bind variables.
	UDV map[string]*querypb.BindVariable

	// The transaction: explicitTx after BEGIN; with autocommit off every
	// statement is in one. tx is the pinned connection once a statement
	// has touched a shard; txBegin opens it there.
	ExplicitTx bool
	Tx         *backend.Conn
	TxShard    string
	TxTarget   backend.Target
	TxBegin    string
	// Cross-shard transactions (xa.go): XID is the coordinator's id of the
	// transaction (0: plain); TxXA says the first shard's branch is an XA
	// branch; TxWrote that a statement other than a plain read ran there;
	// Branches are the other shards' parts; TxNext is the SET TRANSACTION
	// the first branch began with, for the others.
	XID      uint64
	TxXA     bool
	TxWrote  bool
	Branches []*Branch
	TxNext   string
	// replay is what the plain first shard ran (xa.go), while replayOn;
	// replayOver: too much to replay.
	replay      []replayed
	replayOn    bool
	replayOver  bool
	replayRest  string
	replayBytes int
	// spanned: the session's last transaction spanned shards, so its next
	// begins as an XA branch at once (xa.go); early: this one did.
	spanned bool
	early   bool
	// txLost is set when the pinned connection failed: the transaction is
	// gone on the server, so every statement but ROLLBACK fails until the
	// client ends it.
	TxLost error

	LastInsertID uint64
	RowCount     int64
	FoundRows    uint64
	// sv: settings the proxy applies itself (sessionvars.go).
	Vars Vars

	WMu      sync.Mutex
	Warnings []sqltypes.Row
	WarnMore int // warnings beyond those SHOW WARNINGS listed
	// The previous statement's warning and error counts, for SELECT
	// @@warning_count / @@error_count: the statement that asks clears the
	// list before it runs, and the backend connection it runs on need not
	// be the one that ran the previous statement.
	PrevWarnings, PrevErrors int
	// QuietCount: the statement running is SHOW WARNINGS or SHOW ERRORS,
	// which lists the warnings and keeps them but has none of its own: its
	// answer's warning count is 0, as on MariaDB.
	QuietCount bool

	Hint backend.RouteHint
	// reserved are the backend connections the session holds for its life,
	// at most one per shard, because a statement left state on them that
	// lives with the connection (reserve.go). reserving names such a
	// statement while it runs: the connection it runs on is kept.
	Reserved  map[string]*reservedConn
	Reserving string
	// outsideTx makes ExecuteShards ignore the transaction while DDL runs:
	// MySQL commits before DDL, and a broadcast spans shards.
	OutsideTx bool
	// RefRead: the statement running reads reference tables only, and no
	// other table (set by the executor while it runs). txRefOnly: the
	// transaction pinned to TxShard has run only such plain reads there,
	// so it may move to another shard (moveRefOnly).
	RefRead     bool
	txRefOnly   bool
	txNextMoved string // TxNext of a transaction moveRefOnly moved

	// Raw: the user variables of a statement passed through unplanned,
	// while it runs (raw.go). WantAll: the statement running may answer
	// with several results (a CALL passed through): ExecOn keeps those
	// after the first in Extra, and the error that ended them in ExtraErr.
	Raw      *RawVars
	WantAll  bool
	Extra    []*sqltypes.Result
	ExtraErr error
	// Infile serves the LOAD DATA LOCAL INFILE running (loaddata.go).
	Infile *Infile

	// For SHOW PROCESSLIST.
	User    string
	Started time.Time
	curMu   sync.Mutex
	cur     []byte // a copy of the statement running, empty between statements
	curAt   time.Time
	curDB   string // the database at the last statement's start or end
	// kill: KILL QUERY / KILL CONNECTION of this session (kill.go).
	kill killState
}

// New is the session of client connection c (nil in tests that run
// statements without a client).
func New(sh *Shared, c *mysql.Conn) *Session {
	s := &Session{}
	s.Init(sh, c)
	return s
}

// Init makes s, a zero Session (one embedded in a larger struct, so that a
// client connection's session is one allocation), the session of client
// connection c.
func (s *Session) Init(sh *Shared, c *mysql.Conn) {
	s.sh, s.Conn = sh, c
	s.Autocommit = true
	s.TxBegin = "BEGIN"
	s.Started = time.Now()
	s.curAt = s.Started
	if c != nil {
		s.ID = c.ConnectionID
	}
}

// PreferredShard implements engine.ShardPreferrer: in a transaction pinned
// to a shard, reads that may go to any shard (reference tables) stay there.
func (s *Session) PreferredShard() string { return s.TxShard }

// running notes the statement being run, for SHOW PROCESSLIST. It keeps a
// copy, in a buffer reused from statement to statement (no allocation), so
// that the fast lane may pass text that lives in the client's read buffer.
func (s *Session) Running(sql string, at time.Time) {
	s.curMu.Lock()
	// A statement starts or ends: no KILL QUERY stands (kill.go).
	if sql != "" {
		s.kill.seq.Add(1)
	}
	if s.kill.killed.Load() {
		s.kill.killed.Store(false)
	}
	if s.kill.deadlock.Load() {
		s.kill.deadlock.Store(false)
	}
	if sql == "" && cap(s.cur) > 64<<10 {
		s.cur = nil // a huge statement's copy is not kept
	}
	s.cur = append(s.cur[:0], sql...)
	if !at.IsZero() {
		// Between statements the time stays the last one's start: the
		// Time of a Sleep in SHOW PROCESSLIST counts from it.
		s.curAt = at
	}
	s.curDB = s.DB
	s.curMu.Unlock()
}

// Current is what SHOW PROCESSLIST shows of the session, read from another
// session's goroutine: the statement running ("" for none), when it (or the
// last one) started, the user, and the database.
func (s *Session) Current() (sql string, at time.Time, user, db string) {
	s.curMu.Lock()
	defer s.curMu.Unlock()
	return string(s.cur), s.curAt, s.User, s.curDB
}

func (s *Session) InTx() bool { return s.ExplicitTx || !s.Autocommit }

// statusFlags are the server status bits the client sees in OK packets.
func (s *Session) StatusFlags() uint16 {
	var f uint16
	if s.Autocommit {
		f |= mysql.ServerStatusAutocommit
	}
	if s.ExplicitTx || s.Tx != nil {
		f |= mysql.ServerStatusInTrans
	}
	if s.Vars.Mode&sqlmode.NoBackslashEscapes != 0 {
		// Clients that write parameters into the text read it (go-sql-driver
		// with interpolateParams, libmariadb's escape function).
		f |= mysql.ServerStatusNoBackslashEscapes
	}
	if s.Vars.Mode&sqlmode.AnsiQuotes != 0 {
		f |= serverStatusAnsiQuotes
	}
	return f
}

// serverStatusAnsiQuotes is MariaDB's SERVER_STATUS_ANSI_QUOTES: the
// session's sql_mode has ANSI_QUOTES.
const serverStatusAnsiQuotes = 0x8000

// ExecuteShards implements engine.VCursor. Outside a transaction one query
// runs on the calling goroutine (no goroutine per query on the hot path);
// several run in parallel, and the first error interrupts the rest when
// they are plain reads (see inflight).
func (s *Session) ExecuteShards(ctx context.Context, qs []engine.ShardQuery) ([]*sqltypes.Result, error) {
	if err := s.calcShards(len(qs)); err != nil {
		return nil, err
	}
	if s.InTx() && !s.OutsideTx {
		out := make([]*sqltypes.Result, len(qs))
		err := s.executeInTx(ctx, qs, out)
		s.clientFoundRows(qs, out)
		return out, err
	}
	if len(qs) > 1 && !s.OutsideTx && s.sh.XA != nil && s.Reserving == "" && !s.tablesLocked() &&
		needsAtomic(qs) && s.txMode() == config.TxTwoPC {
		out, err := s.executeAtomic(ctx, qs)
		s.clientFoundRows(qs, out)
		return out, err
	}
	if !s.OutsideTx && s.Reserving == "" && !s.tablesLocked() && stmtGuarded(qs) && oneShard(qs) {
		out, err := s.executeOneShardTx(ctx, qs)
		s.clientFoundRows(qs, out)
		return out, err
	}
	out, err := s.ExecuteOutsideTx(ctx, qs)
	s.clientFoundRows(qs, out)
	return out, err
}

// oneShard: every query is for the first's shard.
func oneShard(qs []engine.ShardQuery) bool {
	for _, q := range qs[1:] {
		if q.Shard != qs[0].Shard {
			return false
		}
	}
	return true
}

// executeOneShardTx runs an autocommit statement that writes through
// several queries on one shard (sub-tables) in a transaction of its own
// there, so that it commits whole or not at all, as on one server (each
// query on its own would commit, and one failing would leave the others).
func (s *Session) executeOneShardTx(ctx context.Context, qs []engine.ShardQuery) ([]*sqltypes.Result, error) {
	shard := qs[0].Shard
	t, err := s.sh.Cluster.Route(ctx, shard, false, &s.Hint)
	if err != nil {
		return nil, err
	}
	var conn *backend.Conn
	rc := s.Reserved[shard]
	if rc != nil {
		// The session holds a connection there: the statement runs on it.
		if t.Pool != rc.Conn.Pool() {
			if t.Done != nil {
				t.Done(nil)
			}
			return nil, s.LostHeld(shard, rc.Conn, "the shard's primary is now another server")
		}
		conn = rc.Conn
	} else if conn, err = t.Pool.GetFor(ctx, s.State, uint64(s.ID)); err != nil {
		if t.Done != nil {
			t.Done(err)
		}
		return nil, err
	}
	out := make([]*sqltypes.Result, len(qs))
	m := s.sh.Metrics.Shard(shard)
	pre := "BEGIN"
	for i, q := range qs {
		start := time.Now()
		var r *sqltypes.Result
		r, err = s.ExecOn(ctx, conn, shard, q.SQL, pre)
		pre = ""
		if m != nil {
			m.Observe(start, err)
		}
		if err != nil {
			break
		}
		out[i] = r
	}
	if !conn.Broken() {
		if _, _, e := conn.Exec(context.Background(), EndSQL(err == nil), backend.ExecOptions{State: s.State, Timeout: s.sh.QueryTimeout}); e != nil {
			conn.MarkBroken()
			if err == nil {
				err = e
			}
		}
	}
	switch {
	case rc == nil:
		t.Pool.Put(conn)
	case conn.Broken():
		s.DropReserved(shard)
	}
	if t.Done != nil {
		t.Done(err)
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// tablesLocked: the session holds LOCK TABLES on a connection, which a
// transaction begun there would release.
func (s *Session) tablesLocked() bool {
	for _, rc := range s.Reserved {
		if rc.why == "LOCK TABLES" {
			return true
		}
	}
	return false
}

// executeOutsideTx runs queries each on its own pooled connection, even
// when the session has a transaction open: for DDL (which commits anyway)
// and metadata reads.
func (s *Session) ExecuteOutsideTx(ctx context.Context, qs []engine.ShardQuery) ([]*sqltypes.Result, error) {
	out := make([]*sqltypes.Result, len(qs))
	if len(qs) == 1 {
		r, err := s.executeOne(ctx, qs[0], nil)
		out[0] = r
		return out, err
	}
	if len(s.Reserved) > 0 || s.Reserving != "" {
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
	fl := &inflight{cut: allReads(qs)}
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
// can interrupt the others, and keeps the queries not yet started from
// starting.
//
// Only plain reads are interrupted (cut). A write already sent is not
// undone by closing its connection: the server reads the statement before
// it sees the close, and runs it, later, while the client has been told it
// failed and has gone on. A reference table's copy then took a row that
// the session's next DELETE had already run past (the copies differed).
// A scatter of writes waits for every statement sent.
type inflight struct {
	mu    sync.Mutex
	cut   bool
	conns []*backend.Conn
	err   error
}

// allReads reports whether every query is a plain read (no side effect
// for an interruption to leave half done).
func allReads(qs []engine.ShardQuery) bool {
	for _, q := range qs {
		if !q.Read {
			return false
		}
	}
	return true
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
		if f.cut {
			for _, x := range f.conns {
				x.Interrupt()
			}
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
func (s *Session) DBOn(shard string) string {
	if s.DB == "" {
		return ""
	}
	if set, ok := s.sh.DBShards[s.DB]; ok && set[shard] {
		return s.DB
	}
	return ""
}

// executeOne runs one query outside a transaction on a server the router
// picks. A plain read that fails because its connection broke is retried
// once on a fresh connection: it had no effect, and the pool has dropped
// the connections that died with it.
func (s *Session) executeOne(ctx context.Context, q engine.ShardQuery, fl *inflight) (*sqltypes.Result, error) {
	m := s.sh.Metrics.Shard(q.Shard)
	start := time.Now()
	read := q.Read && !s.Hint.ForcePrimary
	held := s.HeldConn(q.Shard) != nil // its state is gone with it: no retry
	var res *sqltypes.Result
	var err error
	for attempt := 0; ; attempt++ {
		res, err = s.tryOne(ctx, q, read, fl)
		if err == nil || !read || held || attempt > 0 || !backend.IsConnError(err) || fl.failed() {
			break
		}
	}
	if m != nil {
		m.Observe(start, err)
	}
	if err != nil {
		fl.done(nil, err)
	}
	return res, err
}

func (s *Session) tryOne(ctx context.Context, q engine.ShardQuery, read bool, fl *inflight) (*sqltypes.Result, error) {
	if conn := s.HeldConn(q.Shard); conn != nil {
		return s.RunHeld(ctx, q, conn)
	}
	t, err := s.sh.Cluster.Route(ctx, q.Shard, read, &s.Hint)
	if err != nil {
		return nil, err
	}
	conn, err := t.Pool.GetFor(ctx, s.State, uint64(s.ID))
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
	res, err := s.ExecOn(ctx, conn, q.Shard, q.SQL, "")
	fl.done(conn, nil)
	if s.Reserving != "" && !conn.Broken() {
		s.Keep(q.Shard, conn)
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
func (s *Session) ExecOn(ctx context.Context, conn *backend.Conn, shard, sql, pre string) (*sqltypes.Result, error) {
	if err := s.Track(conn); err != nil {
		return nil, err // killed (kill.go)
	}
	defer s.Untrack(conn)
	if s.Vars.Mode&sqlmode.NoBackslashEscapes != 0 {
		// The proxy's text is the default mode's; the server reads the
		// session's.
		sql = sqlmode.Denormalize(sql, s.Vars.Mode)
	}
	if s.Infile != nil {
		return s.execInfile(ctx, conn, shard, sql, pre)
	}
	if s.Raw != nil {
		if err := s.rawBefore(ctx, conn, shard); err != nil {
			return nil, err
		}
		defer s.rawAfter(ctx, conn)
	}
	o := backend.ExecOptions{DB: s.DBOn(shard), State: s.State, Pre: pre, MaxRows: s.sh.MaxRows, Timeout: s.sh.QueryTimeout}
	if s.WantAll {
		all, warn, err := conn.ExecAll(ctx, sql, o)
		if len(all) == 0 {
			return nil, err
		}
		s.Extra, s.ExtraErr = all[1:], err
		if warn > 0 {
			s.CollectWarnings(conn)
		}
		return all[0], nil
	}
	res, warn, err := conn.Exec(ctx, sql, o)
	if err == nil {
		if warn > 0 {
			s.CollectWarnings(conn)
		}
		s.foundRowsAfter(conn)
	}
	return res, err
}

// collectWarnings fetches SHOW WARNINGS from the connection that ran the
// statement, before another session can use it: warnings live on backend
// connections, and the client asks for them through its own session.
func (s *Session) CollectWarnings(conn *backend.Conn) {
	res, err := conn.Warnings()
	if err != nil || res == nil {
		return
	}
	more := 0
	if len(res.Rows) >= 64 {
		// SHOW WARNINGS lists at most max_error_count (64) of them; the
		// client's warning count is the server's.
		if c, _, err := conn.Exec(context.Background(), "SELECT @@warning_count", backend.ExecOptions{State: conn.State()}); err == nil && len(c.Rows) == 1 {
			if n, err := c.Rows[0][0].ToInt(); err == nil && n > len(res.Rows) {
				more = n - len(res.Rows)
			}
		}
	}
	s.WMu.Lock()
	s.Warnings = append(s.Warnings, res.Rows...)
	s.WarnMore += more
	s.WMu.Unlock()
}

// FoldWarnings implements engine.WarningFolder: the warnings of the last
// n queries, each query's together (CollectWarnings appends them so),
// become one query's when every query gave the same list.
func (s *Session) FoldWarnings(n int) {
	s.WMu.Lock()
	defer s.WMu.Unlock()
	w := s.Warnings
	if n < 2 || len(w) == 0 || len(w)%n != 0 || s.WarnMore != 0 {
		return
	}
	k := len(w) / n
	for i := k; i < len(w); i++ {
		if !sameRow(w[i], w[i%k]) {
			return
		}
	}
	s.Warnings = w[:k]
}

func sameRow(a, b sqltypes.Row) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].ToString() != b[i].ToString() {
			return false
		}
	}
	return true
}

// executeInTx runs the queries on the transaction's connection, pinning
// one on the first statement. A transaction stays on one shard: a query for
// another gets an error naming both.
func (s *Session) executeInTx(ctx context.Context, qs []engine.ShardQuery, out []*sqltypes.Result) error {
	if s.TxLost != nil {
		return s.TxLost
	}
	if err := s.moveRefOnly(ctx, qs); err != nil {
		return err
	}
	shard := s.TxShard
	for _, q := range qs {
		if shard == "" {
			shard = q.Shard
		}
		if q.Shard != shard {
			return s.executeSpanning(ctx, qs, out)
		}
	}
	if len(s.Branches) > 0 {
		return s.executeSpanning(ctx, qs, out)
	}
	pre := ""
	if s.Tx == nil {
		var err error
		if pre, err = s.openFirst(ctx, shard); err != nil {
			return err
		}
		if s.txNextMoved != "" {
			// The characteristics of the transaction moved here.
			pre, s.TxNext, s.txNextMoved = s.txNextMoved+";"+pre, s.txNextMoved, ""
		}
		s.txRefOnly = true
	}
	if !s.RefRead || !allReads(qs) {
		s.txRefOnly = false
	}
	m := s.sh.Metrics.Shard(shard)
	// A statement of several queries that writes is atomic, as on one
	// server (see executeSpanning).
	guard := stmtGuarded(qs)
	var ran []*backend.Conn
	replayLen := len(s.replay)
	if guard {
		pre = joinSQL(pre, "SAVEPOINT "+stmtSavepoint)
		if s.replayOn {
			s.replay = append(s.replay, replayed{sql: "SAVEPOINT " + stmtSavepoint, fp: fingerprint(&sqltypes.Result{})})
		}
	}
	for i, q := range qs {
		start := time.Now()
		res, err := s.ExecOn(ctx, s.Tx, shard, q.SQL, pre)
		pre = ""
		if m != nil {
			m.Observe(start, err)
		}
		if err != nil {
			if s.Tx.Broken() {
				s.TxLost = sqlerror.NewSQLErrorf(sqlerror.CRServerLost, sqlerror.SSUnknownSQLState,
					"the transaction on shard %s was lost (%v): ROLLBACK and retry it", shard, mysqlerr.From(err).Message)
				if s.IsReserved(s.Tx) {
					// Its temporary tables and locks went with it: say so.
					err = s.LostReservedErr(shard, mysqlerr.From(err).Message)
				}
				s.ReleaseTx(err)
				return err
			}
			var se *sqlerror.SQLError
			if errors.As(err, &se) && se.Number() == sqlerror.ERLockDeadlock {
				// MariaDB rolled the whole transaction back.
				s.rolledBack(s.Tx)
				return err
			}
			return s.undoStatement(ran, replayLen, err)
		}
		if guard {
			ran = []*backend.Conn{s.Tx}
		}
		out[i] = res
		if !q.Read {
			s.TxWrote = true
		}
		if s.replayOn {
			s.note(q, res)
		}
		if res.StatusFlags&mysql.ServerStatusInTrans == 0 {
			// The statement ended the transaction on the server (an
			// implicit commit): the session's transaction is over too.
			s.ReleaseTx(nil)
			s.ExplicitTx = false
			if i < len(qs)-1 {
				return s.executeInTx(ctx, qs[i+1:], out[i+1:])
			}
		}
	}
	return nil
}

// moveRefOnly moves a transaction that has run only plain reads of
// reference tables on its shard (any shard answers those, and the first
// picked one) to the other shard a statement needs, instead of spanning
// the two: rolled back where it was (nothing there is its own: no write,
// no lock), begun again, with the same characteristics, on the shard of
// the statement. On one server those reads took the transaction's
// snapshot; here it is taken again on the new shard, as when a
// transaction becomes distributed (README: Isolation, said plainly). Only
// in transaction_mode single, where spanning is refused: twopc spans.
func (s *Session) moveRefOnly(ctx context.Context, qs []engine.ShardQuery) error {
	if !s.txRefOnly || s.Tx == nil || s.TxXA || s.XID != 0 || len(s.Branches) > 0 || s.IsReserved(s.Tx) ||
		s.txMode() == config.TxTwoPC || len(qs) == 0 {
		return nil
	}
	to := qs[0].Shard
	if to == s.TxShard || !oneShard(qs) {
		return nil
	}
	begin, next := s.TxBegin, s.TxNext
	if _, _, err := s.Tx.Exec(ctx, EndSQL(false), backend.ExecOptions{State: s.State, Timeout: s.sh.QueryTimeout}); err != nil {
		s.Tx.MarkBroken()
	}
	s.ReleaseTx(nil)
	s.TxBegin, s.txNextMoved = begin, next
	return nil
}

// TxUsed records that a statement ran on the transaction's connection
// outside executeInTx (a relayed prepared CALL or cursor): the transaction
// may no longer move (moveRefOnly).
func (s *Session) TxUsed() { s.txRefOnly = false }

// openFirst opens the transaction's first shard and returns what begins
// it there (sent with the first statement).
func (s *Session) openFirst(ctx context.Context, shard string) (string, error) {
	t, err := s.sh.Cluster.Route(ctx, shard, false, &s.Hint)
	if err != nil {
		return "", err
	}
	var conn *backend.Conn
	if rc := s.Reserved[shard]; rc != nil {
		// The transaction begins on the session's reserved connection.
		if t.Pool != rc.Conn.Pool() {
			if t.Done != nil {
				t.Done(nil)
			}
			return "", s.LostHeld(shard, rc.Conn, "the shard's primary is now another server")
		}
		conn = rc.Conn
	} else if conn, err = t.Pool.GetFor(ctx, s.State, uint64(s.ID)); err != nil {
		if t.Done != nil {
			t.Done(err)
		}
		return "", err
	}
	s.Tx, s.TxShard, s.TxTarget = conn, shard, t
	s.TxNext = s.Vars.NextTxSQL()
	return s.Vars.BeginSQL(s.firstBegin(ctx, shard)), nil
}

func crossShardErr(a, b, what string) error {
	return sqlerror.NewSQLErrorf(sqlerror.ERNotSupportedYet, sqlerror.SSClientError,
		"transaction on shard %s cannot also touch shard %s: %s would span shards %s and %s, and this database's transaction_mode is single (COMMIT or ROLLBACK first; transaction_mode twopc, with a coordinator, makes such transactions atomic)", a, b, what, a, b)
}

// releaseTx gives the pinned connection back, unless the session holds it
// as its reserved connection (which it keeps while it is sound).
func (s *Session) ReleaseTx(err error) {
	if s.Tx == nil {
		return
	}
	if s.TxXA {
		// An XA branch not finished by EndTx (an error path): dropping
		// its connection rolls it back on the server.
		s.Tx.MarkBroken()
	}
	if s.XID != 0 && s.sh.XA != nil {
		// Out of the deadlock check's list before its connections can
		// serve another session (deadlock.go).
		s.sh.XA.Transactions.remove(s.XID)
	}
	if !s.IsReserved(s.Tx) {
		s.Tx.Pool().Put(s.Tx)
	} else if s.Tx.Broken() {
		s.DropReserved(s.TxShard)
	}
	if s.TxTarget.Done != nil {
		s.TxTarget.Done(err)
	}
	s.releaseBranches(err)
	s.Tx, s.TxShard, s.TxTarget = nil, "", backend.Target{}
	s.TxBegin = "BEGIN"
	s.txRefOnly, s.txNextMoved = false, ""
}

// endTx commits or rolls back. With nothing pinned there is nothing to send.
func (s *Session) EndTx(commit bool) error {
	s.ExplicitTx = false
	s.Vars.EndTx()
	if lost := s.TxLost; lost != nil {
		s.TxLost = nil
		s.TxBegin = "BEGIN"
		if commit {
			return lost
		}
		return nil
	}
	if s.Tx == nil {
		s.TxBegin = "BEGIN"
		return nil
	}
	if s.TxXA || len(s.Branches) > 0 {
		s.TxBegin = "BEGIN"
		return s.endSpanning(commit, nil)
	}
	s.spanned = false
	sql := EndSQL(false)
	if commit && !debugDropCommit() {
		sql = EndSQL(true)
	}
	m := s.sh.Metrics.Shard(s.TxShard)
	start := time.Now()
	_, _, err := s.Tx.Exec(context.Background(), sql, backend.ExecOptions{State: s.State, Timeout: s.sh.QueryTimeout})
	if m != nil {
		m.Observe(start, err)
	}
	if err != nil && s.Tx.Broken() && s.IsReserved(s.Tx) {
		err = s.LostReservedErr(s.TxShard, mysqlerr.From(err).Message)
	}
	s.ReleaseTx(err)
	return err
}

// reset starts the session over for COM_RESET_CONNECTION: the transaction
// is rolled back, variables, user variables, prepared statements and
// warnings are dropped; the current database stays.
func (s *Session) Reset() {
	s.Close()
	s.ExplicitTx, s.TxLost, s.TxBegin = false, nil, "BEGIN"
	s.Autocommit = true
	s.State = nil
	if s.HandshakeNames != "" {
		s.State = s.sh.Cluster.States.With(nil, "names", s.HandshakeNames)
	}
	s.UDV = nil
	s.LastInsertID, s.RowCount, s.FoundRows = 0, 0, 0
	s.Vars = Vars{InsertIDs: s.Vars.InsertIDs}
	s.ClearWarnings()
	s.Hint.ForcePrimary = false
	s.Hint.Consistency = ""
}

// close ends the session: an open transaction is rolled back, reserved
// connections are closed.
func (s *Session) Close() {
	if s.Tx != nil {
		_ = s.EndTx(false)
	}
	s.ReleaseReserved()
}

func (s *Session) String() string { return fmt.Sprintf("session %d", s.ID) }

// readConsistency is the session's level, for SELECT @@strata_read_consistency.
func (s *Session) ReadConsistency() string {
	switch {
	case s.Hint.Consistency != "":
		return s.Hint.Consistency
	case s.sh.RW != nil:
		return string(s.sh.RW.DefaultConsistency())
	}
	return "strong" // no splitting: everything reads the primary
}

func (s *Session) ClearWarnings() {
	s.PrevWarnings, s.PrevErrors, s.QuietCount = 0, 0, false
	if len(s.Warnings) > 0 || s.WarnMore > 0 {
		s.WMu.Lock()
		s.PrevWarnings = len(s.Warnings) + s.WarnMore
		for _, w := range s.Warnings {
			if w[0].ToString() == "Error" {
				s.PrevErrors++
			}
		}
		s.Warnings, s.WarnMore = s.Warnings[:0], 0
		s.WMu.Unlock()
	}
}

// recordError keeps a failed statement's error for SHOW WARNINGS / ERRORS.
func (s *Session) RecordError(err error) {
	se := mysqlerr.From(err)
	s.QuietCount = false
	s.WMu.Lock()
	s.Warnings = append(s.Warnings[:0], sqltypes.Row{sqltypes.NewVarChar("Error"), sqltypes.NewUint32(uint32(se.Number())), sqltypes.NewVarChar(se.Message)})
	s.WarnMore = 0
	s.WMu.Unlock()
}

// SetUser names the session's user (SHOW PROCESSLIST reads it from other
// sessions' goroutines).
func (s *Session) SetUser(user string) {
	s.curMu.Lock()
	s.User = user
	s.curMu.Unlock()
}

// WarningCount is the number of warnings of the last statement.
func (s *Session) WarningCount() uint16 {
	if s.QuietCount {
		return 0
	}
	s.WMu.Lock()
	defer s.WMu.Unlock()
	if n := len(s.Warnings) + s.WarnMore; n < 0xffff {
		return uint16(n)
	}
	return 0xffff
}
