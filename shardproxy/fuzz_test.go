package shardproxy_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/strata-db/strata/shardproxy"
	"github.com/strata-db/strata/shardproxy/config"
	"github.com/strata-db/strata/shardproxy/proxytest"
)

// loginBytes is what a client sends to log in as root with no password:
// the handshake response, then the empty answer to the auth switch.
func loginBytes(db string) []byte {
	caps := uint32(proxytest.CapProtocol41 | proxytest.CapSecureConnection | proxytest.CapPluginAuth | proxytest.CapConnectWithDB | proxytest.CapMultiStatements)
	return append(proxytest.Packet(1, proxytest.LoginPacket("root", db, caps)), proxytest.Packet(3, nil)...)
}

func packetSeeds() [][]byte {
	login := loginBytes("demo")
	cmd := func(payloads ...[]byte) []byte {
		out := append([]byte{}, login...)
		for _, p := range payloads {
			out = append(out, proxytest.Packet(0, p)...)
		}
		return out
	}
	return [][]byte{
		nil,
		login,
		cmd([]byte("\x03SELECT 1")),
		cmd([]byte("\x03SELECT c FROM sbtest1 WHERE id=5"), []byte("\x0e")),
		cmd([]byte("\x16SELECT c FROM sbtest1 WHERE id=?"), []byte{0x17, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 8, 0, 5, 0, 0, 0, 0, 0, 0, 0}, []byte{0x19, 1, 0, 0, 0}),
		// The fast lane: a shape seen twice; executes with and without types.
		cmd([]byte("\x03SELECT c FROM sbtest1 WHERE id=5"), []byte("\x03SELECT c FROM sbtest1 WHERE id=6")),
		cmd([]byte("\x16SELECT c FROM sbtest1 WHERE id=? AND k=?"),
			[]byte{0x17, 1, 0, 0, 0, 0, 1, 0, 0, 0, 2, 1, 8, 0, 253, 0, 5, 0, 0, 0, 0, 0, 0, 0},
			[]byte{0x17, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0, 1, 'x'}),
		cmd([]byte("\x04customers\x00")),
		cmd([]byte("\x02test"), []byte("\x03SET NAMES latin1; SELECT @@version")),
		cmd([]byte{0x1a, 1, 0, 0, 0}, []byte{0x18, 1, 0, 0, 0, 0, 0, 'x'}, []byte{0x1b, 0, 0}),
		cmd([]byte("\x03BEGIN"), []byte("\x03INSERT INTO customers (id) VALUES (1)"), []byte("\x03COMMIT")),
		// Commands answered below the listener (protocol.go).
		cmd([]byte("\x16SELECT ?"), []byte{0x18, 1, 0, 0, 0, 0, 0, 'a'}, []byte{0x18, 1, 0, 0, 0, 5, 0, 'b'},
			[]byte{0x17, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0xfc, 0}, []byte{0x1a, 1, 0, 0, 0}, []byte{0x17, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0}),
		cmd([]byte("\x11root\x00\x00test\x00-\x00mysql_native_password\x00"), []byte{}, []byte{0x09}, []byte{0x0a}, []byte{0x0d}),
		cmd([]byte("\x16SELECT 1; SELECT 2"), []byte("\x03SELECT 1;;SELECT 2"), []byte("\x03/* c */")),
		append(append([]byte{}, login...), 0xff, 0xff, 0xff, 0, 3),
		[]byte("\x00\x00\x00\x01"),
	}
}

// feedConn sends raw bytes as a client and reads until the proxy closes the
// connection. It reports a proxy that neither answers nor closes.
func feedConn(t testing.TB, addr string, in []byte) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatalf("proxy stopped accepting: %v", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = c.Write(in)
	_ = c.(*net.TCPConn).CloseWrite()
	_, err = io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("proxy neither answered nor closed within 5s: input %q", in)
	}
}

// FuzzPacketReader sends arbitrary bytes to the proxy as a client: no
// input may crash it or keep it from serving the next client.
func FuzzPacketReader(f *testing.F) {
	for _, s := range packetSeeds() {
		f.Add(s)
	}
	srv := offlineServer(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 1<<16 {
			return
		}
		feedConn(t, srv.Addr(), in)
	})
}

// TestFuzzShort is a short, bounded, deterministic run of FuzzPacketReader's
// property on mutations of its seeds, so that every `go test` exercises it
// beyond the seeds (`go test -fuzz` explores further; the fast path's is
// executor.TestFastPathFuzzShort).
func TestFuzzShort(t *testing.T) {
	srv := offlineServer(t)
	rng := rand.New(rand.NewPCG(1, 2))
	mutate := func(b []byte) []byte {
		b = append([]byte{}, b...)
		for n := rng.IntN(4) + 1; n > 0; n-- {
			switch op := rng.IntN(4); {
			case op == 0 && len(b) > 0:
				b[rng.IntN(len(b))] = byte(rng.IntN(256))
			case op == 1 && len(b) > 0:
				i := rng.IntN(len(b))
				b = append(b[:i], b[i+1:]...)
			case op == 2:
				i := rng.IntN(len(b) + 1)
				b = append(b[:i], append([]byte{byte(rng.IntN(256))}, b[i:]...)...)
			default:
				if len(b) > 2 {
					i, j := rng.IntN(len(b)), rng.IntN(len(b))
					b[i], b[j] = b[j], b[i]
				}
			}
		}
		return b
	}
	deadline := time.Now().Add(10 * time.Second)
	seeds := packetSeeds()
	for i := 0; i < 300 && time.Now().Before(deadline); i++ {
		feedConn(t, srv.Addr(), mutate(seeds[rng.IntN(len(seeds))]))
	}
}

// offlineServer is a Server whose backends do not exist: enough to take
// clients' bytes, for the packet reader's fuzzing.
func offlineServer(t testing.TB) *shardproxy.Server {
	t.Helper()
	c := config.DefaultConfig()
	c.Listen, c.AdminListen = "127.0.0.1:0", "off"
	c.CreateDatabases = false
	c.ServerVersion = "10.11.0-MariaDB-test"
	c.Shards = []config.Shard{{Name: "s0", Primary: "127.0.0.1:1"}, {Name: "s1", Primary: "127.0.0.1:2"}}
	c.Databases = map[string]*config.Database{
		"demo": {Sharded: true, Tables: map[string]*config.Table{"customers": {Kind: "sharded", Column: "id"}}},
		"test": {Shard: "s0"},
	}
	srv, err := shardproxy.New(context.Background(), shardproxy.Options{Config: c, Registry: prometheus.NewRegistry(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return srv
}
