package backend

import (
	"net"

	"github.com/strata-db/strata/shardproxy/internal/rawio"
)

// sock is the raw side's socket: raw system calls through the poller
// (package rawio) where the platform has them, net.Conn elsewhere.
type sock struct {
	raw net.Conn
	x   *rawio.Conn
}

func newSock(raw net.Conn) *sock { return &sock{raw: raw, x: rawio.New(raw)} }

func (s *sock) Read(p []byte) (int, error) {
	if s.x != nil {
		return s.x.Read(p)
	}
	return s.raw.Read(p)
}

// send writes a request and, where it can, waits until the answer is
// readable without trying a read first (a server sends nothing unasked).
func (s *sock) send(b []byte) error {
	if s.x != nil {
		return s.x.WriteAndWait(b)
	}
	_, err := s.raw.Write(b)
	return err
}

func (s *sock) write(b []byte) error {
	var err error
	if s.x != nil {
		_, err = s.x.Write(b)
	} else {
		_, err = s.raw.Write(b)
	}
	return err
}
