package session

import (
	"context"
	"errors"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"vitess.io/vitess/go/mysql"
	"vitess.io/vitess/go/mysql/sqlerror"
	"vitess.io/vitess/go/sqltypes"

	"github.com/strata-db/strata/shardproxy/backend"
	"github.com/strata-db/strata/shardproxy/config"
	"github.com/strata-db/strata/shardproxy/engine"
	"github.com/strata-db/strata/shardproxy/mysqlerr"
	"github.com/strata-db/strata/shardproxy/xa"
)

// Cross-shard transactions. In a database whose transaction_mode is twopc
// (the default with a coordinator), a transaction begins exactly as
// without one: BEGIN on its first shard, riding with its first statement,
// and COMMIT at the end, no extra round trip. The session notes what it
// sends the first shard (the statement and a fingerprint of its answer).
// When the transaction reaches a second shard it becomes distributed: the
// new shard's branch opens with XA START under a transaction id the
// coordinator handed out in advance; the first shard, if it wrote (or when
// it comes to write), is turned into an XA branch too: its plain
// transaction is rolled back and its statements run again under XA START,
// and if any answers differently (another transaction changed the rows
// meanwhile) the transaction fails with a serialization error (1213,
// SQLSTATE 40001) for the client to retry, as after a deadlock. COMMIT
// then runs the two-phase commit (package xa). In multi mode each shard
// gets a plain transaction and COMMIT commits them one by one (not
// atomic). In single mode a second shard is refused with 1235.

// XA is what the sessions of a proxy with a coordinator share.
type XA struct {
	Committer *xa.Committer
	IDs       TxIDs
	// Transactions lists the distributed transactions in flight on this
	// proxy (SHOW STRATA TRANSACTIONS).
	Transactions *Transactions
	// Resolver and Coordinator, for SHOW STRATA TRANSACTIONS: what the
	// last recovery pass left in doubt, and the decisions not completed.
	Resolver    *xa.Resolver
	Coordinator xa.Coordinator
	Metrics     *xa.Metrics
}

// TxIDs hands out transaction ids (the coordinator client).
type TxIDs interface {
	NextTxID(ctx context.Context) (uint64, error)
}

// Branch is one more shard's part of a transaction, beyond its first.
type Branch struct {
	Shard  string
	Conn   *backend.Conn
	Target backend.Target
	// Plain: a BEGIN transaction (multi mode), not an XA branch.
	Plain bool
	Wrote bool
}

// Transactions is the proxy's set of distributed transactions in flight.
type Transactions struct {
	mu  sync.Mutex
	txs map[uint64]*TxInfo
}

// TxInfo describes one distributed transaction in flight.
type TxInfo struct {
	ID      uint64
	Session uint32
	Shards  []string
	State   string // "active", "committing", "rolling back"
	Started time.Time
	// sess and conns: the session and the server connections the
	// transaction works on, for the deadlock check (deadlock.go).
	sess  *Session
	conns []*backend.Conn
}

// NewTransactions makes an empty set.
func NewTransactions() *Transactions { return &Transactions{txs: map[uint64]*TxInfo{}} }

func (t *Transactions) set(info TxInfo) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if old, ok := t.txs[info.ID]; ok {
		info.Started = old.Started
	} else {
		info.Started = time.Now()
	}
	t.txs[info.ID] = &info
}

func (t *Transactions) remove(id uint64) {
	t.mu.Lock()
	delete(t.txs, id)
	t.mu.Unlock()
}

// List returns the transactions in flight, oldest first.
func (t *Transactions) List() []TxInfo {
	t.mu.Lock()
	out := make([]TxInfo, 0, len(t.txs))
	for _, i := range t.txs {
		c := *i
		c.Shards = slices.Clone(i.Shards)
		out = append(out, c)
	}
	t.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// txMode is the current database's transaction_mode; single for a
// database that is not sharded (it lives on one shard).
func (s *Session) txMode() string {
	if s.sh.TxMode == nil || s.DB == "" {
		return config.TxSingle
	}
	if d := s.sh.VSchema.Databases[s.DB]; d == nil || !d.Sharded {
		return config.TxSingle
	}
	mode := s.sh.TxMode(s.DB)
	if mode == config.TxTwoPC && s.sh.XA == nil {
		return config.TxSingle
	}
	return mode
}

// firstBegin is what opens the transaction's first shard: the client's
// BEGIN. In twopc mode, when that BEGIN takes no options (XA START takes
// none), the session starts noting what the first shard runs, in case the
// transaction spans shards; or, when the session's last transaction
// spanned shards, the transaction begins as an XA branch at once: the
// next one probably spans shards too, and running the first shard's
// writes again when it does would cost a round trip and the server's
// work twice. If it stays on one shard it commits with XA COMMIT ... ONE
// PHASE, in one round trip as COMMIT.
func (s *Session) firstBegin(ctx context.Context, shard string) string {
	if s.txMode() != config.TxTwoPC {
		return s.TxBegin
	}
	rest, ok := plainBegin(s.TxBegin)
	if !ok {
		return s.TxBegin
	}
	if s.spanned {
		if id, err := s.sh.XA.IDs.NextTxID(ctx); err == nil {
			s.XID, s.TxXA, s.early = id, true, true
			return xaAccess(s.TxBegin) + xa.XID{TxID: id, Shard: shard}.Start() + rest
		}
	}
	s.replayOn, s.replayRest = true, rest
	return s.TxBegin
}

// Limits on what a transaction's first shard may run before it can no
// longer be made part of a distributed transaction.
const (
	maxReplay      = 256
	maxReplayBytes = 1 << 20
)

// replayed is one statement the first shard ran, with a fingerprint of
// its answer.
type replayed struct {
	sql string
	fp  uint64
	// infile served the statement when it was a LOAD DATA LOCAL's part
	// (loaddata.go): only the statement running can send its file again.
	infile *Infile
}

// note records a statement the plain first shard ran, unless it is a
// plain read: those are not run again (see upgradeFirst).
func (s *Session) note(q engine.ShardQuery, res *sqltypes.Result) {
	if !s.replayOn || q.Read {
		return
	}
	sql := q.SQL
	s.replayBytes += len(sql)
	if len(s.replay) >= maxReplay || s.replayBytes > maxReplayBytes {
		s.replayOn, s.replayOver, s.replay = false, true, nil
		return
	}
	s.replay = append(s.replay, replayed{sql: sql, fp: fingerprint(res), infile: s.Infile})
}

// fingerprint sums up an answer: rows affected and insert id, and every
// value of every row.
func fingerprint(r *sqltypes.Result) uint64 {
	const prime = 1099511628211
	h := uint64(14695981039346656037)
	mix := func(b byte) { h = (h ^ uint64(b)) * prime }
	for _, v := range []uint64{r.RowsAffected, r.InsertID, uint64(len(r.Rows))} {
		for i := 0; i < 8; i++ {
			mix(byte(v >> (8 * i)))
		}
	}
	for _, row := range r.Rows {
		for _, v := range row {
			if v.IsNull() {
				mix(0xff)
				continue
			}
			for _, b := range v.Raw() {
				mix(b)
			}
			mix(0)
		}
	}
	return h
}

// upgradeFirst makes the first shard's plain transaction an XA branch:
// ROLLBACK, then XA START and the same writes and locking reads again,
// each of which must answer as before. Plain reads are not run again:
// they took no locks, so what they returned may have changed since
// whether or not they run again; on this shard the transaction's later
// reads see what was committed up to this point (its snapshot moves, as
// under READ COMMITTED, once).
func (s *Session) upgradeFirst(ctx context.Context) error {
	shard, conn := s.TxShard, s.Tx
	if !s.replayOn {
		if s.replayOver {
			return sqlerror.NewSQLErrorf(sqlerror.ERNotSupportedYet, sqlerror.SSClientError,
				"the transaction ran more than %d statements (or %d bytes) on shard %s before it spanned shards, too many to make it distributed: split it, or touch every shard early", maxReplay, maxReplayBytes, shard)
		}
		if b, _, _ := strings.Cut(s.TxBegin, ";"); beginsReadOnly(b) {
			// What the first shard would answer a write.
			return sqlerror.NewSQLError(1792, "25006", "Cannot execute statement in a READ ONLY transaction")
		}
		return plainFirstErr(shard)
	}
	for _, r := range s.replay {
		if r.infile != nil && r.infile != s.Infile {
			return sqlerror.NewSQLErrorf(sqlerror.ERNotSupportedYet, sqlerror.SSClientError,
				"the transaction ran LOAD DATA LOCAL INFILE on shard %s before it spanned shards, and the file cannot be sent again to make the transaction distributed: touch every shard before the load, or load in a transaction of its own", shard)
		}
	}
	fail := func(err error) error {
		conn.MarkBroken()
		s.ReleaseTx(err)
		s.ExplicitTx = false
		// The client's retry begins as an XA branch at once: nothing to
		// run again. What answers differently every time it runs (an
		// AUTO_INCREMENT value) would otherwise fail every retry.
		s.spanned = true
		return err
	}
	// One round trip: the plain transaction ends and the branch begins
	// with the first statement run again.
	pre := xaAccess(s.TxBegin) + xa.XID{TxID: s.XID, Shard: shard}.Start() + s.replayRest
	if s.TxNext != "" {
		pre = s.TxNext + ";" + pre
	}
	pre = EndSQL(false) + ";" + pre
	if len(s.replay) == 0 {
		if _, _, err := conn.Exec(ctx, "DO 0", backend.ExecOptions{DB: s.DBOn(shard), State: s.State, Pre: pre, Timeout: s.sh.QueryTimeout}); err != nil {
			return fail(err)
		}
	}
	for _, r := range s.replay {
		o := backend.ExecOptions{DB: s.DBOn(shard), State: s.State, Pre: pre, MaxRows: s.sh.MaxRows, Timeout: s.sh.QueryTimeout}
		var res *sqltypes.Result
		var err error
		if r.infile != nil {
			// This statement's LOAD DATA part: its file again.
			res, _, err = conn.ExecLocal(ctx, r.sql, o, r.infile.File(shard, r.sql))
		} else {
			res, _, err = conn.Exec(ctx, r.sql, o)
		}
		pre = ""
		if err == nil && fingerprint(res) != r.fp {
			err = sqlerror.NewSQLErrorf(sqlerror.ERLockDeadlock, sqlerror.SSLockDeadlock,
				"the transaction had to restart on shard %s to span shards and found the data changed meanwhile: retry the transaction", shard)
		}
		if err != nil {
			s.sh.XA.Metrics.Upgraded(false)
			var se *sqlerror.SQLError
			if !errors.As(err, &se) || se.Number() != sqlerror.ERLockDeadlock {
				err = sqlerror.NewSQLErrorf(sqlerror.ERLockDeadlock, sqlerror.SSLockDeadlock,
					"the transaction had to restart on shard %s to span shards and failed there (%v): retry the transaction", shard, mysqlerr.From(err).Message)
			}
			return fail(err)
		}
	}
	s.TxXA, s.replayOn, s.replay = true, false, nil
	s.sh.XA.Metrics.Upgraded(true)
	return nil
}

// plainBegin reports whether begin is BEGIN or START TRANSACTION without
// options but READ WRITE (perhaps followed by SAVEPOINTs, ";"-separated),
// what an XA branch can begin as (with xaAccess), and returns what follows
// it.
func plainBegin(begin string) (string, bool) {
	for _, p := range []string{"begin", "start transaction read write", "start transaction"} {
		if len(begin) >= len(p) && strings.EqualFold(begin[:len(p)], p) {
			rest := begin[len(p):]
			if rest == "" || rest[0] == ';' {
				return rest, true
			}
		}
	}
	return "", false
}

// executeSpanning runs queries of a transaction that spans (or is about
// to span) shards, one at a time, each on its shard's branch.
func (s *Session) executeSpanning(ctx context.Context, qs []engine.ShardQuery, out []*sqltypes.Result) error {
	mode := s.txMode()
	if mode == config.TxSingle {
		shard := s.TxShard
		for _, q := range qs {
			if shard == "" {
				shard = q.Shard
			} else if q.Shard != shard {
				if s.TxShard == "" {
					return crossShardErr(shard, q.Shard, "this statement")
				}
				return crossShardErr(shard, q.Shard, "the transaction")
			}
		}
	}
	// A statement is atomic on one server: when one of its rows fails,
	// MariaDB undoes the rest, and the transaction goes on. A statement
	// that writes through several queries (several shards) gets the same:
	// each connection it reaches takes a savepoint as its first query
	// begins (riding with it, no round trip), and when a query fails the
	// connections whose queries ran go back to it.
	guard := stmtGuarded(qs)
	var marked, ran []*backend.Conn
	replayLen := len(s.replay)
	for i, q := range qs {
		conn, pre, err := s.branchFor(ctx, q, mode)
		if err != nil {
			return s.undoStatement(ran, replayLen, err)
		}
		if guard && !slices.Contains(marked, conn) {
			marked = append(marked, conn)
			pre = joinSQL(pre, "SAVEPOINT "+stmtSavepoint)
			if conn == s.Tx && s.replayOn {
				// Run again, with the statement, if the shard is made an
				// XA branch.
				s.replay = append(s.replay, replayed{sql: "SAVEPOINT " + stmtSavepoint, fp: fingerprint(&sqltypes.Result{})})
			}
		}
		m := s.sh.Metrics.Shard(q.Shard)
		start := time.Now()
		res, err := s.ExecOn(ctx, conn, q.Shard, q.SQL, pre)
		if m != nil {
			m.Observe(start, err)
		}
		if err != nil {
			if s.kill.deadlock.Load() {
				// The deadlock check chose this transaction to break a
				// cycle of lock waits across shards (deadlock.go): it is
				// rolled back whole, as MariaDB does with a deadlock's
				// victim.
				return s.abandonDeadlocked()
			}
			if conn.Broken() {
				s.TxLost = sqlerror.NewSQLErrorf(sqlerror.CRServerLost, sqlerror.SSUnknownSQLState,
					"the transaction's branch on shard %s was lost (%v): ROLLBACK and retry it", q.Shard, mysqlerr.From(err).Message)
				s.ReleaseTx(err)
				return err
			}
			var se *sqlerror.SQLError
			if errors.As(err, &se) && (se.Number() == sqlerror.ERLockDeadlock || se.Number() == 1402 || se.Number() == 1614) {
				// The shard rolled its branch back: the whole transaction
				// goes, as on one server, and the connections stay (a
				// reserved one keeps its named locks and temporary tables).
				s.rolledBack(conn)
				return err
			}
			return s.undoStatement(ran, replayLen, err)
		}
		if guard && !slices.Contains(ran, conn) {
			ran = append(ran, conn)
		}
		out[i] = res
		if q.Shard == s.TxShard && !s.TxXA {
			s.note(q, res)
		}
		if !q.Read {
			if q.Shard == s.TxShard {
				s.TxWrote = true
			} else {
				for _, b := range s.Branches {
					if b.Shard == q.Shard {
						b.Wrote = true
					}
				}
			}
		}
		if res.StatusFlags&mysql.ServerStatusInTrans == 0 && mode == config.TxMulti {
			// An implicit commit on one shard of a multi transaction: the
			// others stay open; the client's COMMIT ends them.
			continue
		}
	}
	return nil
}

// stmtSavepoint is the savepoint a statement of several queries that
// writes takes on each connection it reaches (executeSpanning).
const stmtSavepoint = "strata_stmt"

// stmtGuarded: the queries are one statement's, more than one, and write.
func stmtGuarded(qs []engine.ShardQuery) bool {
	return len(qs) > 1 && !allReads(qs)
}

func joinSQL(a, b string) string {
	if a == "" {
		return b
	}
	return a + ";" + b
}

// undoStatement takes back what the statement failing with err did on the
// connections in ran (to stmtSavepoint), so that none of its rows stays in
// the transaction, and returns err. If a connection cannot go back, the
// transaction is lost: what it holds is not what the client was told.
func (s *Session) undoStatement(ran []*backend.Conn, replayLen int, err error) error {
	if s.Tx == nil {
		// The transaction itself went with the error (a first shard that
		// could not be made an XA branch): its connections are gone.
		return err
	}
	if s.replayOn && len(s.replay) > replayLen {
		// What ran on the plain first shard is undone: not to run again.
		s.replay = s.replay[:replayLen]
	}
	for _, c := range ran {
		if c.Broken() {
			continue
		}
		if _, _, uerr := c.Exec(context.Background(), "ROLLBACK TO SAVEPOINT "+stmtSavepoint, backend.ExecOptions{State: s.State, Timeout: s.sh.QueryTimeout}); uerr != nil {
			c.MarkBroken()
			s.TxLost = sqlerror.NewSQLErrorf(sqlerror.CRServerLost, sqlerror.SSUnknownSQLState,
				"a statement failed on one shard (%v) and its part on another could not be undone (%v): the transaction is lost, ROLLBACK and retry it", mysqlerr.From(err).Message, mysqlerr.From(uerr).Message)
			s.ReleaseTx(err)
			return err
		}
	}
	return err
}

// branchFor returns the connection of q's shard in the transaction,
// opening the shard's branch if it has none yet (pre then begins it).
func (s *Session) branchFor(ctx context.Context, q engine.ShardQuery, mode string) (*backend.Conn, string, error) {
	if s.Tx == nil {
		pre, err := s.openFirst(ctx, q.Shard)
		return s.Tx, pre, err
	}
	twopc := mode == config.TxTwoPC
	if q.Shard == s.TxShard {
		if twopc && !s.TxXA && !q.Read && len(s.Branches) > 0 {
			// The first shard comes to write in a distributed transaction.
			if err := s.upgradeFirst(ctx); err != nil {
				return nil, "", err
			}
		}
		return s.Tx, "", nil
	}
	for _, b := range s.Branches {
		if b.Shard == q.Shard {
			return b.Conn, "", nil
		}
	}
	if twopc && s.XID == 0 {
		id, err := s.sh.XA.IDs.NextTxID(ctx)
		if err != nil {
			return nil, "", sqlerror.NewSQLErrorf(sqlerror.ERNotSupportedYet, sqlerror.SSClientError,
				"the transaction cannot span shards: no transaction id from the coordinator (%v)", err)
		}
		s.XID = id
	}
	if twopc && !s.TxXA && s.TxWrote {
		if err := s.upgradeFirst(ctx); err != nil {
			return nil, "", err
		}
	}
	t, err := s.sh.Cluster.Route(ctx, q.Shard, false, &s.Hint)
	if err != nil {
		return nil, "", err
	}
	var conn *backend.Conn
	if rc := s.Reserved[q.Shard]; rc != nil {
		if t.Pool != rc.Conn.Pool() {
			if t.Done != nil {
				t.Done(nil)
			}
			return nil, "", s.LostHeld(q.Shard, rc.Conn, "the shard's primary is now another server")
		}
		conn = rc.Conn
	} else if conn, err = t.Pool.GetFor(ctx, s.State, uint64(s.ID)); err != nil {
		if t.Done != nil {
			t.Done(err)
		}
		return nil, "", err
	}
	b := &Branch{Shard: q.Shard, Conn: conn, Target: t, Plain: !twopc}
	s.Branches = append(s.Branches, b)
	begin, _, _ := strings.Cut(s.TxBegin, ";") // not the savepoints queued behind it
	pre := begin
	if twopc || !strings.HasPrefix(strings.ToLower(begin), "start transaction") {
		pre = "BEGIN"
	}
	if twopc {
		pre = xa.XID{TxID: s.XID, Shard: q.Shard}.Start()
	}
	if twopc {
		pre = xaAccess(begin) + pre
	}
	if s.TxNext != "" {
		pre = s.TxNext + ";" + pre
	}
	if twopc {
		s.sh.XA.Transactions.set(TxInfo{ID: s.XID, Session: s.ID, Shards: s.txShards(), State: "active", sess: s, conns: s.txConns()})
	}
	return conn, pre, nil
}

// xaAccess is what gives an XA branch the access mode the client's START
// TRANSACTION (begin, as vitess prints it) asked for: XA START takes no
// options, so a SET TRANSACTION before it. READ ONLY must hold on every
// branch (or a write reaching another shard would succeed); READ WRITE
// overrides a session's transaction_read_only = 1, as on the first shard.
func xaAccess(begin string) string {
	begin, _, _ = strings.Cut(begin, ";")
	switch b := strings.ToLower(begin); {
	case strings.Contains(b, "read only"):
		return "SET TRANSACTION READ ONLY;"
	case strings.Contains(b, "read write"):
		return "SET TRANSACTION READ WRITE;"
	}
	return ""
}

// beginsReadOnly: begin (the client's START TRANSACTION, as vitess
// prints it) asks for a read-only transaction.
func beginsReadOnly(begin string) bool {
	return strings.Contains(strings.ToLower(begin), "read only")
}

func plainFirstErr(shard string) error {
	return sqlerror.NewSQLErrorf(sqlerror.ERNotSupportedYet, sqlerror.SSClientError,
		"the transaction began as a plain transaction on shard %s (START TRANSACTION with options, or no coordinator answered) and cannot write once it spans shards: begin it with BEGIN", shard)
}

// txConns: the transaction's connections, its first shard's first.
func (s *Session) txConns() []*backend.Conn {
	out := make([]*backend.Conn, 0, 1+len(s.Branches))
	if s.Tx != nil {
		out = append(out, s.Tx)
	}
	for _, b := range s.Branches {
		out = append(out, b.Conn)
	}
	return out
}

func (s *Session) txShards() []string {
	out := make([]string, 0, 1+len(s.Branches))
	if s.TxShard != "" {
		out = append(out, s.TxShard)
	}
	for _, b := range s.Branches {
		out = append(out, b.Shard)
	}
	return out
}

// endSpanning commits or rolls back a transaction that has XA branches or
// more than one shard. rolledBack, if not nil, is the connection whose
// server already rolled its branch back (a deadlock): XA END fails there,
// so that branch gets XA ROLLBACK alone.
func (s *Session) endSpanning(commit bool, rolledBack *backend.Conn) error {
	ctx := context.Background()
	distributed := len(s.Branches) > 0
	var xaBranches []xa.Branch
	type plain struct {
		shard string
		conn  *backend.Conn
		wrote bool
	}
	var plains []plain
	wrap := func(c *backend.Conn) xa.BackendConn {
		return xa.BackendConn{C: c, State: s.State, Timeout: s.sh.QueryTimeout}
	}
	if s.TxXA {
		xaBranches = append(xaBranches, xa.Branch{Shard: s.TxShard, Conn: wrap(s.Tx), Wrote: s.TxWrote, RolledBack: s.Tx == rolledBack})
	} else {
		plains = append(plains, plain{s.TxShard, s.Tx, s.TxWrote})
	}
	for _, b := range s.Branches {
		if b.Plain {
			plains = append(plains, plain{b.Shard, b.Conn, b.Wrote})
		} else {
			xaBranches = append(xaBranches, xa.Branch{Shard: b.Shard, Conn: wrap(b.Conn), Wrote: b.Wrote, RolledBack: b.Conn == rolledBack})
		}
	}
	if s.early {
		s.sh.XA.Metrics.Early(distributed)
	}
	s.spanned = distributed
	if distributed && s.XID != 0 {
		state := "committing"
		if !commit {
			state = "rolling back"
		}
		s.sh.XA.Transactions.set(TxInfo{ID: s.XID, Session: s.ID, Shards: s.txShards(), State: state, sess: s, conns: s.txConns()})
	}

	var err error
	// Plain transactions first: in twopc mode only a first shard that
	// read (its outcome changes nothing); in multi mode every shard, one
	// by one.
	var committed []string
	for _, p := range plains {
		doCommit := commit && err == nil
		_, _, e := p.conn.Exec(ctx, EndSQL(doCommit), backend.ExecOptions{State: s.State, Timeout: s.sh.QueryTimeout})
		switch {
		case e != nil && doCommit && (p.wrote || len(plains) > 1):
			p.conn.MarkBroken()
			if len(committed) > 0 {
				err = sqlerror.NewSQLErrorf(sqlerror.ERErrorDuringCommit, sqlerror.SSUnknownSQLState,
					"transaction_mode multi: COMMIT failed on shard %s after shards %s committed; the rest are rolled back (multi mode is not atomic): %v", p.shard, strings.Join(committed, ", "), mysqlerr.From(e).Message)
			} else {
				err = e
			}
		case e != nil:
			p.conn.MarkBroken()
		case doCommit:
			committed = append(committed, p.shard)
		}
	}
	if len(xaBranches) > 0 {
		if commit && err == nil {
			if cerr := s.sh.XA.Committer.Commit(ctx, s.XID, xaBranches); cerr != nil {
				err = commitErr(cerr, distributed)
			}
		} else {
			s.sh.XA.Committer.Rollback(ctx, s.XID, xaBranches)
		}
	}
	// Every branch is finished (or dropped): give the connections back.
	s.TxXA = false
	for _, b := range s.Branches {
		b.Plain = true // finished: ReleaseTx puts it back as it is
	}
	s.ReleaseTx(err)
	return err
}

// commitErr turns a commit failure into the client's error: the server's
// own for a transaction on one shard (as without the coordinator), and
// for a distributed one, XA_RBROLLBACK (1402) when it was rolled back or
// 1180 when its outcome is for recovery to settle, with the shard and
// step named.
func commitErr(err error, distributed bool) error {
	var ce *xa.CommitError
	if !errors.As(err, &ce) {
		return err
	}
	if !distributed {
		var se *sqlerror.SQLError
		if errors.As(ce.Err, &se) {
			return se
		}
		return sqlerror.NewSQLErrorf(sqlerror.CRServerLost, sqlerror.SSUnknownSQLState, "COMMIT on shard %s: %v", ce.Shard, ce.Err)
	}
	if ce.Outcome == xa.RolledBack {
		return sqlerror.NewSQLError(1402, "XA100", ce.Error())
	}
	return sqlerror.NewSQLError(sqlerror.ERErrorDuringCommit, sqlerror.SSUnknownSQLState, ce.Error())
}

// releaseBranches gives back the connections of the transaction's other
// shards. A branch not finished by endSpanning (an error path) has its
// connection dropped: the server rolls back what it held.
func (s *Session) releaseBranches(err error) {
	if s.XID != 0 && s.sh.XA != nil && len(s.Branches) > 0 {
		s.sh.XA.Transactions.remove(s.XID)
	}
	for _, b := range s.Branches {
		if !b.Plain {
			b.Conn.MarkBroken()
		}
		if !s.IsReserved(b.Conn) {
			b.Conn.Pool().Put(b.Conn)
		} else if b.Conn.Broken() {
			s.DropReserved(b.Shard)
		}
		if b.Target.Done != nil {
			b.Target.Done(err)
		}
	}
	s.Branches = nil
	s.XID, s.TxXA, s.TxWrote, s.TxNext, s.early = 0, false, false, "", false
	s.replayOn, s.replayOver, s.replay, s.replayRest, s.replayBytes = false, false, nil, "", 0
}

// needsAtomic: an autocommit statement that writes to more than one shard.
func needsAtomic(qs []engine.ShardQuery) bool {
	return !allReads(qs) && !oneShard(qs)
}

// executeAtomic runs an autocommit statement that writes to several
// shards as one distributed transaction: an XA branch per shard, the
// shards in parallel, then the two-phase commit. Any failure rolls every
// shard back.
func (s *Session) executeAtomic(ctx context.Context, qs []engine.ShardQuery) ([]*sqltypes.Result, error) {
	id, err := s.sh.XA.IDs.NextTxID(ctx)
	if err != nil {
		return nil, sqlerror.NewSQLErrorf(sqlerror.ERNotSupportedYet, sqlerror.SSClientError,
			"a statement writing to several shards runs as a distributed transaction, and no coordinator answered: %v", err)
	}
	var order []string
	byShard := map[string][]int{}
	for i, q := range qs {
		if _, ok := byShard[q.Shard]; !ok {
			order = append(order, q.Shard)
		}
		byShard[q.Shard] = append(byShard[q.Shard], i)
	}
	out := make([]*sqltypes.Result, len(qs))
	type opened struct {
		conn     *backend.Conn
		t        backend.Target
		reserved bool // the session's reserved connection there
		wrote    bool
		err      error
	}
	res := make([]opened, len(order))
	// The connections first, one shard at a time: a shard where the
	// session holds a connection (a named lock, sub-table or temporary
	// state) runs its branch there.
	var firstErr error
	for k, shard := range order {
		t, err := s.sh.Cluster.Route(ctx, shard, false, &s.Hint)
		if err != nil {
			firstErr = err
			break
		}
		if rc := s.Reserved[shard]; rc != nil {
			if t.Pool != rc.Conn.Pool() {
				if t.Done != nil {
					t.Done(nil)
				}
				firstErr = s.LostHeld(shard, rc.Conn, "the shard's primary is now another server")
				break
			}
			res[k] = opened{conn: rc.Conn, t: t, reserved: true}
			continue
		}
		conn, err := t.Pool.GetFor(ctx, s.State, uint64(s.ID))
		if err != nil {
			if t.Done != nil {
				t.Done(err)
			}
			firstErr = err
			break
		}
		res[k] = opened{conn: conn, t: t}
	}
	var conns []*backend.Conn
	for _, o := range res {
		if o.conn != nil {
			conns = append(conns, o.conn)
		}
	}
	s.sh.XA.Transactions.set(TxInfo{ID: id, Session: s.ID, Shards: order, State: "active", sess: s, conns: conns})
	defer s.sh.XA.Transactions.remove(id) // after a panic too
	var wg sync.WaitGroup
	run := func(k int) {
		shard, conn := order[k], res[k].conn
		pre := xa.XID{TxID: id, Shard: shard}.Start()
		m := s.sh.Metrics.Shard(shard)
		for _, i := range byShard[shard] {
			start := time.Now()
			r, err := s.ExecOn(ctx, conn, shard, qs[i].SQL, pre)
			pre = ""
			if m != nil {
				m.Observe(start, err)
			}
			if err != nil {
				res[k].err = err
				return
			}
			out[i] = r
			res[k].wrote = res[k].wrote || !qs[i].Read
		}
	}
	if firstErr == nil {
		for k := 1; k < len(order); k++ {
			wg.Add(1)
			go func() { defer wg.Done(); run(k) }()
		}
		run(0)
		wg.Wait()
	}

	// Listed in SHOW STRATA TRANSACTIONS while it commits or rolls back.
	state := "committing"
	if firstErr != nil || slices.ContainsFunc(res, func(o opened) bool { return o.err != nil }) {
		state = "rolling back"
	}
	s.sh.XA.Transactions.set(TxInfo{ID: id, Session: s.ID, Shards: order, State: state, sess: s, conns: conns})
	var branches []xa.Branch
	for k, o := range res {
		if o.err != nil && firstErr == nil {
			firstErr = o.err
		}
		if o.conn != nil {
			branches = append(branches, xa.Branch{Shard: order[k], Conn: xa.BackendConn{C: o.conn, State: s.State, Timeout: s.sh.QueryTimeout}, Wrote: o.wrote})
		}
	}
	if firstErr != nil && s.kill.deadlock.Load() {
		// A deadlock across shards, broken by rolling this statement back
		// (deadlock.go).
		firstErr = ErrDeadlock()
	}
	if firstErr != nil {
		s.sh.XA.Committer.Rollback(ctx, id, branches)
	} else if err := s.sh.XA.Committer.Commit(ctx, id, branches); err != nil {
		firstErr = commitErr(err, true)
	}
	// Out of the list before the connections can serve another session.
	s.sh.XA.Transactions.remove(id)
	for k, o := range res {
		if o.conn == nil {
			continue
		}
		switch {
		case !o.reserved:
			o.t.Pool.Put(o.conn)
		case o.conn.Broken():
			// What the session held there went with it.
			s.DropReserved(order[k])
		}
		if o.t.Done != nil {
			o.t.Done(firstErr)
		}
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return out, nil
}

// ErrClientXA answers an XA statement from a client in a sharded database.
func ErrClientXA() error {
	return sqlerror.NewSQLError(sqlerror.ERNotSupportedYet, sqlerror.SSClientError,
		"XA statements are not supported in a sharded database: the proxy coordinates cross-shard transactions itself (use BEGIN ... COMMIT; see SHOW STRATA TRANSACTIONS)")
}
