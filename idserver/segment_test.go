package idserver

import (
	"context"
	"errors"
	"sort"
	"sync"
	"testing"
	"time"
)

func newTestSegments(t *testing.T, res reserver, gate servingGate, clock func() time.Time) *segments {
	t.Helper()
	cfg := DefaultConfig()
	cfg.DefaultStep, cfg.MaxStep, cfg.StepTarget = 10, 640, time.Second
	return newSegments(cfg, res, gate, clock, context.Background(), testMetrics(t))
}

func takeIDs(t *testing.T, a *segments, tag string, n uint64) []uint64 {
	t.Helper()
	rs, err := a.next(context.Background(), tag, n, 10, nil)
	if err != nil {
		t.Fatalf("next(%s, %d): %v", tag, n, err)
	}
	var ids []uint64
	for _, r := range rs {
		for i := range r.Count {
			ids = append(ids, r.Start+i)
		}
	}
	if uint64(len(ids)) != n {
		t.Fatalf("next(%s, %d) gave %d IDs", tag, n, len(ids))
	}
	return ids
}

// Concurrent callers: every ID once, each call's IDs increasing, and the
// double buffer keeps Raft round trips far below one per call.
func TestSegmentsConcurrentUniqueAndFewRoundTrips(t *testing.T) {
	c := newFSMCommitter(time.Now)
	c.delay = time.Millisecond // a Raft round trip
	a := newTestSegments(t, c, &fakeGate{}, time.Now)
	const workers, calls = 16, 2000
	var mu sync.Mutex
	var all []uint64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []uint64
			for i := range calls {
				ids := takeIDs(t, a, "orders", uint64(1+i%5))
				for j := 1; j < len(ids); j++ {
					if ids[j] <= ids[j-1] {
						t.Errorf("one call's IDs not increasing: %v", ids)
					}
				}
				mine = append(mine, ids...)
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	for i := 1; i < len(all); i++ {
		if all[i] == all[i-1] {
			t.Fatalf("ID %d issued twice", all[i])
		}
	}
	trips := c.calls.Load()
	t.Logf("%d IDs in %d calls, %d reservations", len(all), workers*calls, trips)
	if trips > int64(len(all))/50 {
		t.Errorf("%d reservations for %d IDs: the buffer is not doing its job", trips, len(all))
	}
}

// Sequential calls get strictly increasing IDs, across resets (leadership
// changes) too: a reset drops the cache and the next range is above it.
func TestSegmentsIncreaseAcrossReset(t *testing.T) {
	c := newFSMCommitter(time.Now)
	a := newTestSegments(t, c, &fakeGate{}, time.Now)
	var last uint64
	for round := range 5 {
		for i := range 50 {
			ids := takeIDs(t, a, "t", uint64(1+i%3))
			if ids[0] <= last {
				t.Fatalf("round %d: ID %d after %d", round, ids[0], last)
			}
			last = ids[len(ids)-1]
		}
		before, _ := c.fsm.tag("t")
		a.reset()
		ids := takeIDs(t, a, "t", 1)
		if ids[0] < before.Next {
			t.Fatalf("after reset served %d from a dropped range (high-water mark was %d)", ids[0], before.Next)
		}
		last = ids[0]
	}
}

// A reservation that completes after a reset is not served from.
func TestSegmentsFillAfterResetIsDropped(t *testing.T) {
	c := newFSMCommitter(time.Now)
	c.gate = make(chan struct{})
	a := newTestSegments(t, c, &fakeGate{}, time.Now)
	done := make(chan []uint64)
	go func() { done <- takeIDs(t, a, "t", 1) }()
	// The first caller's fill is waiting in commit; reset, then let it go.
	for c.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	a.reset()
	close(c.gate) // the first fill commits [1, 11) into the dropped buffer
	first := <-done
	if first[0] <= 10 {
		t.Fatalf("served %d from a range reserved before the reset", first[0])
	}
}

func TestSegmentsLargeCountSpansRanges(t *testing.T) {
	c := newFSMCommitter(time.Now)
	a := newTestSegments(t, c, &fakeGate{}, time.Now)
	takeIDs(t, a, "t", 3)
	ids := takeIDs(t, a, "t", 2500) // far more than a step
	for i := 1; i < len(ids); i++ {
		if ids[i] <= ids[i-1] {
			t.Fatalf("not increasing at %d: %d after %d", i, ids[i], ids[i-1])
		}
	}
}

func TestSegmentsStepGrowsUnderLoadAndShrinksWhenIdle(t *testing.T) {
	clock := newFakeClock(time.Unix(1000, 0))
	c := newFSMCommitter(clock.Now)
	a := newTestSegments(t, c, &fakeGate{}, clock.Now)
	for range 200 {
		takeIDs(t, a, "t", 5)
		clock.Advance(time.Millisecond)
	}
	b := a.buf("t", 10)
	waitFill(b)
	b.mu.Lock()
	grown := b.step
	b.mu.Unlock()
	if grown <= 10 {
		t.Fatalf("step %d did not grow under load", grown)
	}
	if grown > 640 {
		t.Fatalf("step %d is above MaxStep", grown)
	}
	for range 2000 {
		clock.Advance(10 * time.Second)
		takeIDs(t, a, "t", 5)
		waitFill(b)
	}
	b.mu.Lock()
	shrunk := b.step
	b.mu.Unlock()
	if shrunk != 10 {
		t.Fatalf("step %d did not shrink back to the tag's step 10 when idle (was %d)", shrunk, grown)
	}
}

func waitFill(b *tagBuf) {
	for {
		b.mu.Lock()
		f := b.fill
		b.mu.Unlock()
		if f == nil {
			return
		}
		<-f.done
	}
}

func TestSegmentsGate(t *testing.T) {
	c := newFSMCommitter(time.Now)
	g := &fakeGate{}
	a := newTestSegments(t, c, g, time.Now)
	takeIDs(t, a, "t", 1)

	notLeader := error(&NotLeaderError{Leader: "10.0.0.1:9090"})
	g.err.Store(&notLeader)
	if _, err := a.next(context.Background(), "t", 1, 10, nil); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("not leader: %v", err)
	}
	expired := errLeaseExpired
	g.err.Store(&expired)
	takeIDs(t, a, "t", 1)
	if g.renewed.Load() != 1 {
		t.Fatalf("expired lease renewed %d times, want 1", g.renewed.Load())
	}

	boom := errors.New("raft is down")
	c.fail.Store(&boom)
	a.reset()
	if _, err := a.next(context.Background(), "t", 1, 10, nil); !errors.Is(err, boom) {
		t.Fatalf("failing reservation: %v", err)
	}
}
