//go:build unix

package backend

import (
	"errors"
	"syscall"
)

// connAlive peeks at the socket without blocking: a connection that the
// server closed (a restart, wait_timeout) reads EOF, and a live idle one has
// nothing to read. It costs one system call, paid only by connections that
// sat idle for a while.
func connAlive(c *Conn) bool {
	raw := c.c.GetRawConn()
	sc, ok := raw.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	alive := true
	var buf [1]byte
	err = rc.Read(func(fd uintptr) bool {
		n, _, rerr := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case n == 0 && rerr == nil: // EOF
			alive = false
		case n > 0: // unexpected data from an idle server: an error packet
			alive = false
		case rerr != nil && !errors.Is(rerr, syscall.EAGAIN) && !errors.Is(rerr, syscall.EWOULDBLOCK):
			alive = false
		}
		return true
	})
	return alive && err == nil
}
