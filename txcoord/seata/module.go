package seata

import (
	"encoding/json"
	"fmt"
	"sync"

	"github.com/seata/seata-go/pkg/protocol/message"
)

// ModuleID is the first byte of every Raft entry of this module in the
// coordinator's log (1 is the XA decisions).
const ModuleID byte = 2

// recentCap bounds the memory of finished transactions kept to answer a
// TM that waits for the end of phase two on another node.
const recentCap = 4096

// Module is the Seata TC's part of the coordinator's replicated state: it
// applies Commands in Raft order and tells local waiters that something
// changed. It is safe for concurrent use.
type Module struct {
	mu      sync.Mutex
	st      *State
	changed chan struct{} // closed and replaced at every apply
	// recent remembers the final status of the last finished transactions,
	// so that a TM's commit waiting on a follower learns the outcome after
	// the transaction left the state. Derived from applies only, so every
	// node agrees, but not in snapshots: after a restore an unknown XID is
	// Finished, as Seata's server answers.
	recent     map[string]message.GlobalStatus
	recentRing []string
	work       chan string // XIDs that entered phase two; the driver drains it
	metrics    *Metrics
}

// NewModule returns an empty module. m may be nil (no metrics).
func NewModule(m *Metrics) *Module {
	return &Module{
		st:      NewState(),
		changed: make(chan struct{}),
		recent:  map[string]message.GlobalStatus{},
		work:    make(chan string, 1024),
		metrics: m,
	}
}

// ID is the module's byte in the coordinator's log.
func (m *Module) ID() byte { return ModuleID }

// Apply decodes and applies one command. A command that cannot be decoded
// is a deterministic refusal.
func (m *Module) Apply(index uint64, cmd []byte) ([]byte, error) {
	var c Command
	if err := json.Unmarshal(cmd, &c); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCommand, err)
	}
	m.mu.Lock()
	var before message.GlobalStatus
	if g := m.st.Globals[c.XID]; g != nil {
		before = g.Status
	}
	r := m.st.Apply(index, c)
	key := c.XID
	if c.Op == OpBegin {
		key = r.XID
	}
	g := m.st.Globals[key]
	switch {
	case g != nil && inPhaseTwo(g.Status) && before != g.Status:
		select {
		case m.work <- g.XID:
		default: // the driver's periodic scan finds it
		}
	case g == nil && before != 0 && final(r.Status):
		m.remember(key, r.Status)
	}
	if m.metrics != nil {
		m.metrics.observe(before, g, r)
	}
	close(m.changed)
	m.changed = make(chan struct{})
	m.mu.Unlock()
	return json.Marshal(r)
}

func (m *Module) remember(xid string, s message.GlobalStatus) {
	if _, ok := m.recent[xid]; ok {
		return
	}
	if len(m.recentRing) >= recentCap {
		delete(m.recent, m.recentRing[0])
		m.recentRing = m.recentRing[1:]
	}
	m.recent[xid] = s
	m.recentRing = append(m.recentRing, xid)
}

// Snapshot returns the whole state.
func (m *Module) Snapshot() ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.st.marshal()
}

// Restore replaces the state with a snapshot's.
func (m *Module) Restore(data []byte) error {
	st, err := unmarshalState(data)
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.st = st
	close(m.changed)
	m.changed = make(chan struct{})
	m.mu.Unlock()
	if m.metrics != nil {
		m.metrics.reset(st)
	}
	return nil
}

// global returns a copy of one open transaction, or ok false and the final
// status this node remembers for it (Finished if none).
func (m *Module) global(xid string) (g Global, ok bool, end message.GlobalStatus) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur := m.st.Globals[xid]; cur != nil {
		g = *cur
		g.Branches = make([]*Branch, len(cur.Branches))
		for i, b := range cur.Branches {
			bc := *b
			g.Branches[i] = &bc
		}
		return g, true, 0
	}
	if s, ok := m.recent[xid]; ok {
		return g, false, s
	}
	return g, false, message.GlobalStatusFinished
}

// watch returns a channel closed at the next apply.
func (m *Module) watch() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.changed
}

// List returns the open global transactions, oldest first: the admin view
// (SHOW STRATA TRANSACTIONS, the console) of this node's replica.
func (m *Module) List() []Global {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.st.list()
}

// xids returns the open transactions in phase two and those in Begin
// whose timeout has passed at nowMs.
func (m *Module) pending(nowMs int64) (phaseTwo, expired []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for x, g := range m.st.Globals {
		switch {
		case inPhaseTwo(g.Status):
			phaseTwo = append(phaseTwo, x)
		case g.Status == message.GlobalStatusBegin && g.TimeoutMs > 0 && nowMs >= g.BeginMs+g.TimeoutMs:
			expired = append(expired, x)
		}
	}
	return phaseTwo, expired
}
