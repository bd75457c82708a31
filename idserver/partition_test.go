package idserver

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A leader cut off from the others stops serving before a new leader can
// start: clients pinned to every node, the old leader included, keep
// calling through the partition and the heal, and the calls stay unique and
// linearizable.
func TestPartitionedLeaderStopsServing(t *testing.T) {
	c := newTestCluster(t, 3, testServiceConfig())
	l := c.leader(10 * time.Second)
	h := newHistory()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	var oldLeaderOK, oldLeaderAfter atomic.Int64
	var partitionedAt atomic.Int64
	partitionedAt.Store(1 << 62)
	for w := range 6 {
		node := w % 3
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("http-n%d-%d", node, w)
			for ctx.Err() == nil {
				start := h.now()
				ids, err := httpIDs(ctx, c.http[node], "p", 10)
				if err != nil {
					time.Sleep(5 * time.Millisecond)
					continue
				}
				end := h.now()
				h.add(opOf(start, end, rangesOf(ids), name))
				if node == l {
					oldLeaderOK.Add(1)
					if start > partitionedAt.Load()+int64(time.Second) {
						oldLeaderAfter.Add(1)
					}
				}
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	partitionedAt.Store(h.now())
	c.rc.Partition(l)
	// Wait for another leader to serve.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if nl := c.leader(10 * time.Second); nl != l {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no new leader")
		}
	}
	time.Sleep(1500 * time.Millisecond)
	if n := oldLeaderAfter.Load(); n != 0 {
		t.Errorf("the partitioned old leader answered %d calls (forwarded or not) a second after the partition", n)
	}
	c.rc.Heal(l)
	time.Sleep(time.Second)
	cancel()
	wg.Wait()
	h.mu.Lock()
	ops := h.ops
	h.mu.Unlock()
	var all []Range
	for _, o := range ops {
		all = append(all, o.ranges...)
	}
	n := checkUnique(t, all)
	checkLinearizable(t, ops)
	t.Logf("%d IDs in %d calls; the old leader answered %d", n, len(ops), oldLeaderOK.Load())
}
