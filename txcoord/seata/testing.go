package seata

import (
	"context"
	"net"
	"sync"
	"testing"

	"github.com/strata-db/strata/raftstore"
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
