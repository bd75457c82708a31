package edge

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/strata-db/strata/edge/client"
	"github.com/strata-db/strata/idserver"
	"github.com/strata-db/strata/raftstore"
)

const (
	testApp    = "shop"
	testSecret = "shop-secret-0123456789"
	testAdmin  = "ops"
	testAdminS = "ops-secret-0123456789"
)

// startIDNode starts a one-node ID service in a temporary directory.
func startIDNode(t testing.TB) *idserver.Node {
	t.Helper()
	rc := raftstore.DefaultConfig()
	rc.NodeID, rc.DataDir, rc.BindAddr, rc.Bootstrap = "n0", t.TempDir(), "127.0.0.1:0", true
	rc.Logger = slog.New(slog.DiscardHandler)
	cfg := idserver.DefaultConfig()
	cfg.Logger = rc.Logger
	n, err := idserver.StartNode(idserver.NodeConfig{Service: cfg, Raft: rc, HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	// Wait until it leads and serves IDs.
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + n.HTTPAddr + "/v1/ids/warmup")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("ID service did not serve IDs: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return n
}

// testConfig is a config on a free port with an app key and an admin key,
// the ID service at idAddr (gRPC) and no proxy.
func testConfig(idAddr string) Config {
	c := DefaultConfig()
	c.Listen = "127.0.0.1:0"
	c.Apps = []App{{Name: testApp, Secret: testSecret}, {Name: testAdmin, Secret: testAdminS, Admin: true}}
	c.IDServer.Addrs = []string{idAddr}
	c.Proxy.Addr, c.Proxy.AdminURL = "", ""
	return c
}

// startEdge starts an edge for a test and closes it at the end.
func startEdge(t testing.TB, cfg Config, o Options) *Server {
	t.Helper()
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s, err := New(cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		t0 := time.Now()
		s.Close()
		if d := time.Since(t0); d > time.Second {
			t.Logf("edge %s took %v to close", s.Addr(), d)
		}
	})
	return s
}

func appClient(s *Server) *client.Client {
	return &client.Client{Base: s.URL(), Signer: client.Signer{Key: testApp, Secret: []byte(testSecret)}}
}

func adminClient(s *Server) *client.Client {
	return &client.Client{Base: s.URL(), Signer: client.Signer{Key: testAdmin, Secret: []byte(testAdminS)}}
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// do sends r and returns its status, reason header and body.
func do(t testing.TB, r *http.Request) (int, string, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("X-Strata-Reason"), string(b)
}

func readCloser(b []byte) io.ReadCloser { return io.NopCloser(bytes.NewReader(b)) }
