package session

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"vitess.io/vitess/go/mysql/sqlerror"

	"github.com/strata-db/strata/shardproxy/backend"
)

// KILL of a session (the executor's kill.go reads the statement and decides
// who may kill whom).
//
// A statement of the session runs on backend connections, several when it
// fans out; while one runs there, the connection is tracked here (Track,
// Untrack). KILL QUERY marks the session killed and sends KILL QUERY <the
// connection's server id> to the server of each tracked connection, over a
// connection of its own (backend.Pool.KillQuery): each server stops its part
// and answers 1317, which is what the client gets. A connection is untracked
// only under the lock the killer holds while it sends, so a KILL never
// reaches a connection that went back to the pool and serves another
// session. The mark is checked before each backend statement (a statement
// between two backend queries stops at the next one), and cleared when the
// statement ends. A KILL QUERY that finds the session idle does nothing, as
// on MariaDB. Marking and clearing happen under the lock Running holds as a
// statement starts and ends (Session.curMu), so that a mark never outlives
// its statement (a COM_STMT_PREPARE after it must not fail). As a KILL sent between tracking a connection
// and writing the statement to it would find the server's thread idle, the
// killer sends it again every killRetry while the same statement runs, for
// at most killRetries times.
type killState struct {
	// mu guards conns; the killer holds it while it sends its KILLs.
	mu sync.Mutex
	// killed is set (under Session.curMu) by KILL QUERY while a statement
	// runs, and cleared when one starts or ends.
	killed atomic.Bool
	// deadlock is set (under mu) by the deadlock check when it stops the
	// statement's lock wait to break a cycle across shards, and cleared
	// when a statement starts or ends (deadlock.go).
	deadlock atomic.Bool
	// seq counts the statements started, so that the killer knows when
	// the one it killed has ended.
	seq   atomic.Uint64
	conns []*backend.Conn
}

const (
	killRetry   = 100 * time.Millisecond
	killRetries = 50
)

// ErrQueryInterrupted is MariaDB's answer to a statement stopped by KILL
// QUERY (1317).
func ErrQueryInterrupted() error {
	return sqlerror.NewSQLError(sqlerror.ERQueryInterrupted, "70100", "Query execution was interrupted")
}

// Killed reports whether KILL QUERY (or KILL CONNECTION) stopped the
// statement running.
func (s *Session) Killed() bool { return s.kill.killed.Load() }

// KilledErr is the error a statement that failed with err answers the
// client: 1317 when KILL QUERY stopped it, unless the statement's whole
// transaction went with err (1213: a server's deadlock, or the deadlock
// check's victim, racing with the KILL), which the client must learn: told
// 1317, it would go on as if in its transaction, its next statements
// autocommitted.
func (s *Session) KilledErr(err error) error {
	if !s.Killed() {
		return err
	}
	var se *sqlerror.SQLError
	if errors.As(err, &se) && se.Number() == sqlerror.ERLockDeadlock {
		return err
	}
	return ErrQueryInterrupted()
}

// Track notes that conn runs the session's statement now; Untrack, once
// its answer is read, that it no longer does. Track answers 1317 when the
// statement was killed: nothing is sent.
func (s *Session) Track(conn *backend.Conn) error {
	k := &s.kill
	k.mu.Lock()
	if k.killed.Load() {
		k.mu.Unlock()
		return ErrQueryInterrupted()
	}
	k.conns = append(k.conns, conn)
	k.mu.Unlock()
	return nil
}

// Untrack: see Track.
func (s *Session) Untrack(conn *backend.Conn) {
	k := &s.kill
	k.mu.Lock()
	for i, c := range k.conns {
		if c == conn {
			last := len(k.conns) - 1
			k.conns[i] = k.conns[last]
			k.conns[last] = nil
			k.conns = k.conns[:last]
			break
		}
	}
	k.mu.Unlock()
}

// KillQuery stops the statement the session runs, on every backend
// connection it runs on, from another session's goroutine. It returns once
// the KILLs went out; the session's statement then ends with 1317.
func (s *Session) KillQuery(ctx context.Context, log *slog.Logger) {
	k := &s.kill
	s.curMu.Lock()
	running := len(s.cur) > 0
	if running {
		k.killed.Store(true)
	}
	seq := k.seq.Load()
	s.curMu.Unlock()
	if !running {
		return // nothing to stop
	}
	k.round(ctx, log)
	go func() {
		for i := 0; i < killRetries; i++ {
			time.Sleep(killRetry)
			if k.seq.Load() != seq || !k.killed.Load() {
				return
			}
			k.round(context.Background(), log)
		}
	}()
}

// round sends KILL QUERY for each tracked connection.
func (k *killState) round(ctx context.Context, log *slog.Logger) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, c := range k.conns {
		if err := c.Pool().KillQuery(ctx, c.ID()); err != nil && log != nil {
			log.Warn("shardproxy: KILL QUERY on a backend failed", "err", err)
		}
	}
}

// KillConnection ends the session from another session's goroutine: its
// statement is stopped as by KillQuery, and its client connection closed.
// The session's own goroutine then rolls its transaction back and gives its
// connections up (as for any client that disconnects).
func (s *Session) KillConnection(ctx context.Context, log *slog.Logger) {
	// The client connection closes first: closed after, the statement's
	// 1317 could reach the client before the close (a CI run saw it),
	// where MariaDB's client of a killed connection sees it lost.
	if s.Conn != nil {
		s.Conn.Close()
	}
	s.KillQuery(ctx, log)
}
