package shardproxy_test

import (
	"database/sql"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/strata-db/strata/shardproxy/config"
	"github.com/strata-db/strata/shardproxy/proxytest"
)

// TestBadInput sends malformed and over-long packets: each connection gets
// an error or is closed, nothing crashes, and other clients are served
// throughout.
func TestBadInput(t *testing.T) {
	p := proxytest.Start(t, proxytest.SharedTopology(t), func(c *config.Config) { c.MaxAllowedPacket = 1 << 20 })
	good := p.Open(t, p.Demo)
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
	c := proxytest.Dial(t, p.Server.Addr())
	c.Recv()
	_, _ = c.Conn.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	if _, closed := c.ClosedAfter(); !closed {
		t.Error("garbage handshake: connection not closed")
	}
	check("garbage handshake")

	// A truncated handshake response.
	c = proxytest.Dial(t, p.Server.Addr())
	c.Recv()
	c.Send(1, []byte{0x85, 0xa6})
	c.ClosedAfter()
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
		c = proxytest.Login(t, p.Server.Addr(), "root", p.Demo)
		c.Send(0, pkt)
		c.ClosedAfter()
		check("malformed command")
	}

	// An over-long packet: refused with 1153 from its header, before the
	// body is read.
	c = proxytest.Login(t, p.Server.Addr(), "root", p.Demo)
	hdr := []byte{0xff, 0xff, 0x7f, 0, 0x03} // a 8 MiB COM_QUERY
	_, _ = c.Conn.Write(hdr)
	errPkt, closed := c.ClosedAfter()
	if !closed || len(errPkt) < 3 || binary.LittleEndian.Uint16(errPkt[1:3]) != 1153 {
		t.Errorf("over-long packet: closed %v, error %q", closed, errPkt)
	}
	check("over-long packet")

	// The same through a real driver: a 2 MiB statement.
	big, _ := sql.Open("mysql", p.DSN(p.Demo))
	defer big.Close()
	_, err := big.Exec("SELECT '" + strings.Repeat("x", 2<<20) + "'")
	if err == nil {
		t.Error("2 MiB statement accepted with max_allowed_packet 1 MiB")
	}
	check("driver over-long packet")
}
