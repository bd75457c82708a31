package executor

import (
	"context"
	"errors"
	"net"
	"time"

	"vitess.io/vitess/go/mysql"
)

// Accept is the listener's PreHandleFunc: it runs on each accepted
// connection before the handshake. It
// refuses connections over max_client_connections with MySQL's 1040, as a
// server does, and wraps the rest in a clientConn (TLS, packet limits,
// COM_FIELD_LIST).
func (s *Executor) Accept(_ context.Context, c net.Conn, id uint32) (net.Conn, error) {
	if n := s.clients.Add(1); n > int64(s.cfg.MaxClientConnections) {
		s.clients.Add(-1)
		writeRawError(c, 1040, "08004", "Too many connections")
		c.Close()
		return nil, errors.New("too many connections")
	}
	return newClientConn(c, s, id), nil
}

// writeRawError writes an ERR packet with sequence 0 to a connection
// that has not had a handshake.
func writeRawError(c net.Conn, code uint16, state, msg string) {
	payload := []byte{0xff, byte(code), byte(code >> 8), '#'}
	payload = append(payload, state...)
	payload = append(payload, msg...)
	pkt := []byte{byte(len(payload)), byte(len(payload) >> 8), byte(len(payload) >> 16), 0}
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = c.Write(append(pkt, payload...))
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
