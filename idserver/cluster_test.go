package idserver

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-db/strata/raftstore"
)

// offsetClock is the real clock plus an offset a test can set (to put a
// node's clock back).
type offsetClock struct{ off atomic.Int64 }

func (c *offsetClock) Now() time.Time { return time.Now().Add(time.Duration(c.off.Load())) }

// testCluster is an ID service of n nodes on a real raftstore test cluster
// (TCP on loopback), with each node's HTTP and gRPC API on its own port.
type testCluster struct {
	t      *testing.T
	rc     *raftstore.Cluster
	cfg    Config
	log    *slog.Logger
	mu     sync.Mutex
	fsms   map[string]*FSM
	srv    []*Server
	http   []string
	grpc   []string
	clocks []*offsetClock
}

func testServiceConfig() Config {
	cfg := DefaultConfig()
	cfg.Lease = 150 * time.Millisecond // well below the test clusters' heartbeat timeout (500ms)
	cfg.ApplyTimeout = 2 * time.Second
	cfg.Snowflake.Reserve = 500 * time.Millisecond
	cfg.Snowflake.WorkerTTL = 2 * time.Second
	return cfg
}

func testLogger() *slog.Logger {
	if os.Getenv("IDSERVER_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func newTestCluster(t *testing.T, n int, cfg Config, opts ...raftstore.ClusterOption) *testCluster {
	t.Helper()
	c := &testCluster{t: t, cfg: cfg, fsms: map[string]*FSM{}, log: testLogger()}
	lns := make([][2]net.Listener, n)
	for i := range n {
		for j := range 2 {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			lns[i][j] = ln
		}
		c.http = append(c.http, lns[i][0].Addr().String())
		c.grpc = append(c.grpc, lns[i][1].Addr().String())
		c.clocks = append(c.clocks, &offsetClock{})
	}
	opts = append([]raftstore.ClusterOption{raftstore.WithConfig(func(i int, rc *raftstore.Config) {
		rc.Meta = map[string]string{MetaHTTP: c.http[i], MetaGRPC: c.grpc[i]}
	})}, opts...)
	c.rc = raftstore.NewTestCluster(t, n, func(id string) raftstore.FSM {
		f := NewFSM()
		c.mu.Lock()
		c.fsms[id] = f
		c.mu.Unlock()
		return f
	}, opts...)
	c.srv = make([]*Server, n)
	for i := range n {
		c.startServer(i, lns[i][0], lns[i][1])
	}
	t.Cleanup(func() {
		for _, s := range c.servers() {
			s.Kill()
		}
	})
	return c
}

func (c *testCluster) startServer(i int, httpLn, grpcLn net.Listener) {
	c.t.Helper()
	node := c.rc.Nodes[i]
	c.mu.Lock()
	fsm := c.fsms[node.ID()]
	c.mu.Unlock()
	cfg := c.cfg
	cfg.Logger = c.log
	clock := c.clocks[i]
	s, err := newServer(cfg, node, fsm, clock.Now, time.Sleep)
	if err != nil {
		c.t.Fatal(err)
	}
	s.Serve(httpLn, grpcLn)
	c.mu.Lock()
	c.srv[i] = s
	c.mu.Unlock()
}

func (c *testCluster) servers() []*Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Server(nil), c.srv...)
}

// leader waits for a node that serves segment IDs and returns its index.
func (c *testCluster) leader(timeout time.Duration) int {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for i, s := range c.servers() {
			if c.rc.Up(i) && s.ready.Load() {
				return i
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.t.Fatalf("no serving leader within %v", timeout)
	return -1
}

// kill crashes node i: its APIs and its Raft node stop at once.
func (c *testCluster) kill(i int) {
	c.servers()[i].Kill()
	c.rc.Kill(i)
}

// restart brings node i back from its data directory on its old addresses.
func (c *testCluster) restart(i int) {
	c.t.Helper()
	c.rc.Restart(c.t, i)
	c.startServer(i, relisten(c.t, c.http[i]), relisten(c.t, c.grpc[i]))
}

func relisten(t *testing.T, addr string) net.Listener {
	t.Helper()
	var err error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		var ln net.Listener
		if ln, err = net.Listen("tcp", addr); err == nil {
			return ln
		}
	}
	t.Fatalf("listen again on %s: %v", addr, err)
	return nil
}

var testHTTP = &http.Client{
	Timeout:   3 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true},
}

// httpGet returns the status and body of a GET.
func httpDo(t testing.TB, method, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := testHTTP.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// httpIDs calls GET /v1/ids/{tag}?count=n on addr.
func httpIDs(ctx context.Context, addr, tag string, n int) ([]uint64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s/v1/ids/%s?count=%d", addr, tag, n), nil)
	if err != nil {
		return nil, err
	}
	resp, err := testHTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("HTTP %d: %s", resp.StatusCode, b)
	}
	var body idsResponse
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, err
	}
	if len(body.IDs) != n || body.Tag != tag {
		return nil, fmt.Errorf("asked %d IDs of %s, got %d of %s", n, tag, len(body.IDs), body.Tag)
	}
	return body.IDs, nil
}

// leafGet calls a Leaf endpoint and parses the bare number.
func leafGet(ctx context.Context, url string) (uint64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := testHTTP.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("HTTP %d: %s", resp.StatusCode, b)
	}
	return strconv.ParseUint(string(b), 10, 64)
}

// op is one completed call: when it began and ended (nanoseconds on the
// test's monotonic clock) and the IDs it returned, as ranges.
type op struct {
	start, end int64
	min, max   uint64
	ranges     []Range
	client     string
}

// history collects ops and single IDs from many goroutines.
type history struct {
	base time.Time
	mu   sync.Mutex
	ops  []op
}

func newHistory() *history { return &history{base: time.Now()} }

func (h *history) now() int64 { return int64(time.Since(h.base)) }

func (h *history) add(o op) {
	h.mu.Lock()
	h.ops = append(h.ops, o)
	h.mu.Unlock()
}

func rangesOf(ids []uint64) []Range {
	var rs []Range
	for _, id := range ids {
		if n := len(rs); n > 0 && rs[n-1].Start+rs[n-1].Count == id {
			rs[n-1].Count++
			continue
		}
		rs = append(rs, Range{Start: id, Count: 1})
	}
	return rs
}

func opOf(start, end int64, rs []Range, client string) op {
	o := op{start: start, end: end, ranges: rs, client: client, min: ^uint64(0)}
	for _, r := range rs {
		o.min = min(o.min, r.Start)
		o.max = max(o.max, r.Start+r.Count-1)
	}
	return o
}

// checkUnique fails the test if any ID appears in two ranges. It returns
// the number of IDs.
func checkUnique(t *testing.T, rs []Range) uint64 {
	t.Helper()
	n, err := uniqueIDs(rs)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func uniqueIDs(rs []Range) (uint64, error) {
	sort.Slice(rs, func(i, j int) bool { return rs[i].Start < rs[j].Start })
	var total uint64
	for i, r := range rs {
		total += r.Count
		if i > 0 {
			p := rs[i-1]
			if r.Start < p.Start+p.Count {
				return 0, fmt.Errorf("ID %d issued twice: ranges [%d, +%d) and [%d, +%d)", r.Start, p.Start, p.Count, r.Start, r.Count)
			}
		}
	}
	return total, nil
}

// checkLinearizable checks the real-time order of one tag's calls exactly:
// every ID a call returned is above every ID of every call that ended
// before it began. (For a service whose only operation is "give me IDs
// above all given out so far" this is linearizability: ordering the calls
// by their smallest ID is a legal sequential history iff this holds.)
func checkLinearizable(t *testing.T, ops []op) {
	t.Helper()
	if err := linearizable(ops); err != nil {
		t.Fatal(err)
	}
}

func linearizable(ops []op) error {
	byStart := append([]op(nil), ops...)
	sort.Slice(byStart, func(i, j int) bool { return byStart[i].start < byStart[j].start })
	byEnd := append([]op(nil), ops...)
	sort.Slice(byEnd, func(i, j int) bool { return byEnd[i].end < byEnd[j].end })
	var highest uint64
	var highestOp op
	j := 0
	for _, b := range byStart {
		for j < len(byEnd) && byEnd[j].end < b.start {
			if byEnd[j].max > highest {
				highest, highestOp = byEnd[j].max, byEnd[j]
			}
			j++
		}
		if j > 0 && b.min <= highest {
			return fmt.Errorf("not linearizable: %s's call [%v, %v] returned %d, but %s's call that ended at %v had returned %d",
				b.client, time.Duration(b.start), time.Duration(b.end), b.min, highestOp.client, time.Duration(highestOp.end), highest)
		}
	}
	return nil
}
