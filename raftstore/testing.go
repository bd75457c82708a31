package raftstore

import (
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Cluster is a Raft group of real nodes on 127.0.0.1 for tests, here and in
// consumers' packages: each node has its own free port and data directory,
// and t.Cleanup stops them all. Nodes[i] stays in place after Kill (a closed
// node answers ErrShutdown) until Restart replaces it.
type Cluster struct {
	Nodes []*Node

	newFSM func(id string) FSM
	opts   clusterOptions
	logger *slog.Logger
	dir    string

	mu          sync.Mutex
	fsms        []FSM
	cfgs        []Config
	down        []bool
	partitioned []bool
}

// ClusterOption changes how NewTestCluster builds its nodes.
type ClusterOption func(*clusterOptions)

type clusterOptions struct {
	configure []func(i int, c *Config)
}

// WithConfig lets a test adjust node i's Config (snapshot policy, Meta,
// timeouts) before it opens; it also applies to nodes added by StartNode.
func WithConfig(f func(i int, c *Config)) ClusterOption {
	return func(o *clusterOptions) { o.configure = append(o.configure, f) }
}

// TestConfig is the Config test clusters start from: DefaultConfig with
// the leader's lease as long as Raft allows. Under -race on two loaded cores
// a whole test process can stall for a few hundred milliseconds, and a
// short lease turns that into a spurious step-down; a failover still takes
// about a second. No timing makes elections impossible, so tests must
// still tolerate a leader change at any point. DataDir and BindAddr are
// left to the caller.
func TestConfig(id string) Config {
	c := DefaultConfig()
	c.NodeID = id
	c.LeaderLeaseTimeout = c.HeartbeatTimeout
	return c
}

// NewTestCluster starts n voters that bootstrap together and returns without
// waiting for a leader (see Leader). newFSM makes each node's FSM, again on
// Restart. Raft's own logs go to t.Log at Warn and above.
func NewTestCluster(t testing.TB, n int, newFSM func(id string) FSM, opts ...ClusterOption) *Cluster {
	t.Helper()
	c := &Cluster{newFSM: newFSM, dir: t.TempDir()}
	for _, o := range opts {
		o(&c.opts)
	}
	w := &tbWriter{t: t}
	t.Cleanup(w.stop) // runs last: the nodes log until they are down
	c.logger = slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
	t.Cleanup(c.shutdown)

	lns := make([]net.Listener, n)
	var peers []Peer
	for i := range lns {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			for _, l := range lns[:i] {
				l.Close()
			}
			t.Fatalf("raftstore cluster: listen: %v", err)
		}
		lns[i] = ln
		peers = append(peers, Peer{ID: nodeName(i), Addr: ln.Addr().String()})
	}
	for i, ln := range lns {
		cfg := c.config(i, ln.Addr().String())
		cfg.Bootstrap = true
		cfg.Peers = peers
		if err := c.add(cfg, ln); err != nil {
			for _, l := range lns[i+1:] {
				l.Close()
			}
			t.Fatalf("raftstore cluster: %v", err)
		}
	}
	return c
}

func nodeName(i int) string { return fmt.Sprintf("n%d", i) }

func (c *Cluster) config(i int, addr string) Config {
	cfg := TestConfig(nodeName(i))
	cfg.DataDir = filepath.Join(c.dir, nodeName(i))
	cfg.BindAddr = addr
	cfg.Logger = c.logger
	for _, f := range c.opts.configure {
		f(i, &cfg)
	}
	return cfg
}

// add opens a node on ln (which it owns from then on) and appends it.
func (c *Cluster) add(cfg Config, ln net.Listener) error {
	if err := cfg.Validate(); err != nil {
		ln.Close()
		return err
	}
	fsm := c.newFSM(cfg.NodeID)
	node, err := open(cfg, fsm, ln)
	if err != nil {
		return fmt.Errorf("open %s: %w", cfg.NodeID, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.Nodes = append(c.Nodes, node)
	c.fsms = append(c.fsms, fsm)
	c.cfgs = append(c.cfgs, cfg)
	c.down = append(c.down, false)
	c.partitioned = append(c.partitioned, false)
	return nil
}

// StartNode starts one more node with an empty data directory, not yet a
// member, and returns its index. With join it asks the running nodes to add
// it (Config.Join); without, add it with AddVoter on the leader.
func (c *Cluster) StartNode(t testing.TB, join bool) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("raftstore cluster: listen: %v", err)
	}
	c.mu.Lock()
	i := len(c.Nodes)
	var seeds []string
	for j, n := range c.Nodes {
		if !c.down[j] {
			seeds = append(seeds, n.Addr())
		}
	}
	c.mu.Unlock()
	cfg := c.config(i, ln.Addr().String())
	if join {
		cfg.Join = seeds
	}
	if err := c.add(cfg, ln); err != nil {
		t.Fatalf("raftstore cluster: %v", err)
	}
	return i
}

// Leader waits until a running, unpartitioned node is leader and returns it.
func (c *Cluster) Leader(t testing.TB, timeout time.Duration) *Node {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c.mu.Lock()
		for i, n := range c.Nodes {
			if !c.down[i] && !c.partitioned[i] && n.IsLeader() {
				c.mu.Unlock()
				return n
			}
		}
		c.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("raftstore cluster: no leader within %v", timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Kill stops node i at once: no leadership hand-over, nothing more sent. Its
// data directory stays for Restart.
func (c *Cluster) Kill(i int) {
	c.mu.Lock()
	n := c.Nodes[i]
	c.down[i] = true
	c.mu.Unlock()
	n.kill()
}

// Restart reopens node i, after Kill or Close, from its data directory on its
// old address, with a new FSM from newFSM.
func (c *Cluster) Restart(t testing.TB, i int) *Node {
	t.Helper()
	c.mu.Lock()
	old, cfg := c.Nodes[i], c.cfgs[i]
	c.mu.Unlock()
	if err := old.Close(); err != nil {
		t.Logf("raftstore cluster: close %s before restart: %v", cfg.NodeID, err)
	}
	// The port was ours a moment ago; only a stray dial could hold it.
	var ln net.Listener
	var err error
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if ln, err = net.Listen("tcp", cfg.BindAddr); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("raftstore cluster: restart %s: listen %s: %v", cfg.NodeID, cfg.BindAddr, err)
	}
	fsm := c.newFSM(cfg.NodeID)
	node, err := open(cfg, fsm, ln)
	if err != nil {
		t.Fatalf("raftstore cluster: restart %s: %v", cfg.NodeID, err)
	}
	c.mu.Lock()
	c.Nodes[i], c.fsms[i], c.down[i], c.partitioned[i] = node, fsm, false, false
	c.mu.Unlock()
	return node
}

// Partition cuts node i off: it can neither send to nor receive from anyone,
// and its open connections drop.
func (c *Cluster) Partition(i int) {
	c.mu.Lock()
	n := c.Nodes[i]
	c.partitioned[i] = true
	c.mu.Unlock()
	n.stream.setIsolated(true)
}

// Heal reconnects a partitioned node i.
func (c *Cluster) Heal(i int) {
	c.mu.Lock()
	n := c.Nodes[i]
	c.partitioned[i] = false
	c.mu.Unlock()
	n.stream.setIsolated(false)
}

// FSM returns node i's current FSM (a new one after Restart).
func (c *Cluster) FSM(i int) FSM {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fsms[i]
}

// Up reports whether node i is running: started or restarted, not killed.
func (c *Cluster) Up(i int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.down[i]
}

func (c *Cluster) shutdown() {
	c.mu.Lock()
	nodes := append([]*Node(nil), c.Nodes...)
	for i := range c.down {
		c.down[i] = true
	}
	c.mu.Unlock()
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Add(1)
		go func() { defer wg.Done(); n.kill() }()
	}
	wg.Wait()
}

// tbWriter sends log lines to t.Log until the test's cleanup stops it, after
// which t.Log would panic.
type tbWriter struct {
	mu      sync.Mutex
	t       testing.TB
	stopped bool
}

func (w *tbWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *tbWriter) stop() {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
}
