package compat

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// TestConnectionsThatNeverLogIn: thousands of TCP connections from one
// address that never answer the greeting do not lock real clients out:
// past max_unauthenticated_per_host the proxy refuses them at once with
// 1040, they take no slot of max_client_connections, a real client from
// another address logs in and queries meanwhile, and connect_timeout
// closes those that were admitted.
func TestConnectionsThatNeverLogIn(t *testing.T) {
	setup(t)
	c := proxyConfig()
	// Long enough that no admitted connection times out while the flood
	// is still dialing (seconds on a loaded machine): one that did would
	// free its place for a later dial, greeted instead of refused.
	c.ConnectTimeout = 5 * time.Second
	c.MaxUnauthenticatedPerHost = 200
	c.MaxClientConnections = 50
	addr, stop, err := startProxy(c)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	attacker := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 2 * time.Second}
	const flood = 2000
	conns := make([]net.Conn, 0, flood)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < flood; i++ {
		nc, err := attacker.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		conns = append(conns, nc)
	}
	// Those past the per-address bound got 1040 and were closed: their
	// first bytes are an ERR packet, not a greeting.
	refused, greeted := 0, 0
	buf := make([]byte, 5)
	for _, nc := range conns {
		_ = nc.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := io.ReadFull(nc, buf); err != nil {
			t.Fatalf("read: %v", err)
		}
		switch buf[4] {
		case 0xff:
			refused++
		case 10: // protocol version 10: a greeting
			greeted++
		}
	}
	t.Logf("%d connections: %d greeted, %d refused with 1040", flood, greeted, refused)
	if greeted != c.MaxUnauthenticatedPerHost || refused != flood-greeted {
		t.Errorf("greeted %d (want %d), refused %d", greeted, c.MaxUnauthenticatedPerHost, refused)
	}
	// A real client still logs in, from another address, while they hang.
	start := time.Now()
	db, err := sql.Open("mysql", "root@tcp("+addr+")/test?timeout=5s")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v int
	if err := db.QueryRow("SELECT 1").Scan(&v); err != nil || v != 1 {
		t.Fatalf("real client during the flood: %v", err)
	}
	t.Logf("real client logged in and queried in %v", time.Since(start))
	// connect_timeout closes the greeted ones that never answered.
	closed := 0
	closedBy := time.Now().Add(c.ConnectTimeout + 10*time.Second)
	for _, nc := range conns {
		_ = nc.SetReadDeadline(closedBy)
		// The rest of the greeting, then the end of the connection.
		if _, err := io.Copy(io.Discard, nc); err == nil || !isTimeout(err) {
			closed++
		}
	}
	if closed != flood {
		t.Errorf("%d of %d connections closed after connect_timeout", closed, flood)
	}
	// And the address may log in again.
	local := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	mysql.RegisterDialContext("from2", func(ctx context.Context, addr string) (net.Conn, error) {
		return local.DialContext(ctx, "tcp", addr)
	})
	db2, err := sql.Open("mysql", "root@from2("+addr+")/test?timeout=5s")
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	if err := db2.QueryRow("SELECT 2").Scan(&v); err != nil || v != 2 {
		t.Errorf("a client of the flooding address after the flood: %v", err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
