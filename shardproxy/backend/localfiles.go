package backend

import (
	"context"
	"errors"
	"net"
	"strconv"
	"syscall"
	"time"
	_ "unsafe" // go:linkname, below

	"vitess.io/vitess/go/mysql"
	"vitess.io/vitess/go/mysql/sqlerror"
)

// Backend connections announce CLIENT_LOCAL_FILES, so that a LOAD DATA
// LOCAL INFILE the proxy sends gets the server's file request (0xFB)
// instead of MariaDB's 4166: the proxy answers that request with the
// client's file (relayed, or split by shard key), never with a file of its
// own machine. vitess's client has no option for the flag (its handshake
// response sets a fixed set), so the proxy dials the connection itself,
// sets the flag in the handshake response as it goes out (localFilesConn),
// and runs vitess's own handshake over it.

// clientLocalFiles is CLIENT_LOCAL_FILES.
const clientLocalFiles = 0x80

//go:linkname vitessClientHandshake vitess.io/vitess/go/mysql.(*Conn).clientHandshake
func vitessClientHandshake(c *mysql.Conn, params *mysql.ConnParams, attributes mysql.ConnectionAttributes) error

// connect is mysql.Connect for the pool's server, with CLIENT_LOCAL_FILES.
func connect(ctx context.Context, params *mysql.ConnParams) (*mysql.Conn, error) {
	addr := net.JoinHostPort(params.Host, strconv.Itoa(params.Port))
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, sqlerror.NewSQLErrorf(sqlerror.CRConnHostError, sqlerror.SSUnknownSQLState, "net.Dial(%v) failed: %v", addr, err)
	}
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		nc.Close()
		return nil, errors.New("backend: dial did not give a TCP connection")
	}
	lc := &localFilesConn{TCPConn: tc}
	c := mysql.NewConnForTest(lc) // newConn with the defaults the pool's params have
	if dl, ok := ctx.Deadline(); ok {
		_ = tc.SetDeadline(dl)
	}
	// The handshake stops when ctx is done (the deadline above covers
	// timeouts; this covers cancellation).
	stop := context.AfterFunc(ctx, func() { _ = tc.SetDeadline(time.Unix(1, 0)) })
	err = vitessClientHandshake(c, params, mysql.ConnectionAttributes{})
	stopped := !stop()
	if err == nil && stopped {
		err = ctx.Err()
	}
	if err != nil {
		c.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	_ = tc.SetDeadline(time.Time{})
	return c, nil
}

// localFilesConn sets CLIENT_LOCAL_FILES in the handshake response (the
// first packet the client writes: sequence number 1, capability flags
// first) and is the TCP connection otherwise, syscall.Conn included (the
// raw side's reads and writes need the descriptor).
type localFilesConn struct {
	*net.TCPConn
	sent bool
}

func (c *localFilesConn) Write(p []byte) (int, error) {
	if !c.sent {
		c.sent = true
		if len(p) >= 8 && p[3] == 1 {
			q := append([]byte(nil), p...)
			q[4] |= clientLocalFiles
			return c.TCPConn.Write(q)
		}
	}
	return c.TCPConn.Write(p)
}

// SyscallConn is the TCP connection's (rawio reads it).
func (c *localFilesConn) SyscallConn() (syscall.RawConn, error) { return c.TCPConn.SyscallConn() }
