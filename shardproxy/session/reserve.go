package session

import (
	"context"

	"github.com/strata-db/strata/shardproxy/backend"
	"github.com/strata-db/strata/shardproxy/engine"
	"github.com/strata-db/strata/shardproxy/fleet"
	"github.com/strata-db/strata/shardproxy/mysqlerr"
	"vitess.io/vitess/go/mysql/sqlerror"
	"vitess.io/vitess/go/sqltypes"
)

// reservedConn is a backend connection a session holds for its life.
type reservedConn struct {
	Conn *backend.Conn
	why  string
}

// heldConn is the connection a statement for shard must run on outside
// the transaction path, nil when a pooled one will do: the session's
// reserved connection there, or, while a reserving statement runs, its
// transaction's connection on that shard (which then becomes reserved).
func (s *Session) HeldConn(shard string) *backend.Conn {
	if rc := s.Reserved[shard]; rc != nil {
		return rc.Conn
	}
	if s.Reserving != "" && s.Tx != nil && s.TxShard == shard {
		return s.Tx
	}
	return nil
}

// keep makes conn, on shard, the session's reserved connection there.
func (s *Session) Keep(shard string, conn *backend.Conn) {
	if rc := s.Reserved[shard]; rc != nil {
		return
	}
	if s.Reserved == nil {
		s.Reserved = make(map[string]*reservedConn, 1)
	}
	s.Reserved[shard] = &reservedConn{Conn: conn, why: s.Reserving}
	s.sh.Metrics.Reserved.Inc()
	s.sh.Metrics.Reservations.WithLabelValues(s.Reserving).Inc()
}

// isReserved reports whether conn is one of the session's reserved
// connections.
func (s *Session) IsReserved(conn *backend.Conn) bool {
	for _, rc := range s.Reserved {
		if rc.Conn == conn {
			return true
		}
	}
	return false
}

// dropReserved closes the reserved connection on shard, if any. The
// transaction's fields are left to the caller.
func (s *Session) DropReserved(shard string) {
	rc := s.Reserved[shard]
	if rc == nil {
		return
	}
	delete(s.Reserved, shard)
	rc.Conn.MarkBroken() // Put closes it: its state dies with it
	rc.Conn.Pool().Put(rc.Conn)
	s.sh.Metrics.Reserved.Dec()
}

// releaseReserved closes every reserved connection (session end, reset).
func (s *Session) ReleaseReserved() {
	for sh := range s.Reserved {
		s.DropReserved(sh)
	}
	s.Reserved = nil
}

// runHeld runs q on a connection the session holds (heldConn), routed to
// the shard's primary so that the router sees the statement, and makes it
// reserved when a reserving statement runs. A connection that broke takes
// its state with it: the statement fails saying so, and the session goes
// on without it.
func (s *Session) RunHeld(ctx context.Context, q engine.ShardQuery, conn *backend.Conn) (*sqltypes.Result, error) {
	read := q.Read && !s.Hint.ForcePrimary
	var consistency string
	if read {
		// A read here is on the primary: a strong read, for the router.
		consistency, s.Hint.Consistency = s.Hint.Consistency, string(fleet.Strong)
	}
	t, err := s.sh.Cluster.Route(ctx, q.Shard, read, &s.Hint)
	if read {
		s.Hint.Consistency = consistency
	}
	if err != nil {
		return nil, err
	}
	if t.Pool != conn.Pool() {
		// The shard's primary moved: the state lives on the old one.
		err = s.LostHeld(q.Shard, conn, "the shard's primary is now another server")
		if t.Done != nil {
			t.Done(nil)
		}
		return nil, err
	}
	res, err := s.ExecOn(ctx, conn, q.Shard, q.SQL, "")
	if t.Done != nil {
		t.Done(err)
	}
	if conn.Broken() {
		if err == nil {
			// Closed after the statement ended (an interrupt): its result
			// stands; the state is gone all the same.
			_ = s.LostHeld(q.Shard, conn, "closed after the statement")
			return res, nil
		}
		return nil, s.LostHeld(q.Shard, conn, mysqlerr.From(err).Message)
	}
	if s.Reserving != "" {
		s.Keep(q.Shard, conn)
	}
	return res, err
}

// lostHeld gives up a held connection that can no longer serve, and the
// transaction on it if any: the error says what was lost.
func (s *Session) LostHeld(shard string, conn *backend.Conn, why string) error {
	err := s.LostReservedErr(shard, why)
	if s.Tx == conn {
		s.TxLost = sqlerror.NewSQLErrorf(sqlerror.CRServerLost, sqlerror.SSUnknownSQLState,
			"the transaction on shard %s was lost (%s): ROLLBACK and retry it", shard, why)
		conn.MarkBroken()
		s.ReleaseTx(err)
		return err
	}
	s.DropReserved(shard)
	return err
}

// lostReservedErr is the error of a statement that found the session's
// reserved connection on shard lost, why saying how.
func (s *Session) LostReservedErr(shard, why string) error {
	reserved := ""
	if rc := s.Reserved[shard]; rc != nil {
		reserved = rc.why
	}
	s.sh.Log.Warn("shardproxy: reserved connection lost", "conn", s.ID, "shard", shard, "why", why, "reserved_by", reserved)
	return sqlerror.NewSQLErrorf(sqlerror.CRServerLost, sqlerror.SSUnknownSQLState,
		"the session's reserved connection to shard %s was lost (%s): the session's temporary tables, named locks and table locks there are gone, as after a reconnect", shard, why)
}
