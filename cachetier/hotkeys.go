package cachetier

import (
	"hash/maphash"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// HotKey is a row and the approximate number of accesses to it in the last
// window.
type HotKey struct {
	Row   string
	Count uint64
}

const (
	sketchDepth = 4
	sketchWidth = 4096
)

// sketch is a count-min sketch with atomic counters: recording never takes
// a lock, and a count is never underestimated (only over, by collisions).
type sketch struct {
	c [sketchDepth * sketchWidth]atomic.Uint32
}

func (s *sketch) add(h1, h2 uint64) {
	for i := uint64(0); i < sketchDepth; i++ {
		s.c[i*sketchWidth+(h1+i*h2)%sketchWidth].Add(1)
	}
}

func (s *sketch) estimate(h1, h2 uint64) uint64 {
	m := uint64(1<<63 - 1)
	for i := uint64(0); i < sketchDepth; i++ {
		if v := uint64(s.c[i*sketchWidth+(h1+i*h2)%sketchWidth].Load()); v < m {
			m = v
		}
	}
	return m
}

func (s *sketch) reset() {
	for i := range s.c {
		s.c[i].Store(0)
	}
}

// windows is the pair a tracker reads: counts are cur + prev, so an access
// is counted for between one and one and a half windows.
type windows struct {
	cur, prev *sketch
}

// hotTracker keeps an approximate sliding-window top-K. Recording is lock
// free: a key's count comes from the sketch, and only a key that is not yet
// a candidate and whose count reaches the admission threshold takes the
// lock to join the candidate set (bounded at 8·K, pruned to 2·K).
type hotTracker struct {
	k      int
	half   time.Duration
	seed   maphash.Seed
	now    func() time.Time
	w      atomic.Pointer[windows]
	next   atomic.Int64 // unix nanos of the next rotation
	thresh atomic.Uint64

	mu    sync.Mutex
	cands sync.Map // row → struct{}
	n     int      // len(cands), under mu
}

func newHotTracker(k int, window time.Duration, now func() time.Time) *hotTracker {
	t := &hotTracker{k: k, half: window / 2, seed: maphash.MakeSeed(), now: now}
	t.w.Store(&windows{cur: new(sketch), prev: new(sketch)})
	t.next.Store(now().Add(t.half).UnixNano())
	t.thresh.Store(1)
	return t
}

func (t *hotTracker) hash(row string) (uint64, uint64) {
	h := maphash.String(t.seed, row)
	return h, h>>32 | 1
}

func (t *hotTracker) record(row string) {
	if t == nil {
		return
	}
	t.maybeRotate()
	h1, h2 := t.hash(row)
	w := t.w.Load()
	w.cur.add(h1, h2)
	est := w.cur.estimate(h1, h2) + w.prev.estimate(h1, h2)
	if est < t.thresh.Load() {
		return
	}
	if _, ok := t.cands.Load(row); ok {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, loaded := t.cands.LoadOrStore(row, struct{}{}); !loaded {
		t.n++
		if t.n > 8*t.k {
			t.pruneLocked(2 * t.k)
		}
	}
}

// pruneLocked keeps the keep candidates with the highest counts and raises
// the admission threshold to the lowest of them.
func (t *hotTracker) pruneLocked(keep int) {
	all := t.rankLocked()
	if len(all) <= keep {
		return
	}
	for _, hk := range all[keep:] {
		t.cands.Delete(hk.Row)
	}
	t.n = keep
	t.thresh.Store(max(all[keep-1].Count, 1))
}

func (t *hotTracker) rankLocked() []HotKey {
	w := t.w.Load()
	var all []HotKey
	t.cands.Range(func(k, _ any) bool {
		row := k.(string)
		h1, h2 := t.hash(row)
		all = append(all, HotKey{Row: row, Count: w.cur.estimate(h1, h2) + w.prev.estimate(h1, h2)})
		return true
	})
	sort.Slice(all, func(i, j int) bool {
		if all[i].Count != all[j].Count {
			return all[i].Count > all[j].Count
		}
		return all[i].Row < all[j].Row
	})
	return all
}

// maybeRotate starts a new half-window when the current one is over: the
// oldest sketch is cleared and becomes the current one. Counts recorded
// into it while it is being cleared may be lost; the counts are estimates.
func (t *hotTracker) maybeRotate() {
	now := t.now().UnixNano()
	next := t.next.Load()
	if now < next || !t.next.CompareAndSwap(next, now+int64(t.half)) {
		return
	}
	old := t.w.Load()
	old.prev.reset()
	if now-next >= int64(t.half) {
		// Idle for a whole window or more: nothing recent is left.
		old.cur.reset()
	}
	t.w.Store(&windows{cur: old.prev, prev: old.cur})
	// Counts just halved (or so): let keys rejoin at the new scale.
	t.mu.Lock()
	t.thresh.Store(max(t.thresh.Load()/2, 1))
	t.mu.Unlock()
}

// top returns at most n keys, most accessed first, with a count above 0.
func (t *hotTracker) top(n int) []HotKey {
	if t == nil {
		return nil
	}
	t.maybeRotate()
	t.mu.Lock()
	all := t.rankLocked()
	t.mu.Unlock()
	out := all[:0]
	for _, hk := range all {
		if hk.Count == 0 || len(out) == n {
			break
		}
		out = append(out, hk)
	}
	return out
}
