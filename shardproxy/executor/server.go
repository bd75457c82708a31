package executor

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/strata-db/strata/shardproxy/mysqlerr"
	"github.com/strata-db/strata/shardproxy/wire"
	"vitess.io/vitess/go/mysql"
	"vitess.io/vitess/go/mysql/sqlerror"
)

// Accept is the listener's PreHandleFunc: it runs on each accepted
// connection before the handshake. It
// refuses connections over max_client_connections with MySQL's 1040, as a
// server does, and wraps the rest in a Conn (TLS, packet limits,
// COM_FIELD_LIST).
func (s *Executor) Accept(_ context.Context, c net.Conn, id uint32) (net.Conn, error) {
	if s.clients.Load() >= int64(s.cfg.MaxClientConnections) || !s.gate.enter(id, c.RemoteAddr()) {
		wire.WriteRawError(c, sqlerror.ERConCount, mysqlerr.SSConnectionRejected, "Too many connections")
		c.Close()
		return nil, errors.New("too many connections")
	}
	// A connection that has not logged in by connect_timeout is closed, as
	// MariaDB closes it (ConnectionReady lifts the bound).
	timeout := s.cfg.ConnectTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	return wire.NewConn(c, id, s.wireCfg, s), nil
}

func (s *Executor) session(c *mysql.Conn) *Session {
	ss, _ := c.ClientData.(*Session)
	return ss
}

// SessionByID is the session of client connection id, nil if none.
func (s *Executor) SessionByID(id uint32) *Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[id]
}
