//go:build unix

package backend

import (
	"errors"
	"net"
	"syscall"
)

// sender writes a request to a server and waits until the answer is
// readable, without the read that net.Conn.Read tries before it waits: Go
// tries a read first, and just after a request it finds nothing (EAGAIN),
// one wasted system call per statement. Here the request is written from
// inside the poller's read callback, after the poller was armed for the
// answer, so that the first read comes once the answer is there.
//
// That is safe for a server's connection because a server sends nothing
// unasked: no data can be waiting, unseen, before the request goes out. (A
// server that closed the connection meanwhile makes the write fail, or the
// reset that follows it wakes the wait.)
type sender struct {
	raw  net.Conn
	rc   syscall.RawConn
	buf  []byte
	sent bool
	err  error
	fn   func(fd uintptr) bool
}

func newSender(raw net.Conn) *sender {
	s := &sender{raw: raw}
	if sc, ok := raw.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			s.rc = rc
			s.fn = s.step // one closure per connection, not one per statement
		}
	}
	return s
}

// send writes buf and returns when the connection has something to read
// (or failed).
func (s *sender) send(buf []byte) error {
	if s.rc == nil {
		_, err := s.raw.Write(buf)
		return err
	}
	s.buf, s.sent, s.err = buf, false, nil
	err := s.rc.Read(s.fn)
	s.buf = nil
	if s.err != nil {
		return s.err
	}
	return err
}

// step is the read callback: the first call writes the request and asks
// the poller to wait; the next one means the answer is readable.
func (s *sender) step(fd uintptr) bool {
	if s.sent {
		return true
	}
	s.sent = true
	b := s.buf
	for len(b) > 0 {
		n, err := syscall.Write(int(fd), b)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			// The send buffer is full (a long statement): write the rest
			// the ordinary way, which waits for room.
			if _, err := s.raw.Write(b); err != nil {
				s.err = err
				return true
			}
			return false
		case err != nil:
			s.err = &net.OpError{Op: "write", Net: "tcp", Err: err}
			return true
		case n <= 0:
			s.err = errors.New("backend: write wrote nothing")
			return true
		}
		b = b[n:]
	}
	return false
}
