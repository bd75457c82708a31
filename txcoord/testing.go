package txcoord

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-db/strata/raftstore"
)

// TestGroup is a coordinator group of real nodes on 127.0.0.1 for tests,
// here and in modules' packages (txcoord/seata): Raft over TCP and each
// node's gRPC server on its own free port, built on raftstore.Cluster.
// t.Cleanup stops them all. Nodes[i] stays in place after Kill until
// Restart replaces it; a node keeps its gRPC address across restarts.
type TestGroup struct {
	Nodes []*Node

	cluster    *raftstore.Cluster
	newModules func(node int) []Module

	mu        sync.Mutex
	grpcAddrs []string
	fsms      map[int]*fsm
	down      []bool
}

// NewTestGroup starts n nodes that bootstrap together; newModules makes
// node i's modules, again (empty, to be restored from disk) on Restart. It
// waits until a leader is elected. Modules that implement Runner or
// GRPCService are started as by Start.
func NewTestGroup(t testing.TB, n int, newModules func(node int) []Module) *TestGroup {
	t.Helper()
	g := &TestGroup{newModules: newModules, fsms: map[int]*fsm{}, down: make([]bool, n)}
	// Free gRPC ports first: each node's Meta carries its address.
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("txcoord test group: listen: %v", err)
		}
		g.grpcAddrs = append(g.grpcAddrs, ln.Addr().String())
		ln.Close()
	}
	g.cluster = raftstore.NewTestCluster(t, n, func(id string) raftstore.FSM {
		i := nodeIndex(id)
		f, err := newFSM(newModules(i))
		if err != nil {
			panic(fmt.Sprintf("txcoord test group: node %d modules: %v", i, err))
		}
		g.mu.Lock()
		g.fsms[i] = f
		g.mu.Unlock()
		return f
	}, raftstore.WithConfig(func(i int, c *raftstore.Config) {
		c.LogStore = raftstore.LogStoreWAL // as DefaultConfig
		c.Meta = map[string]string{MetaGRPC: g.grpcAddrs[i]}
	}))
	// Registered after the cluster's cleanup, so it runs before it: the
	// modules and servers stop while Raft still runs.
	t.Cleanup(g.shutdown)
	for i := range n {
		g.Nodes = append(g.Nodes, g.serve(t, i))
	}
	g.Leader(t, 10*time.Second)
	return g
}

func nodeIndex(id string) int {
	i, err := strconv.Atoi(strings.TrimPrefix(id, "n"))
	if err != nil {
		panic(fmt.Sprintf("txcoord test group: node id %q", id))
	}
	return i
}

// serve starts node i's gRPC server and modules around its Raft node.
func (g *TestGroup) serve(t testing.TB, i int) *Node {
	t.Helper()
	var ln net.Listener
	var err error
	// The port may still be held for a moment by the killed node's server.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if ln, err = net.Listen("tcp", g.grpcAddrs[i]); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("txcoord test group: node %d: listen gRPC %s: %v", i, g.grpcAddrs[i], err)
	}
	g.mu.Lock()
	f := g.fsms[i]
	g.down[i] = false
	g.mu.Unlock()
	cfg := DefaultConfig()
	cfg.NodeID = fmt.Sprintf("n%d", i)
	cfg.Modules = modulesOf(f)
	return newNode(cfg, g.cluster.Nodes[i], f, ln, false)
}

func modulesOf(f *fsm) []Module {
	out := make([]Module, 0, len(f.modules))
	for _, m := range f.modules {
		out = append(out, m)
	}
	return out
}

// GRPCAddrs returns every node's gRPC address, in node order: what a
// client is configured with.
func (g *TestGroup) GRPCAddrs() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.grpcAddrs...)
}

// Leader waits until a running node leads and returns it and its index.
func (g *TestGroup) Leader(t testing.TB, timeout time.Duration) (*Node, int) {
	t.Helper()
	rn := g.cluster.Leader(t, timeout)
	g.mu.Lock()
	defer g.mu.Unlock()
	for i, n := range g.Nodes {
		if n.Raft == rn {
			return n, i
		}
	}
	t.Fatalf("txcoord test group: leader %s is not one of the nodes", rn.ID())
	return nil, -1
}

// Kill stops node i at once, as a crash would: its gRPC server drops its
// connections, its modules' Run is cancelled, Raft stops without handing
// leadership over. Restart brings it back from its data directory.
func (g *TestGroup) Kill(i int) {
	g.mu.Lock()
	n := g.Nodes[i]
	g.down[i] = true
	g.mu.Unlock()
	n.cancel()
	n.grpc.Stop()
	g.cluster.Kill(i)
	_ = n.stop(false)
}

// Restart brings node i back after Kill, with new modules from newModules
// restored from its data directory, on its old addresses.
func (g *TestGroup) Restart(t testing.TB, i int) *Node {
	t.Helper()
	g.mu.Lock()
	old := g.Nodes[i]
	g.mu.Unlock()
	_ = old.stop(false)
	g.cluster.Restart(t, i)
	n := g.serve(t, i)
	g.mu.Lock()
	g.Nodes[i] = n
	g.mu.Unlock()
	return n
}

// Up reports whether node i runs (not killed).
func (g *TestGroup) Up(i int) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return !g.down[i]
}

func (g *TestGroup) shutdown() {
	g.mu.Lock()
	nodes := append([]*Node(nil), g.Nodes...)
	g.mu.Unlock()
	for _, n := range nodes {
		_ = n.stop(false) // Raft is the cluster's to stop, in its own cleanup
	}
}

// NewXATestGroup is NewTestGroup with the XA module (its default config)
// on every node: the coordinator a proxy's tests point
// transactions.coordinator at (GRPCAddrs).
func NewXATestGroup(t testing.TB, n int) *TestGroup {
	t.Helper()
	return NewTestGroup(t, n, func(int) []Module {
		x, err := NewXA(DefaultXAConfig())
		if err != nil {
			panic(fmt.Sprintf("txcoord test group: XA module: %v", err))
		}
		return []Module{x}
	})
}
