//go:build !linux

package rawio

import "net"

// Conn is not available here: New returns nil and callers use net.Conn.
type Conn struct{}

// New returns nil: no raw system calls on this platform.
func New(net.Conn) *Conn { return nil }

// Read is never called on a nil Conn.
func (*Conn) Read([]byte) (int, error) { panic("rawio: not supported") }

// Write is never called on a nil Conn.
func (*Conn) Write([]byte) (int, error) { panic("rawio: not supported") }

// WriteAndWait is never called on a nil Conn.
func (*Conn) WriteAndWait([]byte) error { panic("rawio: not supported") }

// ReadLent is never called on a nil Conn.
func (*Conn) ReadLent(Lender) ([]byte, int, error) { panic("rawio: not supported") }

// WriteAndRead is never called on a nil Conn.
func (*Conn) WriteAndRead([]byte, []byte) (int, error, error) { panic("rawio: not supported") }
