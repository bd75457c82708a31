package idserver

import (
	"encoding/json"
	"errors"
	"testing"
)

func applyCmd(t *testing.T, f *FSM, c command) any {
	t.Helper()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return f.Apply(0, b)
}

func reserveCmd(tag string, n uint64) command {
	return command{Op: opReserve, Tag: tag, Count: n, Start: 1, Step: 100, MaxTags: 3}
}

func TestFSMReserveRangesFollowEachOther(t *testing.T) {
	f := NewFSM()
	var next uint64 = 1
	for _, n := range []uint64{1, 100, 7, 1000} {
		r, ok := applyCmd(t, f, reserveCmd("orders", n)).(reserveResult)
		if !ok {
			t.Fatalf("reserve %d: not a range", n)
		}
		if r.Start != next || r.Count != n || r.Step != 100 {
			t.Fatalf("reserve %d: got %+v, want start %d", n, r, next)
		}
		next += n
	}
	// Another tag has its own space.
	if r := applyCmd(t, f, reserveCmd("users", 5)).(reserveResult); r.Start != 1 {
		t.Fatalf("users starts at %d, want 1", r.Start)
	}
}

func TestFSMCreateAndLimits(t *testing.T) {
	f := NewFSM()
	create := func(tag string, start, step uint64) any {
		return applyCmd(t, f, command{Op: opCreate, Tag: tag, Start: start, Step: step, MaxTags: 3})
	}
	if res := create("a", 5000, 10); res != (reserveResult{Start: 5000, Step: 10}) {
		t.Fatalf("create: %v", res)
	}
	if r := applyCmd(t, f, reserveCmd("a", 3)).(reserveResult); r.Start != 5000 || r.Step != 10 {
		t.Fatalf("first range of a created tag: %+v", r)
	}
	if err, _ := create("a", 1, 1).(error); !errors.Is(err, ErrTagExists) {
		t.Fatalf("create twice: %v, want ErrTagExists", err)
	}
	if err, _ := create("b", 0, 1).(error); !errors.Is(err, ErrInvalid) {
		t.Fatalf("create with start 0: %v, want ErrInvalid", err)
	}
	create("b", 1, 1)
	create("c", 1, 1)
	if err, _ := applyCmd(t, f, reserveCmd("d", 1)).(error); !errors.Is(err, ErrExhausted) {
		t.Fatalf("a fourth tag with MaxTags 3: %v, want ErrExhausted", err)
	}
	// Near the top of the ID space.
	create2 := applyCmd(t, f, command{Op: opCreate, Tag: "top", Start: MaxID - 9, Step: 1, MaxTags: 10})
	if _, ok := create2.(reserveResult); !ok {
		t.Fatalf("create top: %v", create2)
	}
	if r := applyCmd(t, f, command{Op: opReserve, Tag: "top", Count: 10, MaxTags: 10}).(reserveResult); r.Start+r.Count-1 != MaxID {
		t.Fatalf("last range should end at MaxID: %+v", r)
	}
	if err, _ := applyCmd(t, f, command{Op: opReserve, Tag: "top", Count: 1, MaxTags: 10}).(error); !errors.Is(err, ErrExhausted) {
		t.Fatalf("past MaxID: %v, want ErrExhausted", err)
	}
	if err, _ := f.Apply(0, []byte("{not json")).(error); !errors.Is(err, ErrInvalid) {
		t.Fatalf("garbage command: %v", err)
	}
}

func TestFSMSnapshotRestore(t *testing.T) {
	f := NewFSM()
	applyCmd(t, f, reserveCmd("orders", 42))
	l := DefaultLayout()
	applyCmd(t, f, command{Op: opSFAcquire, Owner: "n1", Now: 1000, ClientNow: 1000, TTL: 10, Layout: &l})
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	g := NewFSM()
	if err := g.Restore(snap); err != nil {
		t.Fatal(err)
	}
	if r := applyCmd(t, g, reserveCmd("orders", 1)).(reserveResult); r.Start != 43 {
		t.Fatalf("after restore the next range starts at %d, want 43", r.Start)
	}
	if w, ok := g.worker(0); !ok || w.Owner != "n1" {
		t.Fatalf("worker 0 after restore: %+v %v", w, ok)
	}
	if err := g.Restore([]byte("nope")); err == nil {
		t.Fatal("restore of garbage succeeded")
	}
}

func TestFSMWorkerLeases(t *testing.T) {
	f := NewFSM()
	l := DefaultLayout()
	l.WorkerBits, l.TimeBits = 1, 50 // two workers
	acquire := func(owner string, now, clientNow int64) workerGrant {
		return applyCmd(t, f, command{Op: opSFAcquire, Owner: owner, Now: now, ClientNow: clientNow, TTL: 1000, Layout: &l}).(workerGrant)
	}
	reserve := func(owner string, w uint64, now, until int64) workerGrant {
		return applyCmd(t, f, command{Op: opSFReserve, Owner: owner, Worker: w, Now: now, Until: until, TTL: 1000, Layout: &l}).(workerGrant)
	}
	a := acquire("a", 0, 0)
	b := acquire("b", 0, 0)
	if a.err() != nil || b.err() != nil || a.Worker == b.Worker {
		t.Fatalf("two owners: %+v %+v", a, b)
	}
	if g := acquire("c", 10, 10); !errors.Is(g.err(), ErrExhausted) {
		t.Fatalf("third owner with two workers: %+v", g)
	}
	if g := reserve("a", a.Worker, 100, 5000); g.err() != nil || g.ReservedUntil != 5000 {
		t.Fatalf("reserve: %+v", g)
	}
	reserve("b", b.Worker, 1000, 1000) // b stays
	// a's lease lapses at 1100; c takes its worker and starts above a's
	// reservation, which is ahead of c's clock: c must wait it out.
	c := acquire("c", 1200, 1200)
	if c.err() != nil || c.Worker != a.Worker || c.ReservedUntil != 5000 {
		t.Fatalf("take-over of a lapsed worker: %+v", c)
	}
	if g := reserve("a", a.Worker, 1300, 9000); !errors.Is(g.err(), errLeaseLost) {
		t.Fatalf("the old owner extended a worker it lost: %+v", g)
	}
	// A different layout is refused.
	other := l
	other.EpochMs++
	if g := applyCmd(t, f, command{Op: opSFAcquire, Owner: "d", Now: 1, Layout: &other}).(workerGrant); !errors.Is(g.err(), ErrInvalid) {
		t.Fatalf("other layout: %+v", g)
	}
}

func TestFSMAcquirePrefersAWorkerBehindTheClock(t *testing.T) {
	f := NewFSM()
	l := DefaultLayout()
	g := applyCmd(t, f, command{Op: opSFAcquire, Owner: "n1", Now: 1000, ClientNow: 1000, TTL: 10000, Layout: &l}).(workerGrant)
	applyCmd(t, f, command{Op: opSFReserve, Owner: "n1", Worker: g.Worker, Now: 1000, Until: 4000, TTL: 10000, Layout: &l})
	// Restarted with the clock behind its reservation: a fresh worker, at once.
	g2 := applyCmd(t, f, command{Op: opSFAcquire, Owner: "n1", Now: 1500, ClientNow: 900, TTL: 10000, Layout: &l}).(workerGrant)
	if g2.Worker == g.Worker || g2.ReservedUntil >= 900 {
		t.Fatalf("restart behind its reservation got %+v (old worker %d)", g2, g.Worker)
	}
	// Restarted again with the clock right: it keeps the worker it holds,
	// and the one it gave up is free for others.
	g3 := applyCmd(t, f, command{Op: opSFAcquire, Owner: "n1", Now: 5000, ClientNow: 5000, TTL: 10000, Layout: &l}).(workerGrant)
	if g3.Worker != g2.Worker {
		t.Fatalf("restart got worker %d, want the one it holds, %d", g3.Worker, g2.Worker)
	}
	if w, _ := f.worker(g.Worker); w.Owner != "" || w.ReservedUntil != 4000 {
		t.Fatalf("the given-up worker: %+v, want no owner and its reservation kept", w)
	}
}

// The chaos tests' checkers catch what they look for.
func TestCheckersCatchViolations(t *testing.T) {
	if _, err := uniqueIDs([]Range{{1, 10}, {20, 5}, {10, 2}}); err == nil {
		t.Error("overlap of [1,11) and [10,12) not caught")
	}
	if n, err := uniqueIDs([]Range{{1, 10}, {11, 5}}); err != nil || n != 15 {
		t.Errorf("adjacent ranges: %d %v", n, err)
	}
	a := opOf(0, 10, []Range{{100, 10}}, "a")
	concurrent := opOf(5, 20, []Range{{50, 1}}, "b") // overlaps a in time: may be lower
	later := opOf(11, 30, []Range{{105, 1}}, "c")    // began after a ended: must be above 109
	if err := linearizable([]op{a, concurrent}); err != nil {
		t.Errorf("concurrent calls flagged: %v", err)
	}
	if err := linearizable([]op{a, later}); err == nil {
		t.Error("a later call below an earlier one not caught")
	}
}

// Snowflake commands reach the FSM from any node, and through the Internal
// gRPC service from anyone who can reach a gRPC port: a bad layout or owner
// is refused, and never recorded as the cluster's layout (nor panics or
// loops over 2^WorkerBits workers in every node's Apply).
func TestFSMRefusesBadSnowflakeCommands(t *testing.T) {
	f := NewFSM()
	good := DefaultLayout()
	for _, tc := range []struct {
		name string
		c    command
	}{
		{"negative worker bits", command{Op: opSFAcquire, Owner: "x", TTL: 1000, Layout: &Layout{TimeBits: 52, WorkerBits: -1, SequenceBits: 12}}},
		{"40 worker bits", command{Op: opSFAcquire, Owner: "x", TTL: 1000, Layout: &Layout{TimeBits: 20, WorkerBits: 40, SequenceBits: 3}}},
		{"bits past 63", command{Op: opSFReserve, Owner: "x", TTL: 1000, Layout: &Layout{TimeBits: 41, WorkerBits: 10, SequenceBits: 22}}},
		{"no owner", command{Op: opSFAcquire, TTL: 1000, Layout: &good}},
		{"no layout", command{Op: opSFAcquire, Owner: "x", TTL: 1000}},
	} {
		g, ok := applyCmd(t, f, tc.c).(workerGrant)
		if !ok || !errors.Is(g.err(), ErrInvalid) {
			t.Errorf("%s: %+v, want ErrInvalid", tc.name, g)
		}
		if f.st.Snowflake.Layout != nil {
			t.Fatalf("%s: recorded as the cluster's layout: %+v", tc.name, *f.st.Snowflake.Layout)
		}
	}
	if g := applyCmd(t, f, command{Op: opSFAcquire, Owner: "x", TTL: 1000, Layout: &good}).(workerGrant); g.err() != nil {
		t.Fatalf("a good acquire after the bad ones: %v", g.err())
	}
}

// Whatever bytes reach Apply (a command is JSON any node, or anyone at the
// Internal service, may send), it answers without panicking or looping,
// and a range it hands out lies within [1, MaxID].
func FuzzFSMApply(f *testing.F) {
	l := DefaultLayout()
	for _, c := range []command{
		reserveCmd("orders", 10),
		{Op: opReserve, Tag: "t", Count: MaxID, Start: 2, Step: 1, MaxTags: 1},
		{Op: opCreate, Tag: "t", Start: MaxID, Step: 1, MaxTags: 1},
		{Op: opSFAcquire, Owner: "n1", Now: 1000, ClientNow: 1000, TTL: 10, Layout: &l},
		{Op: opSFReserve, Owner: "n1", Worker: 0, Now: 1000, Until: 5000, TTL: 10, Layout: &l},
		{Op: opSFRelease, Owner: "n1", Worker: 0, Layout: &l},
		{Op: opSFAcquire, Owner: "x", TTL: 1, Layout: &Layout{TimeBits: 52, WorkerBits: -1, SequenceBits: 12}},
	} {
		b, err := json.Marshal(c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("{nope"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fsm := NewFSM()
		for range 2 { // on a fresh state, then on what the first left
			if r, ok := fsm.Apply(1, data).(reserveResult); ok && r.Count > 0 {
				if last := r.Start + r.Count - 1; r.Start < 1 || last > MaxID || last < r.Start {
					t.Fatalf("range [%d, +%d) outside [1, MaxID]", r.Start, r.Count)
				}
			}
		}
		if _, err := fsm.Snapshot(); err != nil {
			t.Fatal(err)
		}
	})
}
