package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/strata-db/strata/txcoord/client"
)

var txcoordBanner = regexp.MustCompile(`txcoord \S+: gRPC (\S+), Raft`)

// runTxcoordCmd starts `strata txcoord` with args and returns its gRPC
// address once it has printed it; stop ends it.
func runTxcoordCmd(t *testing.T, args ...string) (grpcAddr string, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out, errOut := &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- RunWithOutput(ctx, append([]string{"txcoord"}, args...), out, errOut) }()
	var once bool
	stop = func() error {
		if once {
			return nil
		}
		once = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			t.Fatal("strata txcoord did not stop")
			return nil
		}
	}
	t.Cleanup(func() { stop() })
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if m := txcoordBanner.FindStringSubmatch(out.String()); m != nil {
			return m[1], stop
		}
		select {
		case err := <-done:
			t.Fatalf("strata txcoord ended: %v\n%s", err, errOut)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("strata txcoord printed no address\n%s", errOut)
		}
	}
}

func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().String())
	}
	for _, ln := range lns {
		ln.Close()
	}
	return out
}

// Three `strata txcoord` nodes form a group; decisions go on after the
// node a client talks to stops.
func TestTxcoordCommandGroup(t *testing.T) {
	raft, grpc := freeAddrs(t, 3), freeAddrs(t, 3)
	var peers []string
	for i := range 3 {
		peers = append(peers, fmt.Sprintf("tx%d=%s", i, raft[i]))
	}
	stops := make([]func() error, 3)
	for i := range 3 {
		_, stops[i] = runTxcoordCmd(t, "--id", fmt.Sprintf("tx%d", i), "--data", t.TempDir(), "--raft-addr", raft[i], "--grpc-addr", grpc[i],
			"--bootstrap", "--peers", strings.Join(peers, ","), "--log-level", "warn", "--seata-addr", "127.0.0.1:0")
	}
	cfg := client.DefaultConfig()
	cfg.Addrs = grpc
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	decide := func() {
		t.Helper()
		id, err := c.NextTxID(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if d, err := c.Decide(ctx, id, client.Commit, []string{"s0", "s1"}); err != nil || d != client.Commit {
			t.Fatalf("decide %d: %v %v", id, d, err)
		}
	}
	decide()
	if err := stops[0](); err != nil {
		t.Fatalf("stop tx0: %v", err)
	}
	decide()
}

func TestTxcoordCommandBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--data", t.TempDir()}, "pass --bootstrap"},
		{[]string{"--bootstrap", "--peers", "nonsense"}, "not id=raftaddr"},
		{[]string{"--bootstrap", "--txcoord-retention", "1ms"}, "Retention"},
		{[]string{"--bootstrap", "--txcoord-proposers", "100"}, "Proposers"},
		{[]string{"--bootstrap", "--grpc-addr", "nowhere"}, "gRPC"},
	} {
		args := append([]string{"txcoord", "--raft-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0", "--seata-addr", "127.0.0.1:0", "--data", t.TempDir()}, tc.args...)
		err := RunWithOutput(context.Background(), args, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error with %q", tc.args, err, tc.want)
		}
	}
}

var upTxBanner = regexp.MustCompile(`Transaction coordinator \(one node\): gRPC (\S+),`)

// `strata up` runs a coordinator node and points the proxy at it.
func TestUpRunsCoordinator(t *testing.T) {
	out, stop := startUp(t, "--data", t.TempDir(), "--mariadb-port", "0", "--shards", "1", "--replicas", "0", "--innodb-buffer-pool", "32M")
	m := upTxBanner.FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no coordinator in the banner:\n%s", out)
	}
	cfg := client.DefaultConfig()
	cfg.Addrs = []string{m[1]}
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	id, err := c.NextTxID(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if d, err := c.Decide(context.Background(), id, client.Abort, nil); err != nil || d != client.Abort {
		t.Fatalf("decide: %v %v", d, err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// A node's HTTP views: /healthz says its role as JSON; /transactions
// lists the decisions not completed; /seata/transactions the Seata TC's
// open global transactions (the console's panels read these).
func TestTxcoordHTTPViews(t *testing.T) {
	h := freeAddrs(t, 1)[0]
	grpcAddr, stop := runTxcoordCmd(t, "--bootstrap", "--data", t.TempDir(), "--raft-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0",
		"--http-addr", h, "--seata-addr", "127.0.0.1:0", "--log-level", "warn")
	defer stop()
	cfg := client.DefaultConfig()
	cfg.Addrs = []string{grpcAddr}
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	id, err := c.NextTxID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Decide(ctx, id, client.Commit, []string{"s0", "s1"}); err != nil {
		t.Fatal(err)
	}
	get := func(path string) string {
		t.Helper()
		resp, err := http.Get("http://" + h + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Fatalf("%s: %d %s %s", path, resp.StatusCode, resp.Header.Get("Content-Type"), b)
		}
		return string(b)
	}
	if b := get("/healthz"); !strings.Contains(b, `"leader":true`) {
		t.Errorf("/healthz: %s", b)
	}
	if b := get("/transactions"); !strings.Contains(b, fmt.Sprintf(`{"id":%d,"decision":"commit","shards":["s0","s1"]`, id)) {
		t.Errorf("/transactions: %s", b)
	}
	if b := get("/seata/transactions"); strings.TrimSpace(b) != "[]" {
		t.Errorf("/seata/transactions: %s", b)
	}
}
