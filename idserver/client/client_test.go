package client_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/strata-db/strata/idserver"
	"github.com/strata-db/strata/idserver/client"
	"github.com/strata-db/strata/raftstore"
)

// startNode starts a one-node ID service in a temporary directory.
func startNode(t testing.TB) *idserver.Node {
	t.Helper()
	rc := raftstore.DefaultConfig()
	rc.NodeID, rc.DataDir, rc.BindAddr, rc.Bootstrap = "n0", t.TempDir(), "127.0.0.1:0", true
	rc.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := idserver.DefaultConfig()
	cfg.Logger = rc.Logger
	n, err := idserver.StartNode(idserver.NodeConfig{Service: cfg, Raft: rc, HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// deadAddr is a loopback address nothing listens on.
func deadAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestSequenceBuffersAndFailsOver(t *testing.T) {
	n := startNode(t)
	cfg := client.DefaultConfig()
	cfg.Addrs = []string{deadAddr(t), n.GRPCAddr} // the first node is down
	cfg.Batch, cfg.MaxBatch = 100, 10000
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()

	// Concurrent callers of one Sequence: unique IDs; one caller alone: increasing.
	var mu sync.Mutex
	seen := map[uint64]bool{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var last uint64
			for range 20000 {
				id, err := c.Next(ctx, "orders")
				if err != nil {
					t.Error(err)
					return
				}
				if id <= last {
					t.Errorf("ID %d after %d", id, last)
					return
				}
				last = id
				mu.Lock()
				if seen[id] {
					t.Errorf("ID %d twice", id)
				}
				seen[id] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()

	// Fetch is ordered after everything the buffer fetched.
	rs, err := c.Fetch(ctx, "orders", 10)
	if err != nil {
		t.Fatal(err)
	}
	var highest uint64
	for id := range seen {
		highest = max(highest, id)
	}
	if rs[0].Start <= highest {
		t.Fatalf("Fetch returned %d, not above the %d already handed out", rs[0].Start, highest)
	}

	if err := c.CreateTag(ctx, "users", 500, 10); err != nil {
		t.Fatal(err)
	}
	if id, err := c.Next(ctx, "users"); err != nil || id != 500 {
		t.Fatalf("first ID of a created tag: %d %v", id, err)
	}
	sf, err := c.Snowflake(ctx, 3)
	if err != nil {
		// The worker lease may still be on its way.
		time.Sleep(200 * time.Millisecond)
		if sf, err = c.Snowflake(ctx, 3); err != nil {
			t.Fatal(err)
		}
	}
	d, err := c.Decode(ctx, sf[0].Start)
	if err != nil || time.Since(d.Time) > time.Minute {
		t.Fatalf("decode: %+v %v", d, err)
	}

	c.Close()
	if _, err := c.Next(ctx, "never-fetched"); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("Next after Close: %v", err)
	}
}

func TestNoNodeAnswers(t *testing.T) {
	cfg := client.DefaultConfig()
	cfg.Addrs = []string{deadAddr(t), deadAddr(t)}
	cfg.Timeout, cfg.RetryFor = 100*time.Millisecond, 500*time.Millisecond
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	if _, err := c.Next(context.Background(), "orders"); err == nil {
		t.Fatal("Next with every node down succeeded")
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("gave up after %v, RetryFor is 500ms", el)
	}
}
