package idserver

import (
	"context"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/strata-db/strata/raftstore"
)

// How long IDs stop when the leader dies, with the production Raft timeouts
// (raftstore.DefaultConfig, as `strata idserver` uses): the figure in the
// README. Four callers ask for IDs through the Go client (which fails over)
// every millisecond; the outage is from the kill to the end of the first
// call begun after it that succeeds. The test asserts only that IDs come
// back; the durations are logged.
func TestLeaderKillUnavailability(t *testing.T) {
	def := raftstore.DefaultConfig()
	c := newTestCluster(t, 3, DefaultConfig(), raftstore.WithConfig(func(_ int, rc *raftstore.Config) {
		rc.HeartbeatTimeout, rc.ElectionTimeout = def.HeartbeatTimeout, def.ElectionTimeout
		rc.LeaderLeaseTimeout, rc.CommitTimeout = def.LeaderLeaseTimeout, def.CommitTimeout
	}))
	c.leader(15 * time.Second)
	h := newHistory()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for range 4 {
		cl := newTestClient(t, c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				start := h.now()
				rs, err := cl.Fetch(ctx, "failover", 10)
				if err == nil {
					h.add(opOf(start, h.now(), fromClient(rs), "poller"))
				}
				time.Sleep(time.Millisecond)
			}
		}()
	}
	var outages []time.Duration
	for k := range 3 {
		time.Sleep(500 * time.Millisecond)
		l := c.leader(15 * time.Second)
		killedAt := h.now()
		c.kill(l)
		d := waitFlow(t, h, killedAt, 20*time.Second)
		outages = append(outages, d)
		t.Logf("kill %d: IDs flowed again %v after the leader was killed", k+1, d.Round(time.Millisecond))
		c.restart(l)
	}
	cancel()
	wg.Wait()
	sort.Slice(outages, func(i, j int) bool { return outages[i] < outages[j] })
	t.Logf("unavailability on leader kill with the default Raft timeouts (heartbeat %v, election %v): %v", def.HeartbeatTimeout, def.ElectionTimeout, outages)
	h.mu.Lock()
	defer h.mu.Unlock()
	var all []Range
	for _, o := range h.ops {
		all = append(all, o.ranges...)
	}
	checkUnique(t, all)
	checkLinearizable(t, h.ops)
}
