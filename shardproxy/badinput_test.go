package shardproxy

import (
	"bufio"
	"database/sql"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/strata-db/strata/shardproxy/config"
)

// rawConn is a bare MySQL protocol client, for sending what real clients
// would not.
type rawConn struct {
	t   testing.TB
	c   net.Conn
	r   *bufio.Reader
	seq byte
}

func rawDial(t testing.TB, p *testProxy) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", p.srv.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	return &rawConn{t: t, c: c, r: bufio.NewReader(c)}
}

// rawConnect logs in as root (no password) with CLIENT_DEPRECATE_EOF off.
func rawConnect(t testing.TB, p *testProxy, db string) *rawConn {
	t.Helper()
	c := rawDial(t, p)
	greeting := c.recv()
	if greeting[0] != 10 {
		t.Fatalf("greeting %q", greeting)
	}
	const (
		protocol41   = 1 << 9
		secureConn   = 1 << 15
		pluginAuth   = 1 << 19
		connectWithD = 1 << 3
	)
	var resp []byte
	resp = binary.LittleEndian.AppendUint32(resp, protocol41|secureConn|pluginAuth|connectWithD)
	resp = binary.LittleEndian.AppendUint32(resp, 1<<24)
	resp = append(resp, 45)
	resp = append(resp, make([]byte, 23)...)
	resp = append(resp, "root\x00"...)
	resp = append(resp, 0) // empty auth response
	resp = append(resp, db+"\x00"...)
	resp = append(resp, "mysql_native_password\x00"...)
	c.send(1, resp)
	for {
		pkt := c.recv()
		switch pkt[0] {
		case 0x00:
			return c
		case 0xfe: // auth switch: an empty password answers with nothing
			c.send(c.seq, nil)
		default:
			t.Fatalf("login: %q", pkt)
		}
	}
}

func (c *rawConn) send(seq byte, payload []byte) {
	c.t.Helper()
	hdr := []byte{byte(len(payload)), byte(len(payload) >> 8), byte(len(payload) >> 16), seq}
	if _, err := c.c.Write(append(hdr, payload...)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
	c.seq = seq + 1
}

func (c *rawConn) recv() []byte {
	c.t.Helper()
	p, err := c.read()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return p
}

func (c *rawConn) read() ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(c.r, hdr[:]); err != nil {
		return nil, err
	}
	n := int(hdr[0]) | int(hdr[1])<<8 | int(hdr[2])<<16
	c.seq = hdr[3] + 1
	p := make([]byte, n)
	_, err := io.ReadFull(c.r, p)
	return p, err
}

// closedAfter waits for the proxy's answer to something bad: an error
// packet (returned), the connection closed, or both. It fails the test if
// neither comes within a few seconds.
func (c *rawConn) closedAfter() (errPkt []byte, closed bool) {
	c.t.Helper()
	_ = c.c.SetReadDeadline(time.Now().Add(3 * time.Second))
	defer func() { _ = c.c.SetReadDeadline(time.Now().Add(20 * time.Second)) }()
	for {
		p, err := c.read()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if errPkt == nil {
					c.t.Errorf("no error and no close within 3s")
				}
				return errPkt, false
			}
			return errPkt, true
		}
		if p[0] == 0xff {
			errPkt = p
			// An error packet may be all: the connection goes on.
			_ = c.c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		}
	}
}

// TestBadInput sends malformed and over-long packets: each connection gets
// an error or is closed, nothing crashes, and other clients are served
// throughout.
func TestBadInput(t *testing.T) {
	p := startProxy(t, sharedTopo(t), func(c *config.Config) { c.MaxAllowedPacket = 1 << 20 })
	good := p.open(t, "demo")
	good.SetMaxOpenConns(1)
	check := func(what string) {
		t.Helper()
		var n int
		if err := good.QueryRow("SELECT 42").Scan(&n); err != nil || n != 42 {
			t.Fatalf("after %s the proxy does not serve: %v", what, err)
		}
	}
	check("start")

	// Garbage instead of a handshake response.
	c := rawDial(t, p)
	c.recv()
	_, _ = c.c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	if _, closed := c.closedAfter(); !closed {
		t.Error("garbage handshake: connection not closed")
	}
	check("garbage handshake")

	// A truncated handshake response.
	c = rawDial(t, p)
	c.recv()
	c.send(1, []byte{0x85, 0xa6})
	c.closedAfter()
	check("truncated handshake")

	// Malformed commands after login.
	for _, pkt := range [][]byte{
		{0x17},                                  // COM_STMT_EXECUTE with nothing
		{0x17, 1, 0, 0, 0, 0, 1, 0, 0, 0, 9, 9}, // execute of an unknown statement
		{0x1a, 0xff},                            // COM_STMT_RESET, short
		{0x1b},                                  // COM_SET_OPTION, short
		{0x99, 1, 2, 3},                         // unknown command
		append([]byte{0x03}, "SELECT \xff\xfe\x00 FROM"...), // bad bytes in a query
		{0x16}, // COM_STMT_PREPARE of nothing
	} {
		c = rawConnect(t, p, "demo")
		c.send(0, pkt)
		c.closedAfter()
		check("malformed command")
	}

	// An over-long packet: refused with 1153 from its header, before the
	// body is read.
	c = rawConnect(t, p, "demo")
	hdr := []byte{0xff, 0xff, 0x7f, 0, 0x03} // a 8 MiB COM_QUERY
	_, _ = c.c.Write(hdr)
	errPkt, closed := c.closedAfter()
	if !closed || len(errPkt) < 3 || binary.LittleEndian.Uint16(errPkt[1:3]) != 1153 {
		t.Errorf("over-long packet: closed %v, error %q", closed, errPkt)
	}
	check("over-long packet")

	// The same through a real driver: a 2 MiB statement.
	big, _ := sql.Open("mysql", p.dsn("demo"))
	defer big.Close()
	_, err := big.Exec("SELECT '" + strings.Repeat("x", 2<<20) + "'")
	if err == nil {
		t.Error("2 MiB statement accepted with max_allowed_packet 1 MiB")
	}
	check("driver over-long packet")
}
