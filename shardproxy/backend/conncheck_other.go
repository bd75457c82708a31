//go:build !unix

package backend

// connAlive cannot peek at sockets here; the first statement finds out.
func connAlive(*Conn) bool { return true }
