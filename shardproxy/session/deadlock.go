package session

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"time"

	"vitess.io/vitess/go/mysql/sqlerror"

	"github.com/strata-db/strata/shardproxy/backend"
	"github.com/strata-db/strata/shardproxy/xa"
)

// The deadlock check breaks cycles of lock waits that run through more
// than one shard (see xa.Victims), which no shard's server can see. While
// a statement of a distributed transaction has waited Wait or more, it
// reads the lock waits of the servers the waiting transactions work on,
// names each server connection by the transaction it works for, and, for
// each cycle through two servers or more, stops the lock wait of the
// youngest transaction of the cycle with KILL QUERY. That transaction is
// rolled back on every shard and its client gets 1213 (Deadlock found when
// trying to get lock), as from one server's own deadlock detection; the
// others go on. A cycle through transactions of two proxies is not seen by
// either (each knows only its own transactions' connections): such a
// cycle ends when innodb_lock_wait_timeout does.

// ErrDeadlock is MariaDB's answer to a deadlock's victim.
func ErrDeadlock() error {
	return sqlerror.NewSQLError(sqlerror.ERLockDeadlock, sqlerror.SSLockDeadlock, "Deadlock found when trying to get lock; try restarting transaction")
}

// Deadlocks runs the deadlock check over the distributed transactions in
// flight on the proxy.
type Deadlocks struct {
	Transactions *Transactions
	// Wait is how long a statement waits before the check looks; it then
	// looks every Wait/2 while one waits.
	Wait    time.Duration
	Metrics *xa.Metrics
	Logger  *slog.Logger

	// warned: when a server's lock waits could last not be read and it
	// was logged (once a minute each, not every check).
	warned map[*backend.Pool]time.Time
}

// Run checks until ctx ends.
func (d *Deadlocks) Run(ctx context.Context) {
	t := time.NewTicker(d.Wait / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			d.Check(ctx)
		}
	}
}

type waiting struct {
	info TxInfo
	seq  uint64
}

// Check looks once: it returns the transactions it rolled back. Checks
// run one at a time (Run's goroutine).
func (d *Deadlocks) Check(ctx context.Context) []uint64 {
	now := time.Now()
	txs := d.Transactions.forCheck()
	byTx := make(map[uint64]waiting, len(txs))
	var pools []*backend.Pool
	for _, info := range txs {
		seq, since, running := info.sess.statementSince()
		byTx[info.ID] = waiting{info: info, seq: seq}
		if !running || now.Sub(since) < d.Wait {
			continue
		}
		for _, c := range info.conns {
			if !slices.Contains(pools, c.Pool()) {
				pools = append(pools, c.Pool())
			}
		}
	}
	if len(pools) == 0 {
		return nil // nothing waits long
	}
	type connKey struct {
		pool *backend.Pool
		id   uint32
	}
	owners := func(txs []TxInfo) map[connKey]uint64 {
		m := map[connKey]uint64{}
		for _, info := range txs {
			for _, c := range info.conns {
				m[connKey{c.Pool(), c.ID()}] = info.ID
			}
		}
		return m
	}
	owner := owners(txs)
	type read struct {
		pool *backend.Pool
		lw   []backend.LockWait
	}
	var reads []read
	for _, p := range pools {
		lw, err := p.LockWaits(ctx)
		switch {
		case err == nil:
		case ctx.Err() != nil || d.Logger == nil:
			continue
		case errors.Is(err, backend.ErrStaleLockWaits):
			// No cycle through this server is broken this round: an old
			// view would name the wrong transactions (lockwaits.go).
			d.Logger.Debug("shardproxy: deadlock check: skipped a server whose lock waits could not be read fresh", "server", p.String(), "err", err)
			continue
		case now.Sub(d.warned[p]) < time.Minute:
			continue
		default:
			if d.warned == nil {
				d.warned = map[*backend.Pool]time.Time{}
			}
			d.warned[p] = now
			d.Logger.Warn("shardproxy: deadlock check: cannot read a server's lock waits (the backend user needs the PROCESS privilege)", "server", p.String(), "err", err)
			continue
		}
		reads = append(reads, read{p, lw})
	}
	// A connection is named by a transaction only if it was that
	// transaction's before and after its server's waits were read: one
	// whose transaction ended meanwhile may serve another now (the pool
	// gave it out again), and its waits, named by the old owner, would join
	// those of two transactions into a cycle that is none.
	after := owners(d.Transactions.forCheck())
	for k, tx := range owner {
		if after[k] != tx {
			delete(owner, k)
		}
	}
	party := func(p *backend.Pool, id uint32) xa.Party[*backend.Pool] {
		return xa.Party[*backend.Pool]{Server: p, Conn: id, Tx: owner[connKey{p, id}]}
	}
	var waits []xa.Wait[*backend.Pool]
	for _, r := range reads {
		for _, w := range r.lw {
			waits = append(waits, xa.Wait[*backend.Pool]{Waiter: party(r.pool, w.Waiter), Holder: party(r.pool, w.Holder)})
		}
	}
	var broken []uint64
	for _, v := range xa.Victims(waits) {
		w, ok := byTx[v]
		if !ok {
			continue
		}
		stop := map[*backend.Pool][]uint32{}
		for _, x := range waits {
			if x.Waiter.Tx == v {
				stop[x.Waiter.Server] = append(stop[x.Waiter.Server], x.Waiter.Conn)
			}
		}
		if !w.info.sess.stopDeadlocked(ctx, w.seq, stop, d.Logger) {
			continue // its statement ended meanwhile
		}
		broken = append(broken, v)
		d.Metrics.Deadlock()
		if d.Logger != nil {
			d.Logger.Warn("shardproxy: deadlock across shards: rolled back the youngest transaction of the cycle", "tx", v, "conn", w.info.Session, "shards", w.info.Shards)
		}
	}
	return broken
}

// forCheck lists the transactions in flight with their sessions.
func (t *Transactions) forCheck() []TxInfo {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]TxInfo, 0, len(t.txs))
	for _, i := range t.txs {
		if i.sess != nil {
			out = append(out, *i)
		}
	}
	return out
}

// statementSince reports, from another goroutine, whether the session runs
// a statement, since when, and the statement's sequence number.
func (s *Session) statementSince() (seq uint64, since time.Time, running bool) {
	s.curMu.Lock()
	defer s.curMu.Unlock()
	return s.kill.seq.Load(), s.curAt, len(s.cur) > 0
}

// stopDeadlocked stops the lock waits of the session's statement on the
// given connections, if it still runs statement seq there: that statement
// then fails and the session rolls its transaction back with 1213
// (executeSpanning, executeAtomic). The connections are tracked by the
// statement, under the lock Untrack takes, so the KILL reaches none that
// went back to the pool.
func (s *Session) stopDeadlocked(ctx context.Context, seq uint64, stop map[*backend.Pool][]uint32, log *slog.Logger) bool {
	k := &s.kill
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.seq.Load() != seq {
		return false
	}
	hit := false
	for _, c := range k.conns {
		if !slices.Contains(stop[c.Pool()], c.ID()) {
			continue
		}
		// Set before the KILL lands: the statement's error must be read as
		// the deadlock's.
		k.deadlock.Store(true)
		hit = true
		if err := c.Pool().KillQuery(ctx, c.ID()); err != nil && log != nil {
			log.Warn("shardproxy: deadlock check: KILL QUERY on a backend failed", "err", err)
		}
	}
	return hit
}

// abandonDeadlocked rolls the transaction back whole after the deadlock
// check stopped one of its statements (the server rolled back only that
// statement), as ROLLBACK would: the session's reserved connections, and
// what they hold, stay.
func (s *Session) abandonDeadlocked() error {
	s.rolledBack(nil)
	return ErrDeadlock()
}

// rolledBack ends the transaction a server rolled back (on conn, which
// answered a deadlock) or that the deadlock check chose (conn nil). An XA
// branch is ended with XA ROLLBACK, not by dropping its connection: a
// reserved connection, and the named locks and temporary tables on it,
// stay, as on MariaDB after a deadlock.
func (s *Session) rolledBack(conn *backend.Conn) {
	if s.TxXA || len(s.Branches) > 0 {
		_ = s.endSpanning(false, conn)
	} else {
		s.ReleaseTx(nil)
	}
	s.ExplicitTx = false
}
