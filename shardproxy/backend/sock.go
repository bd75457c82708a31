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

// sendRead sends request b and reads the first bytes of its answer into p
// in the same wait (rawio.Conn.WriteAndRead); without raw system calls it
// only writes, and the answer is read as usual.
func (s *sock) sendRead(b, p []byte) (n int, rerr, werr error) {
	if s.x != nil && len(p) > 0 {
		return s.x.WriteAndRead(b, p)
	}
	return 0, nil, s.send(b)
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
