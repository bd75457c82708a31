package idserver

import (
	"context"
	"testing"
	"time"

	"github.com/strata-db/strata/raftstore"
)

// Stopping every node and starting them again never re-issues an ID: the
// high-water marks come back from the Raft log and snapshots, and the new
// leader reserves above them.
func TestWholeClusterRestartNeverRepeats(t *testing.T) {
	// Snapshot often, so the restart restores from snapshots as well as logs.
	c := newTestCluster(t, 3, testServiceConfig(), raftstore.WithConfig(func(_ int, rc *raftstore.Config) {
		rc.SnapshotThreshold = 16
		rc.SnapshotInterval = 50 * time.Millisecond
		rc.TrailingLogs = 4
	}))
	c.leader(10 * time.Second)
	cl := newTestClient(t, c)
	ctx := context.Background()
	tags := []string{"a", "b", "c"}
	var seen []Range
	highest := map[string]uint64{}
	fetch := func(round int) {
		for i := range 50 {
			tag := tags[i%3]
			rs, err := cl.Fetch(ctx, tag, uint64(1+i*37))
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			for _, r := range fromClient(rs) {
				if r.Start <= highest[tag] {
					t.Fatalf("round %d: %s ID %d after %d", round, tag, r.Start, highest[tag])
				}
				highest[tag] = r.Start + r.Count - 1
				seen = append(seen, Range{Start: r.Start + uint64(i%3)<<56, Count: r.Count}) // one space per tag
			}
		}
	}
	fetch(0)
	for round := 1; round <= 2; round++ {
		// Give snapshots a chance, then take everything down at once.
		time.Sleep(150 * time.Millisecond)
		for i := range 3 {
			c.kill(i)
		}
		for i := range 3 {
			c.restart(i)
		}
		c.leader(15 * time.Second)
		fetch(round)
	}
	checkUnique(t, seen)
}

// A snowflake node restarted with its clock set back repeats no ID, and
// nodes never share a worker.
func TestSnowflakeRestartWithClockBackInCluster(t *testing.T) {
	c := newTestCluster(t, 3, testServiceConfig())
	c.leader(10 * time.Second)
	ctx := context.Background()
	seen := map[uint64]bool{}
	collect := func(i int, n int) uint64 {
		t.Helper()
		var worker uint64
		got := 0
		for deadline := time.Now().Add(10 * time.Second); got < n; {
			rs, err := c.servers()[i].Snowflake(ctx, 500, 1000, nil)
			if err != nil {
				if time.Now().After(deadline) {
					t.Fatalf("node %d snowflake: %v", i, err)
				}
				time.Sleep(10 * time.Millisecond)
				continue
			}
			for _, r := range rs {
				for k := range r.Count {
					id := r.Start + k
					if seen[id] {
						t.Fatalf("node %d: snowflake ID %d issued twice", i, id)
					}
					seen[id] = true
					d, _ := c.cfg.Snowflake.Layout.Decode(id)
					worker = d.Worker
				}
				got += int(r.Count)
			}
		}
		return worker
	}
	workers := map[uint64]int{}
	for i := range 3 {
		w := collect(i, 20000)
		if j, dup := workers[w]; dup {
			t.Fatalf("nodes %d and %d both use worker %d", j, i, w)
		}
		workers[w] = i
	}
	// Node 1 crashes, and comes back with its clock 30 seconds behind.
	w1 := collect(1, 5000)
	c.kill(1)
	c.clocks[1].off.Store(int64(-30 * time.Second))
	c.restart(1)
	w1b := collect(1, 20000)
	t.Logf("node 1: worker %d before the restart, %d after (clock 30s back)", w1, w1b)
	// And once more, with the clock right again.
	c.kill(1)
	c.clocks[1].off.Store(0)
	c.restart(1)
	collect(1, 20000)
	for i := range 3 {
		collect(i, 1000)
	}
}
