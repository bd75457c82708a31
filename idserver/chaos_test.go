package idserver

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-db/strata/idserver/client"
)

// The acceptance test of segment mode: a real 3-node cluster over TCP, 16
// concurrent clients (HTTP JSON, HTTP Leaf, gRPC through the Go client's
// Fetch, and the Go client's buffered Next), the leader killed and
// restarted four times, over a million IDs. No ID is issued twice; every
// HTTP and gRPC call's IDs are above every ID of every call that ended
// before it began; each buffered client's IDs increase.
func TestChaosLeaderKillsNeverRepeatAnID(t *testing.T) {
	const (
		tag         = "chaos"
		kills       = 4
		wantIDs     = 1_000_000
		perBuffered = 60_000
	)
	c := newTestCluster(t, 3, testServiceConfig())
	c.leader(10 * time.Second)
	h := newHistory()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var total atomic.Uint64
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }() // on a failure too: no client outlives the test
	run := func(name string, f func(name string)) {
		wg.Add(1)
		go func() { defer wg.Done(); f(name) }()
	}

	// 4 HTTP JSON and 2 HTTP Leaf clients, each moving to the next node
	// when one fails.
	for w := range 6 {
		leaf := w >= 4
		run(fmt.Sprintf("http-%d", w), func(name string) {
			node := w % 3
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for ctx.Err() == nil {
				start := h.now()
				var ids []uint64
				var err error
				if leaf {
					var id uint64
					id, err = leafGet(ctx, "http://"+c.http[node]+"/api/segment/get/"+tag)
					ids = []uint64{id}
				} else {
					ids, err = httpIDs(ctx, c.http[node], tag, 1+rng.IntN(500))
				}
				if err != nil {
					node = (node + 1) % 3
					time.Sleep(2 * time.Millisecond)
					continue
				}
				h.add(opOf(start, h.now(), rangesOf(ids), name))
				total.Add(uint64(len(ids)))
			}
		})
	}
	// 6 gRPC clients: Fetch of 1000 (the client fails over by itself).
	for w := range 6 {
		run(fmt.Sprintf("grpc-%d", w), func(name string) {
			cl := newTestClient(t, c)
			for ctx.Err() == nil {
				start := h.now()
				rs, err := cl.Fetch(ctx, tag, 1000)
				if err != nil {
					time.Sleep(2 * time.Millisecond)
					continue
				}
				h.add(opOf(start, h.now(), fromClient(rs), name))
				total.Add(1000)
			}
		})
	}
	// 4 buffered Go clients.
	buffered := make([][]uint64, 4)
	for w := range 4 {
		run(fmt.Sprintf("buffered-%d", w), func(name string) {
			cl := newTestClient(t, c)
			seq := cl.Sequence(tag)
			ids := make([]uint64, 0, perBuffered)
			for len(ids) < perBuffered && ctx.Err() == nil {
				id, err := seq.Next(ctx)
				if err != nil {
					time.Sleep(2 * time.Millisecond)
					continue
				}
				ids = append(ids, id)
				if len(ids)%1000 == 0 {
					time.Sleep(20 * time.Millisecond) // spread over the whole run
				}
			}
			buffered[w] = ids
			total.Add(uint64(len(ids)))
		})
	}

	// Kill the leader, wait for IDs to flow again, restart it; four times.
	// waitIDs waits for the clients to have received n IDs in all; a stall
	// fails the test rather than hanging it until go test's timeout.
	waitIDs := func(n uint64, what string) {
		t.Helper()
		for deadline := time.Now().Add(time.Minute); total.Load() < n; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: only %d of %d IDs after a minute", what, total.Load(), n)
			}
		}
	}
	var outages []time.Duration
	for k := range kills {
		waitIDs(total.Load()+100_000, fmt.Sprintf("before kill %d", k+1))
		l := c.leader(10 * time.Second)
		killedAt := h.now()
		c.kill(l)
		outage := waitFlow(t, h, killedAt, 20*time.Second)
		outages = append(outages, outage)
		t.Logf("kill %d: leader n%d killed; IDs flowed again after %v", k+1, l, outage.Round(time.Millisecond))
		time.Sleep(200 * time.Millisecond)
		c.restart(l)
		time.Sleep(500 * time.Millisecond)
	}
	waitIDs(wantIDs, "after the kills")
	cancel()
	wg.Wait()

	h.mu.Lock()
	ops := h.ops
	h.mu.Unlock()
	var all []Range
	for _, o := range ops {
		all = append(all, o.ranges...)
	}
	for w, ids := range buffered {
		for i := 1; i < len(ids); i++ {
			if ids[i] <= ids[i-1] {
				t.Fatalf("buffered client %d: ID %d after %d", w, ids[i], ids[i-1])
			}
		}
		all = append(all, rangesOf(ids)...)
	}
	n := checkUnique(t, all)
	checkLinearizable(t, ops)
	sort.Slice(outages, func(i, j int) bool { return outages[i] < outages[j] })
	t.Logf("%d IDs (%d HTTP/gRPC calls, %d buffered IDs) unique and linearizable over %d leader kills; unavailability per kill: %v (median %v)",
		n, len(ops), len(buffered[0])+len(buffered[1])+len(buffered[2])+len(buffered[3]), kills, outages, outages[len(outages)/2])
	if n < wantIDs {
		t.Fatalf("only %d IDs", n)
	}
}

func newTestClient(t *testing.T, c *testCluster) *client.Client {
	cfg := client.DefaultConfig()
	cfg.Addrs = c.grpc
	cl, err := client.New(cfg)
	if err != nil {
		t.Error(err)
		return nil
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

func fromClient(rs []client.Range) []Range {
	out := make([]Range, len(rs))
	for i, r := range rs {
		out[i] = Range{Start: r.Start, Count: r.Count}
	}
	return out
}

// waitFlow waits until a call that began after since has succeeded and
// returns how long after since it ended.
func waitFlow(t *testing.T, h *history, since int64, timeout time.Duration) time.Duration {
	t.Helper()
	deadline := time.Now().Add(timeout)
	seen := 0
	for {
		h.mu.Lock()
		best := int64(-1)
		for _, o := range h.ops[seen:] {
			if o.start >= since && (best < 0 || o.end < best) {
				best = o.end
			}
		}
		h.mu.Unlock()
		if best >= 0 {
			return time.Duration(best - since)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no IDs within %v of the kill", timeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
