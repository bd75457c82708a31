package idserver

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"
)

var t0 = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func testSnowConfig() SnowflakeConfig {
	c := DefaultConfig().Snowflake
	c.Reserve = time.Second
	c.WorkerTTL = 3 * time.Second
	return c
}

func newTestSnowflake(t *testing.T, cfg SnowflakeConfig, owner string, prop snowProposer, clock *fakeClock) *snowflake {
	t.Helper()
	s := newSnowflake(cfg, owner, prop, clock.Now, clock.Sleep, slog.New(slog.NewTextHandler(io.Discard, nil)), testMetrics(t))
	if err := s.acquire(context.Background()); err != nil {
		t.Fatalf("acquire: %v", err)
	}
	return s
}

func snowIDs(t *testing.T, s *snowflake, n uint64) []uint64 {
	t.Helper()
	rs, err := s.next(context.Background(), n, nil)
	if err != nil {
		t.Fatalf("snowflake next(%d): %v", n, err)
	}
	var ids []uint64
	for _, r := range rs {
		for i := range r.Count {
			ids = append(ids, r.Start+i)
		}
	}
	return ids
}

func TestLayoutComposeDecode(t *testing.T) {
	l := DefaultLayout()
	if err := l.Validate(); err != nil {
		t.Fatal(err)
	}
	ms := t0.UnixMilli()
	id := l.Compose(ms, 1023, 4095)
	d, err := l.Decode(id)
	if err != nil {
		t.Fatal(err)
	}
	if d.UnixMs != ms || d.Worker != 1023 || d.Sequence != 4095 || !d.Time().Equal(t0) {
		t.Fatalf("decode(compose) = %+v", d)
	}
	if _, err := l.Decode(1 << 63); !errors.Is(err, ErrInvalid) {
		t.Fatalf("decode of a negative ID: %v", err)
	}
	bad := Layout{TimeBits: 41, WorkerBits: 10, SequenceBits: 10}
	if err := bad.Validate(); err == nil {
		t.Fatal("61-bit layout validated")
	}
}

// IDs increase and decode to this worker and the clock; a full
// millisecond waits for the next.
func TestSnowflakeIssuesIncreasingIDs(t *testing.T) {
	clock := newFakeClock(t0)
	c := newFSMCommitter(clock.Now)
	cfg := testSnowConfig()
	s := newTestSnowflake(t, cfg, "n1", c, clock)
	ids := snowIDs(t, s, 10000) // more than the 4096 of one millisecond
	for i := 1; i < len(ids); i++ {
		if ids[i] <= ids[i-1] {
			t.Fatalf("ID %d not above %d", ids[i], ids[i-1])
		}
	}
	first, _ := cfg.Layout.Decode(ids[0])
	last, _ := cfg.Layout.Decode(ids[len(ids)-1])
	w, _ := s.status()
	if first.Worker != w || first.UnixMs < t0.UnixMilli() || last.UnixMs-first.UnixMs < 2 {
		t.Fatalf("first %+v last %+v worker %d", first, last, w)
	}
	// Only a couple of Raft round trips for all of that.
	if n := c.calls.Load(); n > 3 {
		t.Fatalf("%d round trips for 10000 IDs in a few ms", n)
	}
}

func TestSnowflakeClockRollback(t *testing.T) {
	clock := newFakeClock(t0)
	c := newFSMCommitter(clock.Now)
	cfg := testSnowConfig()
	s := newTestSnowflake(t, cfg, "n1", c, clock)
	clock.Advance(10 * time.Millisecond)
	before := snowIDs(t, s, 5)

	// A few milliseconds back: waited out, IDs keep increasing.
	clock.Advance(-3 * time.Millisecond)
	after := snowIDs(t, s, 5)
	if after[0] <= before[len(before)-1] {
		t.Fatalf("after a 3ms rollback: %d not above %d", after[0], before[len(before)-1])
	}

	// A second back: refused, with the reason.
	clock.Advance(-time.Second)
	_, err := s.next(context.Background(), 1, nil)
	var cb *ClockBackwardsError
	if !errors.As(err, &cb) || !errors.Is(err, ErrUnavailable) || cb.Behind < 1000 {
		t.Fatalf("1s rollback: %v", err)
	}
	t.Logf("error: %v", err)

	// Once the clock is past the last timestamp again, IDs flow.
	clock.Advance(time.Second + time.Millisecond)
	again := snowIDs(t, s, 1)
	if again[0] <= after[len(after)-1] {
		t.Fatalf("after recovery: %d not above %d", again[0], after[len(after)-1])
	}
}

// A node restarted with its clock set back never repeats an ID: it takes a
// worker whose reservation is behind its clock, or, when none is free,
// waits or refuses.
func TestSnowflakeRestartWithClockSetBack(t *testing.T) {
	clock := newFakeClock(t0)
	c := newFSMCommitter(clock.Now)
	cfg := testSnowConfig()
	cfg.Layout.WorkerBits, cfg.Layout.TimeBits = 1, 50 // two workers: easy to run out

	s1 := newTestSnowflake(t, cfg, "n1", c, clock)
	seen := map[uint64]bool{}
	for range 50 {
		for _, id := range snowIDs(t, s1, 100) {
			seen[id] = true
		}
		clock.Advance(time.Millisecond)
	}
	w1, _ := s1.status()

	// "Restart" n1 with the clock 10s back: a fresh worker, no repeats.
	clock.Set(t0.Add(-10 * time.Second))
	s2 := newTestSnowflake(t, cfg, "n1", c, clock)
	w2, _ := s2.status()
	if w2 == w1 {
		t.Fatalf("restart behind its reservation kept worker %d", w1)
	}
	for range 50 {
		for _, id := range snowIDs(t, s2, 100) {
			if seen[id] {
				t.Fatalf("ID %d issued again after the restart", id)
			}
			seen[id] = true
		}
		clock.Advance(time.Millisecond)
	}

	// Restart again, clock back once more: both workers' reservations are
	// ahead of the clock, so it must refuse rather than repeat.
	clock.Set(t0.Add(-20 * time.Second))
	s3 := newSnowflake(cfg, "n1", c, clock.Now, clock.Sleep, slog.New(slog.NewTextHandler(io.Discard, nil)), testMetrics(t))
	if err := s3.acquire(context.Background()); err != nil {
		t.Fatalf("acquire: %v", err)
	}
	if _, err := s3.next(context.Background(), 1, nil); !errors.As(err, new(*ClockBackwardsError)) {
		t.Fatalf("restart 20s back with no fresh worker: %v, want a ClockBackwardsError", err)
	}
	// When the clock is right again it issues, still without repeats.
	clock.Set(t0.Add(2 * time.Second))
	for _, id := range snowIDs(t, s3, 1000) {
		if seen[id] {
			t.Fatalf("ID %d issued again", id)
		}
	}
}

// A node cut off from the leader issues only within what it reserved, and
// the next holder of its worker starts above that.
func TestSnowflakeWorkerChangesHandsSafely(t *testing.T) {
	clock := newFakeClock(t0)
	c := newFSMCommitter(clock.Now)
	cfg := testSnowConfig()
	cfg.Layout.WorkerBits, cfg.Layout.TimeBits = 1, 50
	a := newTestSnowflake(t, cfg, "a", c, clock)
	b := newTestSnowflake(t, cfg, "b", c, clock)
	wa, _ := a.status()
	wb, _ := b.status()
	if wa == wb {
		t.Fatalf("a and b both hold worker %d", wa)
	}
	fromA := snowIDs(t, a, 10)

	// a loses the leader: it can issue until its reservation runs out, then refuses.
	down := errors.New("no leader")
	c.fail.Store(&down)
	clock.Advance(cfg.Reserve / 2)
	fromA = append(fromA, snowIDs(t, a, 10)...)
	clock.Advance(cfg.Reserve)
	if _, err := a.next(context.Background(), 1, nil); !errors.Is(err, down) {
		t.Fatalf("a past its reservation without a leader: %v", err)
	}

	// Later a's lease lapses; a new node c gets a's worker and starts above a.
	c.fail.Store(nil)
	clock.Advance(cfg.WorkerTTL)
	if err := b.extend(context.Background()); err != nil {
		t.Fatal(err)
	}
	cNode := newTestSnowflake(t, cfg, "c", c, clock)
	wc, _ := cNode.status()
	if wc != wa {
		t.Fatalf("c got worker %d, want a's lapsed %d", wc, wa)
	}
	fromC := snowIDs(t, cNode, 10)
	if fromC[0] <= fromA[len(fromA)-1] {
		t.Fatalf("c's first ID %d not above a's last %d on the same worker", fromC[0], fromA[len(fromA)-1])
	}
	// a cannot extend any more.
	if err := a.extend(context.Background()); !errors.Is(err, errLeaseLost) {
		t.Fatalf("a extending a lost worker: %v", err)
	}
}

func TestSnowflakeTimeBitsRunOut(t *testing.T) {
	cfg := testSnowConfig()
	cfg.Layout = Layout{EpochMs: t0.UnixMilli(), TimeBits: 21, WorkerBits: 20, SequenceBits: 22}
	if err := cfg.Layout.Validate(); err != nil {
		t.Fatal(err)
	}
	clock := newFakeClock(t0.Add(time.Duration(1<<21-5) * time.Millisecond))
	c := newFSMCommitter(clock.Now)
	s := newTestSnowflake(t, cfg, "n1", c, clock)
	snowIDs(t, s, 1)
	clock.Advance(10 * time.Millisecond)
	if _, err := s.next(context.Background(), 1, nil); !errors.Is(err, ErrExhausted) {
		t.Fatalf("past the last timestamp: %v", err)
	}
}
