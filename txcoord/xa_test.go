package txcoord

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"
)

func applyXA(t *testing.T, x *XA, c xaCmd) (xaResult, error) {
	t.Helper()
	b, _ := json.Marshal(c)
	out, err := x.Apply(1, b)
	var res xaResult
	if out != nil {
		if jerr := json.Unmarshal(out, &res); jerr != nil {
			t.Fatal(jerr)
		}
	}
	return res, err
}

func TestXAApplyCompareAndSetCompleteGC(t *testing.T) {
	x, err := NewXA(DefaultXAConfig())
	if err != nil {
		t.Fatal(err)
	}
	res, err := applyXA(t, x, xaCmd{NowMs: 1000, Begin: 10})
	if err != nil || res.Start != 1 {
		t.Fatalf("begin: %+v %v", res, err)
	}
	res, _ = applyXA(t, x, xaCmd{NowMs: 1000, Begin: 5})
	if res.Start != 11 {
		t.Fatalf("second begin starts at %d, want 11", res.Start)
	}
	if _, err := applyXA(t, x, xaCmd{Begin: MaxBeginCount + 1}); err == nil {
		t.Fatal("begin above the limit applied")
	}

	res, err = applyXA(t, x, xaCmd{NowMs: 2000, Decide: []TxRecord{
		{TxID: 1, Decision: Commit, Shards: []string{"s0", "s1"}},
		{TxID: 2, Decision: Abort},
		{TxID: 1, Decision: Abort},  // loses to the commit in the same batch
		{TxID: 1, Decision: Commit}, // the same decision again: accepted
		{TxID: 99, Decision: Commit},
		{TxID: 0, Decision: Commit},
		{TxID: 3, Decision: Unknown},
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := []Decision{Commit, Abort, Commit, Commit, Unknown, Unknown, Unknown}
	for i, d := range want {
		if res.Decided[i] != d {
			t.Errorf("item %d: decision %v, want %v (errs %q)", i, res.Decided[i], d, res.Errs)
		}
	}
	for i, refused := range []bool{false, false, true, false, true, true, true} {
		if (res.Errs[i] != "") != refused {
			t.Errorf("item %d: refusal %q, want refused=%v", i, res.Errs[i], refused)
		}
	}

	// Completion keeps both decisions until GC, so a late, different
	// decision is still refused: a stalled proxy's commit after recovery
	// aborted and completed its transaction must not be granted.
	applyXA(t, x, xaCmd{NowMs: 3000, Complete: []uint64{1, 2, 77}})
	if r, ok := x.Record(2); !ok || r.Decision != Abort || r.CompletedMs != 3000 {
		t.Errorf("completed abort: %+v %v", r, ok)
	}
	res, _ = applyXA(t, x, xaCmd{NowMs: 3500, Decide: []TxRecord{{TxID: 2, Decision: Commit}, {TxID: 1, Decision: Abort}}})
	if res.Decided[0] != Abort || res.Errs[0] == "" || res.Decided[1] != Commit || res.Errs[1] == "" {
		t.Errorf("late decisions after completion: %+v", res)
	}
	r, ok := x.Record(1)
	if !ok || r.CompletedMs != 3000 || r.Decision != Commit {
		t.Fatalf("completed commit: %+v %v", r, ok)
	}
	// Snapshot and restore keep everything.
	snap, _ := x.Snapshot()
	y, _ := NewXA(DefaultXAConfig())
	if err := y.Restore(snap); err != nil {
		t.Fatal(err)
	}
	if r2, ok := y.Record(1); !ok || r2.CompletedMs != 3000 {
		t.Fatalf("restored record %+v", r2)
	}
	if recs, next := y.List(true, 10); len(recs) != 2 || next != 16 {
		t.Fatalf("restored list %+v next %d", recs, next)
	}
	if recs, _ := y.List(false, 10); len(recs) != 0 {
		t.Fatalf("unfinished list %+v", recs)
	}
	applyXA(t, x, xaCmd{NowMs: 4000, GCBeforeMs: 2999})
	if _, ok := x.Record(1); !ok {
		t.Error("GC forgot a commit completed after its horizon")
	}
	applyXA(t, x, xaCmd{NowMs: 4000, GCBeforeMs: 3001})
	if _, ok := x.Record(1); ok {
		t.Error("GC kept an expired completed commit")
	}
	if _, ok := x.Record(2); ok {
		t.Error("GC kept an expired completed abort")
	}
	if _, err := x.Apply(1, []byte("{")); err == nil {
		t.Error("undecodable command applied")
	}
	if err := y.Restore(nil); err != nil {
		t.Fatal(err)
	}
	if _, next := y.List(true, 1); next != 1 {
		t.Errorf("empty restore: next %d", next)
	}
}

func TestXAConfigValidate(t *testing.T) {
	c := DefaultXAConfig()
	c.MaxBatch, c.Retention = 0, time.Millisecond
	if err := c.Validate(); err == nil {
		t.Fatal("bad XA config validated")
	}
}

// Concurrent decisions share Raft entries: many more decisions than
// entries (with two proposers, the default).
func TestXADecisionsBatched(t *testing.T) {
	var mu sync.Mutex
	xas := map[int]*XA{}
	g := NewTestGroup(t, 3, func(i int) []Module {
		cfg := DefaultXAConfig()
		cfg.Proposers = 2
		x, err := NewXA(cfg)
		if err != nil {
			panic(err)
		}
		mu.Lock()
		xas[i] = x
		mu.Unlock()
		return []Module{x}
	})
	_, li := g.Leader(t, 10*time.Second)
	mu.Lock()
	x := xas[li]
	mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start, err := x.Begin(ctx, 2000)
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 64, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				id := start + uint64(w*each+i)
				if d, ok, err := x.Decide(ctx, TxRecord{TxID: id, Decision: Commit}); err != nil || !ok || d != Commit {
					errs <- fmt.Errorf("decide %d: %v %v %v", id, d, ok, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	entries := x.decideEntries.Load()
	t.Logf("%d decisions in %d Raft entries", workers*each, entries)
	if entries*4 > workers*each {
		t.Fatalf("%d decisions took %d entries: not batched", workers*each, entries)
	}
}

// TestXASnapshotCopy: the two-step snapshot encodes the state as it was
// when the copy was taken, whatever Applies change between the copy and
// the encoding (a completion changes a record in place), and in
// Snapshot's format.
func TestXASnapshotCopy(t *testing.T) {
	x, err := NewXA(DefaultXAConfig())
	if err != nil {
		t.Fatal(err)
	}
	applyXA(t, x, xaCmd{NowMs: 1000, Begin: 10})
	applyXA(t, x, xaCmd{NowMs: 2000, Decide: []TxRecord{{TxID: 1, Decision: Commit, Shards: []string{"s0", "s1"}}, {TxID: 2, Decision: Abort}}})
	want, err := x.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	encode, err := x.SnapshotCopy()
	if err != nil {
		t.Fatal(err)
	}
	// After the copy: a completion, a new decision, a GC.
	applyXA(t, x, xaCmd{NowMs: 3000, Complete: []uint64{1}})
	applyXA(t, x, xaCmd{NowMs: 3000, Decide: []TxRecord{{TxID: 3, Decision: Commit, Shards: []string{"s0", "s1"}}}})
	applyXA(t, x, xaCmd{NowMs: 4000, Begin: 5, GCBeforeMs: 1})
	got, err := encode()
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("two-step snapshot\n%s\nwant the state at the copy\n%s", got, want)
	}
	y, _ := NewXA(DefaultXAConfig())
	if err := y.Restore(got); err != nil {
		t.Fatal(err)
	}
	if r, ok := y.Record(1); !ok || r.CompletedMs != 0 || r.Decision != Commit {
		t.Errorf("restored record 1: %+v %v, want the commit not yet completed", r, ok)
	}
	if _, ok := y.Record(3); ok {
		t.Error("restored a decision taken after the copy")
	}
}
