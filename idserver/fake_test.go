package idserver

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// fakeClock is a clock tests move by hand; Sleep advances it.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{t: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Sleep(d time.Duration) { c.Advance(d) }

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// fsmCommitter commits straight into an FSM, as a one-node Raft group
// would, and counts round trips. It is both a reserver and a snowProposer.
type fsmCommitter struct {
	fsm    *FSM
	clock  func() time.Time
	calls  atomic.Int64
	delay  time.Duration
	fail   atomic.Pointer[error]
	gate   chan struct{} // when set, commits wait until it is closed
	maxTag int
}

func newFSMCommitter(clock func() time.Time) *fsmCommitter {
	return &fsmCommitter{fsm: NewFSM(), clock: clock, maxTag: 100}
}

func (f *fsmCommitter) commit(c command) (any, error) {
	f.calls.Add(1)
	if f.gate != nil {
		<-f.gate
	}
	if f.delay > 0 {
		time.Sleep(f.delay)
	}
	if p := f.fail.Load(); p != nil {
		return nil, *p
	}
	b, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	return f.fsm.Apply(0, b), nil
}

func (f *fsmCommitter) reserve(_ context.Context, tag string, n uint64) (reserveResult, error) {
	res, err := f.commit(command{Op: opReserve, Tag: tag, Count: n, Start: 1, Step: 10, MaxTags: f.maxTag})
	if err != nil {
		return reserveResult{}, err
	}
	if e, ok := res.(error); ok {
		return reserveResult{}, e
	}
	return res.(reserveResult), nil
}

func (f *fsmCommitter) proposeSnowflake(_ context.Context, c command) (workerGrant, error) {
	c.Now = f.clock().UnixMilli()
	res, err := f.commit(c)
	if err != nil {
		return workerGrant{}, err
	}
	g := res.(workerGrant)
	return g, g.err()
}

// fakeGate is a servingGate whose answer the test sets.
type fakeGate struct {
	err     atomic.Pointer[error]
	renewed atomic.Int64
}

func (g *fakeGate) check() error {
	if p := g.err.Load(); p != nil {
		return *p
	}
	return nil
}

func (g *fakeGate) renew(context.Context) error {
	g.renewed.Add(1)
	g.err.Store(nil)
	return nil
}

func testMetrics(t testing.TB) *metrics {
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return m
}
