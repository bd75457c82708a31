package proxytest

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// Client capability flags a Raw login sets (mysql_com.h).
const (
	CapConnectWithDB     = 1 << 3
	CapProtocol41        = 1 << 9
	CapSecureConnection  = 1 << 15
	CapMultiStatements   = 1 << 16
	CapPluginAuth        = 1 << 19
	CapDeprecateEOF      = 1 << 24
	loginCaps            = CapProtocol41 | CapSecureConnection | CapPluginAuth | CapConnectWithDB
	nativePasswordPlugin = "mysql_native_password"
)

// Raw is a MySQL client that speaks the protocol by hand: packets in and
// out, nothing interpreted.
type Raw struct {
	T    testing.TB
	Conn net.Conn
	R    *bufio.Reader
	// Seq is the sequence number the next packet of the exchange has.
	Seq byte
}

// Dial connects to addr; the connection closes when the test ends. Reads
// and writes fail after 20 s.
func Dial(t testing.TB, addr string) *Raw {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	return &Raw{T: t, Conn: c, R: bufio.NewReader(c)}
}

// LoginPacket is the payload of a handshake response as user with no
// password (an empty auth response, which the server answers with an auth
// switch), for database db, with capability flags caps.
func LoginPacket(user, db string, caps uint32) []byte {
	var resp []byte
	resp = binary.LittleEndian.AppendUint32(resp, caps)
	resp = binary.LittleEndian.AppendUint32(resp, 1<<24)
	resp = append(resp, 45) // utf8mb4_general_ci
	resp = append(resp, make([]byte, 23)...)
	resp = append(resp, user+"\x00"...)
	resp = append(resp, 0) // empty auth response
	resp = append(resp, db+"\x00"...)
	return append(resp, nativePasswordPlugin+"\x00"...)
}

// Packet frames a payload (under 16 MiB) as a packet with sequence seq.
func Packet(seq byte, payload []byte) []byte {
	return append([]byte{byte(len(payload)), byte(len(payload) >> 8), byte(len(payload) >> 16), seq}, payload...)
}

// Login connects to addr and logs in as user (no password) to db, without
// CLIENT_DEPRECATE_EOF: the client of a MariaDB server and of the proxy
// alike.
func Login(t testing.TB, addr, user, db string) *Raw {
	t.Helper()
	return LoginWith(t, addr, user, db, loginCaps)
}

// LoginWith is Login with the given capability flags.
func LoginWith(t testing.TB, addr, user, db string, caps uint32) *Raw {
	t.Helper()
	c := Dial(t, addr)
	if g := c.Recv(); g[0] != 10 {
		t.Fatalf("greeting %q", g)
	}
	c.Send(1, LoginPacket(user, db, caps))
	for {
		pkt := c.Recv()
		switch pkt[0] {
		case 0x00:
			return c
		case 0xfe: // auth switch: an empty password answers with nothing
			c.Send(c.Seq, nil)
		default:
			t.Fatalf("login to %s: %q", addr, pkt)
		}
	}
}

// Send writes a packet with sequence seq.
func (c *Raw) Send(seq byte, payload []byte) {
	c.T.Helper()
	if _, err := c.Conn.Write(Packet(seq, payload)); err != nil {
		c.T.Fatalf("write: %v", err)
	}
	c.Seq = seq + 1
}

// Recv reads a packet's payload, failing the test on an error.
func (c *Raw) Recv() []byte {
	c.T.Helper()
	p, err := c.Read()
	if err != nil {
		c.T.Fatalf("read: %v", err)
	}
	return p
}

// Read reads a packet's payload.
func (c *Raw) Read() ([]byte, error) {
	_, p, err := c.ReadPacket()
	return p, err
}

// ReadPacket reads a packet: its sequence number and payload.
func (c *Raw) ReadPacket() (seq byte, payload []byte, err error) {
	var hdr [4]byte
	if _, err := io.ReadFull(c.R, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := int(hdr[0]) | int(hdr[1])<<8 | int(hdr[2])<<16
	c.Seq = hdr[3] + 1
	p := make([]byte, n)
	_, err = io.ReadFull(c.R, p)
	return hdr[3], p, err
}

// ClosedAfter waits for the server's answer to something bad: an error
// packet (returned), the connection closed, or both. It fails the test if
// neither comes within a few seconds.
func (c *Raw) ClosedAfter() (errPkt []byte, closed bool) {
	c.T.Helper()
	_ = c.Conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	defer func() { _ = c.Conn.SetReadDeadline(time.Now().Add(20 * time.Second)) }()
	for {
		p, err := c.Read()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if errPkt == nil {
					c.T.Errorf("no error and no close within 3s")
				}
				return errPkt, false
			}
			return errPkt, true
		}
		if p[0] == 0xff {
			errPkt = p
			// An error packet may be all: the connection goes on.
			_ = c.Conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		}
	}
}

// ErrCode is the code of an ERR packet, 0 for anything else.
func ErrCode(pkt []byte) uint16 {
	if len(pkt) < 3 || pkt[0] != 0xff {
		return 0
	}
	return binary.LittleEndian.Uint16(pkt[1:3])
}
