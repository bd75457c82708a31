package seata

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"

	"github.com/strata-db/strata/raftstore"
	"github.com/strata-db/strata/txcoord"
)

// LocalProposer applies commands to a Module directly, in one process,
// with no Raft: a one-node stand-in for unit tests and examples of the TC.
// It is always the leader.
type LocalProposer struct {
	Mod *Module
	mu  sync.Mutex
	idx uint64
}

// Propose applies cmd at the next index.
func (p *LocalProposer) Propose(_ context.Context, module byte, cmd []byte) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.idx++
	return p.Mod.Apply(p.idx, cmd)
}

// Barrier has nothing to wait for.
func (p *LocalProposer) Barrier(context.Context) error { return nil }

// IsLeader is always true.
func (p *LocalProposer) IsLeader() bool { return true }

// Subscribe reports leadership once.
func (p *LocalProposer) Subscribe() (<-chan raftstore.LeadershipEvent, func()) {
	ch := make(chan raftstore.LeadershipEvent, 1)
	ch <- raftstore.LeadershipEvent{IsLeader: true, Term: 1}
	return ch, func() {}
}

// StartLocal starts a TC on a free loopback port over a LocalProposer and
// stops it when the test ends.
func StartLocal(t testing.TB, cfg Config) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Addr = ln.Addr().String()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	mod := NewModule(NewMetrics(nil))
	s := newServer(cfg, &LocalProposer{Mod: mod}, mod, ln)
	t.Cleanup(func() { s.Close() })
	return s
}

// Group is a coordinator group of real txcoord nodes on loopback, each
// running a TC on its own Seata address, for tests here and in examples.
type Group struct {
	*txcoord.TestGroup
	// Addrs are the nodes' Seata addresses, in node order: a grouplist.
	Addrs []string

	mu  sync.Mutex
	tcs []*TC
}

// StartGroup starts an n-node group whose nodes run a TC each with cfg
// (Addr replaced by a free port per node, kept across restarts), and stops
// it when the test ends.
func StartGroup(t testing.TB, n int, cfg Config) *Group {
	t.Helper()
	g := &Group{tcs: make([]*TC, n)}
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		g.Addrs = append(g.Addrs, ln.Addr().String())
		ln.Close()
	}
	g.TestGroup = txcoord.NewTestGroup(t, n, func(i int) []txcoord.Module {
		c := cfg
		c.Addr = g.Addrs[i]
		tc, err := New(c, nil)
		if err != nil {
			panic(fmt.Sprintf("seata test group: node %d: %v", i, err))
		}
		g.mu.Lock()
		g.tcs[i] = tc
		g.mu.Unlock()
		return []txcoord.Module{tc}
	})
	return g
}

// TC returns node i's TC (replaced on Restart).
func (g *Group) TC(i int) *TC {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.tcs[i]
}
