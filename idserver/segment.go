package idserver

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Range is the IDs Start, Start+1, ..., Start+Count-1.
type Range struct{ Start, Count uint64 }

// reserver commits a reservation of count IDs of tag through Raft and
// returns the range the FSM assigned.
type reserver interface {
	reserve(ctx context.Context, tag string, count uint64) (reserveResult, error)
}

// servingGate is the leader's permission to serve from cached ranges.
type servingGate interface {
	// check is called under a tag's lock right before IDs are taken:
	// nil to serve, errLeaseExpired to renew first, anything else to fail.
	check() error
	// renew confirms leadership with a quorum and extends the lease.
	renew(ctx context.Context) error
}

// errLeaseExpired: still the leader, but the lease must be renewed before
// serving from memory.
var errLeaseExpired = errors.New("idserver: leader lease expired")

// errDropped: the buffer was dropped (leadership changed) while in use.
var errDropped = errors.New("idserver: range buffer dropped")

// segments is the leader's in-memory side of segment mode: per tag, a
// double buffer of ranges reserved through Raft.
type segments struct {
	cfg     Config
	res     reserver
	gate    servingGate
	clock   func() time.Time
	fillCtx context.Context // bounds reservations; ends when the server closes
	m       *metrics

	mu   sync.Mutex
	tags map[string]*tagBuf
}

func newSegments(cfg Config, res reserver, gate servingGate, clock func() time.Time, fillCtx context.Context, m *metrics) *segments {
	return &segments{cfg: cfg, res: res, gate: gate, clock: clock, fillCtx: fillCtx, m: m, tags: map[string]*tagBuf{}}
}

// span is the IDs [lo, hi).
type span struct{ lo, hi uint64 }

func (s span) len() uint64 { return s.hi - s.lo }

// tagBuf is one tag's buffer. Invariant: every ID in cur is below every ID
// in nxt, and both are above every ID already served from this buffer.
type tagBuf struct {
	tag    string
	served prometheus.Counter

	mu       sync.Mutex
	cur, nxt span
	top      uint64 // end of the highest range accepted; lower ones are dropped
	fill     *fillOp
	base     uint64 // the tag's own step (from the FSM)
	step     uint64 // the current dynamic step
	lastFill time.Time
	dead     bool
}

type fillOp struct {
	done chan struct{}
	err  error
}

// reset drops every cached range: after losing leadership (the ranges may
// be below what a new leader serves) and before serving as a new leader.
func (a *segments) reset() {
	a.mu.Lock()
	old := a.tags
	a.tags = map[string]*tagBuf{}
	a.mu.Unlock()
	for _, b := range old {
		b.mu.Lock()
		b.dead = true
		b.cur, b.nxt = span{}, span{}
		b.mu.Unlock()
	}
}

func (a *segments) buf(tag string, base uint64) *tagBuf {
	a.mu.Lock()
	defer a.mu.Unlock()
	b := a.tags[tag]
	if b == nil {
		b = &tagBuf{tag: tag, base: base, step: base, served: a.m.idsServed.WithLabelValues(tag, "segment")}
		a.tags[tag] = b
	}
	return b
}

// next takes count IDs of tag, appended to out as increasing ranges. base
// is the tag's step as the FSM knows it (DefaultStep for a new tag).
func (a *segments) next(ctx context.Context, tag string, count uint64, base uint64, out []Range) ([]Range, error) {
	for {
		res, err := a.buf(tag, base).take(ctx, a, count, out)
		if err == errDropped {
			continue // the gate decides whether a fresh buffer may serve
		}
		return res, err
	}
}

func (b *tagBuf) take(ctx context.Context, a *segments, count uint64, out []Range) ([]Range, error) {
	start, total := len(out), count
	b.mu.Lock()
	for count > 0 {
		if b.dead {
			b.mu.Unlock()
			return out[:start], errDropped
		}
		if err := a.gate.check(); err != nil {
			b.mu.Unlock()
			if err != errLeaseExpired {
				return out[:start], err
			}
			if err := a.gate.renew(ctx); err != nil {
				return out[:start], err
			}
			b.mu.Lock()
			continue
		}
		if b.cur.len() == 0 && b.nxt.len() > 0 {
			b.cur, b.nxt = b.nxt, span{}
		}
		if n := b.cur.len(); n > 0 {
			k := min(count, n)
			out = append(out, Range{Start: b.cur.lo, Count: k})
			if !debugReissue() {
				b.cur.lo += k
			}
			count -= k
			continue
		}
		f := b.fill
		if f == nil {
			f = b.startFill(a, count)
		}
		b.mu.Unlock()
		select {
		case <-f.done:
		case <-ctx.Done():
			return out[:start], ctx.Err()
		}
		if f.err != nil {
			return out[:start], f.err
		}
		b.mu.Lock()
	}
	b.maybePrefetch(a)
	b.mu.Unlock()
	b.served.Add(float64(total))
	return out, nil
}

// maybePrefetch reserves the next range once a tenth of the current one is
// used, so that it is there before the current one runs out.
func (b *tagBuf) maybePrefetch(a *segments) {
	if b.fill == nil && b.nxt.len() == 0 && b.cur.len()*10 < b.step*9 {
		b.startFill(a, 0)
	}
}

// startFill starts reserving max(need, step) IDs; called with b.mu held.
// need > 0 means a caller is waiting: the buffer ran dry, so the step was
// too small for the load and the Raft latency, and grows fourfold. Else the
// step doubles while ranges last under StepTarget and halves while they
// last over 4*StepTarget, within [base, MaxStep].
func (b *tagBuf) startFill(a *segments, need uint64) *fillOp {
	now := a.clock()
	top := max(a.cfg.MaxStep, b.base)
	if !b.lastFill.IsZero() {
		switch el := now.Sub(b.lastFill); {
		case el > 4*a.cfg.StepTarget:
			b.step = max(b.step/2, b.base)
		case need > 0:
			b.step = min(b.step*4, top)
		case el < a.cfg.StepTarget:
			b.step = min(b.step*2, top)
		}
	}
	b.lastFill = now
	f := &fillOp{done: make(chan struct{})}
	b.fill = f
	n := max(need, b.step)
	a.m.segmentStep.WithLabelValues(b.tag).Set(float64(b.step))
	go b.runFill(a, f, n)
	return f
}

func (b *tagBuf) runFill(a *segments, f *fillOp, n uint64) {
	ctx, cancel := context.WithTimeout(a.fillCtx, a.cfg.ApplyTimeout)
	r, err := a.res.reserve(ctx, b.tag, n)
	cancel()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.fill = nil
	f.err = err
	close(f.done)
	if err != nil {
		return
	}
	a.m.refills.WithLabelValues(b.tag).Inc()
	if r.Step > 0 && r.Step != b.base {
		b.base = r.Step
		b.step = max(b.step, b.base)
	}
	if b.dead || r.Start < b.top {
		return // reserved for nothing: a gap, never a repeat
	}
	sp := span{lo: r.Start, hi: r.Start + r.Count}
	if b.cur.len() == 0 {
		b.cur = sp
	} else {
		b.nxt = sp
	}
	b.top = sp.hi
}
