package idserver_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/strata-db/strata/idserver"
	"github.com/strata-db/strata/idserver/client"
	"github.com/strata-db/strata/idserver/idpb"
	"github.com/strata-db/strata/raftstore"
)

// The benchmarks run a one-node service (real Raft on disk) and the load
// in one process, client and server sharing the machine's cores; each
// reports IDs/s. See scripts/bench-ids.sh for wrk against a real server.

func benchNode(b *testing.B) *idserver.Node { return benchNodeT(b) }

func benchNodeT(b testing.TB) *idserver.Node {
	b.Helper()
	rc := raftstore.DefaultConfig()
	rc.NodeID, rc.DataDir, rc.BindAddr, rc.Bootstrap = "n0", b.TempDir(), "127.0.0.1:0", true
	rc.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := idserver.DefaultConfig()
	cfg.Logger = rc.Logger
	n, err := idserver.StartNode(idserver.NodeConfig{Service: cfg, Raft: rc, HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { n.Close() })
	for deadline := time.Now().Add(10 * time.Second); !n.Server.Status().Serving; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("node not serving")
		}
	}
	return n
}

func reportIDs(b *testing.B, ids float64) {
	b.ReportMetric(ids/b.Elapsed().Seconds(), "ids/s")
}

// BenchmarkClientBuffered: the Go client's Next from its local buffer, one
// goroutine.
func BenchmarkClientBuffered(b *testing.B) {
	n := benchNode(b)
	cfg := client.DefaultConfig()
	cfg.Addrs = []string{n.GRPCAddr}
	c, err := client.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	seq := c.Sequence("bench")
	ctx := context.Background()
	if _, err := seq.Next(ctx); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := seq.Next(ctx); err != nil {
			b.Fatal(err)
		}
	}
	reportIDs(b, float64(b.N))
}

// BenchmarkClientBufferedParallel: the same with GOMAXPROCS goroutines on
// one Sequence.
func BenchmarkClientBufferedParallel(b *testing.B) {
	n := benchNode(b)
	cfg := client.DefaultConfig()
	cfg.Addrs = []string{n.GRPCAddr}
	c, err := client.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	seq := c.Sequence("bench")
	ctx := context.Background()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := seq.Next(ctx); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportIDs(b, float64(b.N))
}

// BenchmarkGRPCBatch1000: gRPC Next with count 1000, 16 concurrent callers.
func BenchmarkGRPCBatch1000(b *testing.B) {
	n := benchNode(b)
	cc, err := grpc.NewClient(n.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Close()
	stub := idpb.NewIDsClient(cc)
	ctx := context.Background()
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := stub.Next(ctx, &idpb.NextRequest{Tag: "bench", Count: 1000}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportIDs(b, 1000*float64(b.N))
}

// BenchmarkHTTPLeafSingle: one ID per request on the Leaf endpoint, 64
// concurrent callers (Go's HTTP client costs more CPU than wrk: use
// scripts/bench-ids.sh for the wrk figure). Reports p50 and p99.
func BenchmarkHTTPLeafSingle(b *testing.B) {
	n := benchNode(b)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 128, DisableCompression: true}}
	url := "http://" + n.HTTPAddr + "/api/segment/get/bench"
	var mu sync.Mutex
	var lat []time.Duration
	b.SetParallelism(32) // 32 x GOMAXPROCS(2) = 64 callers
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		buf := make([]byte, 64)
		for pb.Next() {
			start := time.Now()
			resp, err := hc.Get(url)
			if err != nil {
				b.Error(err)
				return
			}
			k, _ := io.ReadFull(resp.Body, buf)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("HTTP %d: %s", resp.StatusCode, buf[:k])
				return
			}
			if _, err := strconv.ParseUint(string(buf[:k]), 10, 64); err != nil {
				b.Error(err)
				return
			}
			mine = append(mine, time.Since(start))
		}
		mu.Lock()
		lat = append(lat, mine...)
		mu.Unlock()
	})
	reportIDs(b, float64(b.N))
	if len(lat) > 0 {
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	}
}
