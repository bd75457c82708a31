package xa

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/strata-db/strata/txcoord/client"
)

func TestXIDRoundTrip(t *testing.T) {
	x := XID{TxID: 12345, Shard: "s-1"}
	if got := x.Prepare(); got != "XA PREPARE '12345','s-1',1398035009" {
		t.Fatalf("Prepare() = %q", got)
	}
	y, ok := ParseRecovered("1398035009", "5", "3", "12345s-1")
	if !ok || y != x {
		t.Fatalf("ParseRecovered = %+v %v", y, ok)
	}
	for _, bad := range [][4]string{
		{"1", "5", "3", "12345s-1"},          // another format: not ours
		{"1398035009", "5", "4", "12345s-1"}, // lengths disagree
		{"1398035009", "5", "3", "1234xs-1"}, // gtrid not a number
		{"1398035009", "1", "3", "0s-1"},     // txid 0
		{"1398035009", "x", "3", "12345s-1"},
	} {
		if _, ok := ParseRecovered(bad[0], bad[1], bad[2], bad[3]); ok {
			t.Errorf("ParseRecovered(%q) accepted", bad)
		}
	}
	for _, bad := range []string{"", "a'b", string(make([]byte, 65))} {
		if CheckShardName(bad) == nil {
			t.Errorf("CheckShardName(%q) accepted", bad)
		}
	}
}

// TestXA runs the committer and the resolver against real MariaDB (two
// shards, a replica each) and a real coordinator, one topology for all:
// the failover case runs last since it changes the topology.
func TestXA(t *testing.T) {
	e := newEnv(t, 1)
	t.Run("TwoPhaseAndOnePhase", func(t *testing.T) { testTwoPhaseCommitAndOnePhase(t, e) })
	t.Run("PrepareFailure", func(t *testing.T) { testPrepareFailureRollsBackEverywhere(t, e) })
	t.Run("PresumedAbortAndKill9", func(t *testing.T) { testResolverPresumedAbortAndKill9(t, e) })
	t.Run("CrashAndFailover", func(t *testing.T) { testResolverCommitsAfterCrashAndFailover(t, e) })
}

func newCommitter(t *testing.T, e *env, fp func(string, uint64) error) *Committer {
	cfg := DefaultCommitterConfig()
	cfg.Failpoint = fp
	c := NewCommitter(cfg, e.coord)
	t.Cleanup(c.Close)
	return c
}

func newResolver(t *testing.T, e *env, abandon time.Duration) *Resolver {
	cfg := DefaultResolverConfig()
	cfg.AbandonAfter, cfg.CompleteAfter = abandon, time.Millisecond
	r, err := NewResolver(cfg, primaries{e.topo}, e.coord)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Two writers: prepared, decided, committed on both; the decision is
// recorded and then reported complete.
func testTwoPhaseCommitAndOnePhase(t *testing.T, e *env) {
	ctx := context.Background()
	c := newCommitter(t, e, nil)
	s0, s1 := e.topo.Shards()[0].Primary(), e.topo.Shards()[1].Primary()

	id, _ := e.coord.NextTxID(ctx)
	if err := c.Commit(ctx, id, e.begin(t, id, map[string]int{"s0": 1, "s1": 2})); err != nil {
		t.Fatal(err)
	}
	if e.rows(t, s0, 1) != 1 || e.rows(t, s1, 2) != 1 {
		t.Fatal("a branch's row is missing")
	}
	recs, _ := e.coord.Status(ctx, []uint64{id})
	if recs[0].Decision != client.Commit {
		t.Fatalf("decision %v", recs[0].Decision)
	}
	waitFor(t, "completion", 5*time.Second, func() bool {
		recs, _ := e.coord.Status(ctx, []uint64{id})
		return recs[0].IsCompleted
	})

	// One writer and a reader: one phase, no decision.
	id2, _ := e.coord.NextTxID(ctx)
	if err := c.Commit(ctx, id2, e.begin(t, id2, map[string]int{"s1": 3})); err != nil {
		t.Fatal(err)
	}
	if e.rows(t, s1, 3) != 1 {
		t.Fatal("one-phase row missing")
	}
	if recs, _ := e.coord.Status(ctx, []uint64{id2}); recs[0].Decision != client.Unknown {
		t.Fatalf("one-phase commit recorded a decision: %v", recs[0].Decision)
	}
	// Rollback leaves nothing.
	id3, _ := e.coord.NextTxID(ctx)
	c.Rollback(ctx, id3, e.begin(t, id3, map[string]int{"s0": 4, "s1": 4}))
	if e.rows(t, s0, 4)+e.rows(t, s1, 4) != 0 {
		t.Fatal("rolled back rows visible")
	}
	if len(prepared(t, s0))+len(prepared(t, s1)) != 0 {
		t.Fatal("prepared branches left")
	}
}

// A branch that cannot prepare (its session was killed) aborts the whole
// transaction, with an error naming the shard.
func testPrepareFailureRollsBackEverywhere(t *testing.T, e *env) {
	ctx := context.Background()
	c := newCommitter(t, e, nil)
	s0, s1 := e.topo.Shards()[0].Primary(), e.topo.Shards()[1].Primary()
	id, _ := e.coord.NextTxID(ctx)
	branches := e.begin(t, id, map[string]int{"s0": 11, "s1": 12})
	// Kill s1's session from outside.
	cid, err := branches[1].Conn.(*dbConn).Query(ctx, "SELECT CONNECTION_ID()")
	if err != nil {
		t.Fatal(err)
	}
	if err := s1.Exec(ctx, "KILL "+cid[0][0]); err != nil {
		t.Fatal(err)
	}
	err = c.Commit(ctx, id, branches)
	var ce *CommitError
	if !errors.As(err, &ce) || ce.Shard != "s1" || ce.Step != "prepare" || ce.Outcome != RolledBack {
		t.Fatalf("commit error: %v", err)
	}
	t.Logf("client sees: %v", err)
	if e.rows(t, s0, 11)+e.rows(t, s1, 12) != 0 {
		t.Fatal("rows of an aborted transaction visible")
	}
	if len(prepared(t, s0))+len(prepared(t, s1)) != 0 {
		t.Fatal("prepared branches left")
	}
	if recs, _ := e.coord.Status(ctx, []uint64{id}); recs[0].Decision == client.Commit {
		t.Fatal("commit recorded for an aborted transaction")
	}
}

// A proxy that dies after the decision leaves prepared branches; the
// resolver commits them, including one on a replica promoted meanwhile.
func testResolverCommitsAfterCrashAndFailover(t *testing.T, e *env) {
	ctx := context.Background()
	crash := errors.New("crash")
	c := newCommitter(t, e, func(step string, _ uint64) error {
		if step == "decided" {
			return crash
		}
		return nil
	})
	id, _ := e.coord.NextTxID(ctx)
	err := c.Commit(ctx, id, e.begin(t, id, map[string]int{"s0": 31, "s1": 32}))
	if !errors.Is(err, ErrFailpoint) {
		t.Fatalf("commit: %v", err)
	}
	sh0, sh1 := e.topo.Shards()[0], e.topo.Shards()[1]
	waitFor(t, "branches prepared and detached", 5*time.Second, func() bool {
		return len(prepared(t, sh0.Primary())) == 1 && len(prepared(t, sh1.Primary())) == 1
	})
	// The prepared branch is on s1's replica too: promote it.
	if err := e.topo.WaitReplicated(ctx); err != nil {
		t.Fatal(err)
	}
	if len(prepared(t, sh1.Replicas()[0])) != 1 {
		t.Fatal("prepared branch not on the replica")
	}
	if err := e.topo.Promote(ctx, sh1.Replicas()[0]); err != nil {
		t.Fatal(err)
	}
	r := newResolver(t, e, time.Minute)
	rep := r.Pass(ctx)
	if rep.Committed != 2 || len(rep.Errors) != 0 {
		t.Fatalf("pass: %+v", rep)
	}
	if e.rows(t, sh0.Primary(), 31) != 1 || e.rows(t, sh1.Primary(), 32) != 1 {
		t.Fatal("resolved rows missing")
	}
	if len(prepared(t, sh0.Primary()))+len(prepared(t, sh1.Primary())) != 0 {
		t.Fatal("prepared branches left")
	}
	// The next pass reports the transaction complete.
	r.Pass(ctx)
	if recs, _ := e.coord.Status(ctx, []uint64{id}); !recs[0].IsCompleted {
		t.Fatalf("not completed: %+v", recs[0])
	}
}

// A proxy that dies before the decision: the resolver waits AbandonAfter,
// records abort, rolls back; the committer, had it lived, would lose the
// compare-and-set. Prepared branches also survive kill -9 of the server.
func testResolverPresumedAbortAndKill9(t *testing.T, e *env) {
	ctx := context.Background()
	c := newCommitter(t, e, func(step string, _ uint64) error {
		if step == "prepared" {
			return errors.New("crash")
		}
		return nil
	})
	id, _ := e.coord.NextTxID(ctx)
	if err := c.Commit(ctx, id, e.begin(t, id, map[string]int{"s0": 21, "s1": 22})); !errors.Is(err, ErrFailpoint) {
		t.Fatalf("commit: %v", err)
	}
	s0, s1 := e.topo.Shards()[0].Primary(), e.topo.Shards()[1].Primary()
	waitFor(t, "branches prepared", 5*time.Second, func() bool {
		return len(prepared(t, s0)) == 1 && len(prepared(t, s1)) == 1
	})
	// kill -9 with the binlog on (MDEV-21469): the prepared branch is
	// still there after the restart.
	if err := s0.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := e.topo.Restart(ctx, s0); err != nil {
		t.Fatal(err)
	}
	if got := prepared(t, s0); len(got) != 1 || got[0] != (XID{TxID: id, Shard: "s0"}) {
		t.Fatalf("after kill -9: prepared %v", got)
	}

	r := newResolver(t, e, 300*time.Millisecond)
	if rep := r.Pass(ctx); len(rep.InDoubt) != 2 || rep.RolledBack != 0 {
		t.Fatalf("first pass should leave both in doubt: %+v", rep)
	}
	time.Sleep(400 * time.Millisecond)
	if rep := r.Pass(ctx); rep.PresumedAbort != 1 || rep.RolledBack != 2 || len(rep.InDoubt) != 0 {
		t.Fatalf("second pass: %+v", rep)
	}
	if d, err := e.coord.Decide(ctx, id, client.Commit, nil); err != nil || d != client.Abort {
		t.Fatalf("late commit: %v %v, want abort to have won", d, err)
	}
	if e.rows(t, s0, 21)+e.rows(t, s1, 22) != 0 || len(prepared(t, s0))+len(prepared(t, s1)) != 0 {
		t.Fatal("aborted transaction left rows or branches")
	}
}
