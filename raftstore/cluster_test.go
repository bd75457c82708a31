package raftstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// logFSM records every applied value in order: comparing two nodes' logs
// compares their whole history, and a lost or doubled command shows.
type logFSM struct {
	mu       sync.Mutex
	vals     []uint64
	restores int
}

func newLogFSM() *logFSM      { return &logFSM{} }
func newLogFSMFor(string) FSM { return newLogFSM() }
func u64(v uint64) []byte     { return binary.BigEndian.AppendUint64(nil, v) }
func logOf(c *Cluster, i int) *logFSM {
	if t, ok := c.FSM(i).(*twoStepLogFSM); ok {
		return t.logFSM
	}
	return c.FSM(i).(*logFSM)
}

// twoStepLogFSM is a logFSM whose snapshots are taken in two steps
// (TwoStepSnapshotter): the copy on the FSM goroutine, the encoding later.
type twoStepLogFSM struct {
	*logFSM
	copies atomic.Int32
}

func newTwoStepLogFSMFor(string) FSM { return &twoStepLogFSM{logFSM: newLogFSM()} }

func (f *twoStepLogFSM) Snapshot() ([]byte, error) {
	panic("Snapshot called on a TwoStepSnapshotter")
}

func (f *twoStepLogFSM) SnapshotCopy() (func() ([]byte, error), error) {
	f.copies.Add(1)
	f.mu.Lock()
	vals := slices.Clone(f.vals)
	f.mu.Unlock()
	return func() ([]byte, error) {
		b := make([]byte, 0, 8*len(vals))
		for _, v := range vals {
			b = binary.BigEndian.AppendUint64(b, v)
		}
		return b, nil
	}, nil
}
func metaFor(id string) map[string]string {
	return map[string]string{"http": "http." + id, "grpc": "grpc." + id}
}

func (f *logFSM) Apply(_ uint64, cmd []byte) any {
	if len(cmd) != 8 {
		return fmt.Errorf("command of %d bytes", len(cmd))
	}
	v := binary.BigEndian.Uint64(cmd)
	f.mu.Lock()
	f.vals = append(f.vals, v)
	f.mu.Unlock()
	return v
}

func (f *logFSM) Snapshot() ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b := make([]byte, 0, 8*len(f.vals))
	for _, v := range f.vals {
		b = binary.BigEndian.AppendUint64(b, v)
	}
	return b, nil
}

func (f *logFSM) Restore(data []byte) error {
	if len(data)%8 != 0 {
		return fmt.Errorf("snapshot of %d bytes", len(data))
	}
	vals := make([]uint64, 0, len(data)/8)
	for i := 0; i < len(data); i += 8 {
		vals = append(vals, binary.BigEndian.Uint64(data[i:]))
	}
	f.mu.Lock()
	f.vals = vals
	f.restores++
	f.mu.Unlock()
	return nil
}

func (f *logFSM) values() []uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.vals)
}

func (f *logFSM) restoreCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.restores
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// applyOn applies v once, as a careful client would (see applyExactlyOnce).
func applyOn(t *testing.T, c *Cluster, v uint64) {
	t.Helper()
	if err := applyExactlyOnce(c, v); err != nil {
		t.Fatal(err)
	}
}

// applyExactlyOnce applies v on the leader, through leader changes. When
// the outcome is unknown (ErrLeadershipLost, ErrTimeout, ErrShutdown) it
// first finds out whether v committed, so v ends up in the log exactly once
// and tests can compare logs entry by entry. Safe to call from any
// goroutine.
func applyExactlyOnce(c *Cluster, v uint64) error {
	var last error
	for range 30 {
		leader, _, err := currentLeader(c, 10*time.Second)
		if err != nil {
			return fmt.Errorf("Apply(%d): %w (last error: %v)", v, err, last)
		}
		res, err := leader.Apply(context.Background(), u64(v))
		switch {
		case err == nil:
			if res != v {
				return fmt.Errorf("Apply(%d) returned %v", v, res)
			}
			return nil
		case errors.Is(err, ErrLeadershipLost), errors.Is(err, ErrTimeout), errors.Is(err, ErrShutdown):
			in, serr := committed(c, v)
			if serr != nil {
				return fmt.Errorf("Apply(%d): %v; then: %w", v, err, serr)
			}
			if in {
				return nil
			}
		case errors.Is(err, ErrNotLeader): // never entered the log: try the next leader
		default:
			return fmt.Errorf("Apply(%d): %w", v, err)
		}
		last = err
	}
	return fmt.Errorf("Apply(%d): gave up: %w", v, last)
}

// committed settles an unknown outcome. Once a leader's Barrier succeeds its
// FSM holds every committed entry, and an entry that is not there never
// will be: the entries before the barrier are that leader's, and every later
// leader's log starts with them.
func committed(c *Cluster, v uint64) (bool, error) {
	var err error
	for range 30 {
		var leader *Node
		var i int
		if leader, i, err = currentLeader(c, 10*time.Second); err != nil {
			return false, err
		}
		if err = leader.Barrier(context.Background()); err == nil {
			return slices.Contains(c.FSM(i).(*logFSM).values(), v), nil
		}
	}
	return false, fmt.Errorf("no leader completed a barrier: %w", err)
}

// currentLeader is Cluster.Leader without a testing.TB, for goroutines.
func currentLeader(c *Cluster, timeout time.Duration) (*Node, int, error) {
	deadline := time.Now().Add(timeout)
	for {
		c.mu.Lock()
		for i, n := range c.Nodes {
			if !c.down[i] && !c.partitioned[i] && n.IsLeader() {
				c.mu.Unlock()
				return n, i, nil
			}
		}
		c.mu.Unlock()
		if time.Now().After(deadline) {
			return nil, -1, fmt.Errorf("no leader within %v", timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// onLeader runs op on the current leader, and again on the next one while
// it fails with "not the leader": a loaded machine may hold an election at
// any time. op must be safe to repeat after ErrLeadershipLost.
func onLeader(t *testing.T, c *Cluster, what string, op func(leader *Node) error) {
	t.Helper()
	var err error
	for range 20 {
		if err = op(c.Leader(t, 10*time.Second)); !errors.Is(err, ErrNotLeader) {
			break
		}
	}
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func applyMany(t *testing.T, c *Cluster, from, count, workers int) {
	t.Helper()
	var wg sync.WaitGroup
	var next atomic.Int64
	next.Store(int64(from))
	for range workers {
		wg.Go(func() {
			for {
				v := next.Add(1) - 1
				if v >= int64(from+count) || t.Failed() {
					return
				}
				if err := applyExactlyOnce(c, uint64(v)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
}

// sameLogs waits until the running nodes in idx hold identical logs of
// length want.
func sameLogs(t *testing.T, c *Cluster, want int, idx ...int) {
	t.Helper()
	eventually(t, 20*time.Second, fmt.Sprintf("nodes %v to hold the same %d entries", idx, want), func() bool {
		ref := logOf(c, idx[0]).values()
		if len(ref) != want {
			return false
		}
		for _, i := range idx[1:] {
			if !slices.Equal(logOf(c, i).values(), ref) {
				return false
			}
		}
		return true
	})
}

func TestCommandsReachEveryNode(t *testing.T) {
	c := NewTestCluster(t, 3, newLogFSMFor)
	c.Leader(t, 10*time.Second)
	const n = 1000
	applyMany(t, c, 0, n, 8)
	sameLogs(t, c, n, 0, 1, 2)
	got := logOf(c, 0).values()
	slices.Sort(got)
	for i, v := range got {
		if v != uint64(i) {
			t.Fatalf("sorted log[%d] = %d: a command is missing or doubled", i, v)
		}
	}
}

func TestFailoverLosesNoAcknowledgedCommand(t *testing.T) {
	c := NewTestCluster(t, 3, newLogFSMFor)
	c.Leader(t, 10*time.Second)

	// Writers keep going through the kill. Each attempt uses a fresh value,
	// so a value is in the log at most once and "acked" is exact.
	var (
		mu        sync.Mutex
		acked     []uint64
		nextVal   atomic.Uint64
		stop      = make(chan struct{})
		wg        sync.WaitGroup
		ackedSize = func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	)
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				var leader *Node
				for i, n := range c.Nodes {
					if c.Up(i) && n.IsLeader() {
						leader = n
					}
				}
				if leader == nil {
					time.Sleep(5 * time.Millisecond)
					continue
				}
				v := nextVal.Add(1)
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_, err := leader.Apply(ctx, u64(v))
				cancel()
				if err == nil {
					mu.Lock()
					acked = append(acked, v)
					mu.Unlock()
				}
			}
		})
	}
	defer func() { close(stop); wg.Wait() }()

	eventually(t, 20*time.Second, "200 acked writes", func() bool { return ackedSize() >= 200 })
	old := c.Leader(t, time.Second)
	oldIdx := slices.Index(c.Nodes, old)
	c.Kill(oldIdx)
	killedAt := ackedSize()

	next := c.Leader(t, 10*time.Second)
	if next.ID() == old.ID() {
		t.Fatalf("killed leader %s still leads", old.ID())
	}
	eventually(t, 20*time.Second, "200 writes acked by the new leader", func() bool { return ackedSize() >= killedAt+200 })
	close(stop)
	wg.Wait()
	stop = make(chan struct{})

	onLeader(t, c, "Barrier on the new leader", func(l *Node) error { return l.Barrier(context.Background()) })
	var live []int
	for i := range c.Nodes {
		if c.Up(i) {
			live = append(live, i)
		}
	}
	mu.Lock()
	want := slices.Clone(acked)
	mu.Unlock()
	eventually(t, 10*time.Second, "live nodes to agree", func() bool {
		a, b := logOf(c, live[0]).values(), logOf(c, live[1]).values()
		return slices.Equal(a, b) && len(a) >= len(want)
	})
	log := logOf(c, live[0]).values()
	seen := map[uint64]int{}
	for _, v := range log {
		seen[v]++
		if seen[v] > 1 {
			t.Fatalf("value %d applied twice", v)
		}
	}
	for _, v := range want {
		if seen[v] == 0 {
			t.Fatalf("acknowledged value %d is missing after failover (%d acked, log has %d)", v, len(want), len(log))
		}
	}
	t.Logf("%d acked (%d after the kill), log holds %d", len(want), len(want)-killedAt, len(log))
}

func TestRestartedNodeCatchesUpFromItsDataDir(t *testing.T) {
	for _, store := range []string{LogStoreBolt, LogStoreWAL} {
		t.Run(store, func(t *testing.T) { testRestartedNodeCatchesUp(t, store) })
	}
}

func testRestartedNodeCatchesUp(t *testing.T, store string) {
	c := NewTestCluster(t, 3, newLogFSMFor, WithConfig(func(i int, cfg *Config) {
		cfg.LogStore = store
		cfg.Meta = metaFor(cfg.NodeID)
		cfg.SnapshotThreshold = 50
		cfg.TrailingLogs = 20
		cfg.SnapshotInterval = 20 * time.Millisecond
	}))
	leader := c.Leader(t, 10*time.Second)
	f := (slices.Index(c.Nodes, leader) + 1) % 3
	applyMany(t, c, 0, 200, 4)
	sameLogs(t, c, 200, 0, 1, 2)
	eventually(t, 10*time.Second, "the follower to take a snapshot", func() bool {
		return c.Nodes[f].raft.Stats()["last_snapshot_index"] != "0"
	})

	c.Kill(f)
	applyMany(t, c, 200, 300, 4)
	n := c.Restart(t, f)
	if logOf(c, f).restoreCount() == 0 {
		t.Error("restarted node did not restore its snapshot from disk")
	}
	var rest []int
	for i := range 3 {
		rest = append(rest, i)
	}
	sameLogs(t, c, 500, rest...)

	// Meta came back through snapshots and log alike.
	eventually(t, 5*time.Second, "member meta on the restarted node", func() bool {
		mm := n.MemberMeta()
		for i := range 3 {
			id := nodeName(i)
			if !maps.Equal(mm[id], metaFor(id)) {
				return false
			}
		}
		return true
	})
}

func TestFarBehindFollowerIsRestoredBySnapshot(t *testing.T) {
	t.Run("one step", func(t *testing.T) { testFarBehindFollower(t, newLogFSMFor) })
	t.Run("two steps", func(t *testing.T) {
		c := testFarBehindFollower(t, newTwoStepLogFSMFor)
		n := int32(0)
		for i := range 3 {
			n += c.FSM(i).(*twoStepLogFSM).copies.Load()
		}
		if n == 0 {
			t.Error("no snapshot copy was taken: the one-step Snapshot was used")
		}
	})
}

func testFarBehindFollower(t *testing.T, newFSM func(string) FSM) *Cluster {
	c := NewTestCluster(t, 3, newFSM, WithConfig(func(i int, cfg *Config) {
		cfg.Meta = metaFor(cfg.NodeID)
		cfg.SnapshotThreshold = 64
		cfg.TrailingLogs = 16
		cfg.SnapshotInterval = 20 * time.Millisecond
	}))
	leader := c.Leader(t, 10*time.Second)
	applyMany(t, c, 0, 50, 4)
	f := (slices.Index(c.Nodes, leader) + 1) % 3
	sameLogs(t, c, 50, 0, 1, 2)

	c.Partition(f)
	behind := c.Nodes[f].raft.LastIndex()
	applyMany(t, c, 50, 600, 8)
	eventually(t, 10*time.Second, "the leader to compact its log past the follower", func() bool {
		first, err := c.Leader(t, 10*time.Second).store.FirstIndex()
		return err == nil && first > behind+1
	})
	if n := logOf(c, f).restoreCount(); n != 0 {
		t.Fatalf("follower restored %d snapshots while partitioned", n)
	}

	c.Heal(f)
	sameLogs(t, c, 650, 0, 1, 2)
	if logOf(c, f).restoreCount() == 0 {
		t.Fatal("follower caught up without installing a snapshot")
	}
	eventually(t, 5*time.Second, "leader meta on the restored follower", func() bool {
		return maps.Equal(c.Nodes[f].LeaderMeta(), metaFor(c.Leader(t, time.Second).ID()))
	})
	return c
}

func TestFollowerNamesTheLeader(t *testing.T) {
	c := NewTestCluster(t, 3, newLogFSMFor, WithConfig(func(i int, cfg *Config) {
		cfg.Meta = metaFor(cfg.NodeID)
	}))
	c.Leader(t, 10*time.Second)
	for _, n := range c.Nodes {
		eventually(t, 5*time.Second, n.ID()+" to learn every member's meta", func() bool {
			mm := n.MemberMeta()
			return len(mm) == 3 && maps.Equal(mm["n0"], metaFor("n0")) &&
				maps.Equal(mm["n1"], metaFor("n1")) && maps.Equal(mm["n2"], metaFor("n2"))
		})
	}
	// The checks assume one leader throughout. A loaded machine may hold an
	// election meanwhile; then they run again against the new leader (every
	// operation below is harmless should its target have become leader).
	for attempt := 1; ; attempt++ {
		leader := c.Leader(t, 10*time.Second)
		term := leader.Term()
		err := followersNameTheLeader(c, leader)
		if err == nil {
			if attempt == 1 {
				for i := range c.Nodes {
					if got := logOf(c, i).values(); len(got) != 0 {
						t.Fatalf("a follower's Apply reached node %d's FSM: %v", i, got)
					}
				}
			}
			return
		}
		if (leader.IsLeader() && leader.Term() == term) || attempt == 5 {
			t.Fatal(err)
		}
		t.Logf("the leader changed during the checks; again: %v", err)
	}
}

func followersNameTheLeader(c *Cluster, leader *Node) error {
	ctx := context.Background()
	if err := leader.Barrier(ctx); err != nil {
		return fmt.Errorf("barrier on leader: %w", err)
	}
	if err := leader.VerifyLeader(ctx); err != nil {
		return fmt.Errorf("VerifyLeader on leader: %w", err)
	}
	for _, n := range c.Nodes {
		if n == leader {
			continue
		}
		if id, err := n.WaitLeader(ctx); err != nil || id != leader.ID() {
			return fmt.Errorf("%s: WaitLeader = %q, %v; want %s", n.ID(), id, err, leader.ID())
		}
		_, err := n.Apply(ctx, u64(1))
		var nl *NotLeaderError
		if !errors.As(err, &nl) || !errors.Is(err, ErrNotLeader) {
			return fmt.Errorf("%s: Apply on follower = %v, want a *NotLeaderError", n.ID(), err)
		}
		if nl.LeaderID != leader.ID() || nl.LeaderAddr != leader.Addr() {
			return fmt.Errorf("%s: NotLeaderError names %s at %s, want %s at %s", n.ID(), nl.LeaderID, nl.LeaderAddr, leader.ID(), leader.Addr())
		}
		if !maps.Equal(nl.LeaderMeta, metaFor(leader.ID())) || nl.MaybeCommitted || errors.Is(err, ErrLeadershipLost) {
			return fmt.Errorf("%s: NotLeaderError = %+v", n.ID(), nl)
		}
		if !strings.Contains(err.Error(), leader.Addr()) {
			return fmt.Errorf("error text does not name the leader: %v", err)
		}
		for name, op := range map[string]func() error{
			"VerifyLeader": func() error { return n.VerifyLeader(ctx) },
			"Barrier":      func() error { return n.Barrier(ctx) },
			"AddVoter":     func() error { return n.AddVoter(ctx, n.ID(), n.Addr()) }, // already a voter there
			"RemoveServer": func() error { return n.RemoveServer(ctx, "nobody") },
		} {
			if err := op(); !errors.As(err, &nl) || nl.LeaderID != leader.ID() {
				return fmt.Errorf("%s: %s on follower = %v, want a *NotLeaderError naming %s", n.ID(), name, err, leader.ID())
			}
		}
	}
	return nil
}

func TestMembershipAddJoinRemove(t *testing.T) {
	c := NewTestCluster(t, 3, newLogFSMFor, WithConfig(func(i int, cfg *Config) {
		cfg.Meta = metaFor(cfg.NodeID)
	}))
	c.Leader(t, 10*time.Second)
	ctx := context.Background()
	applyMany(t, c, 0, 20, 2)

	members := func(n *Node) []string {
		ps, err := n.Members()
		if err != nil {
			return nil
		}
		var ids []string
		for _, p := range ps {
			ids = append(ids, p.ID)
		}
		slices.Sort(ids)
		return ids
	}
	hasMeta := func(id string) func() bool {
		return func() bool { return maps.Equal(c.Leader(t, 5*time.Second).MemberMeta()[id], metaFor(id)) }
	}

	// Added by the leader: its meta follows on its own.
	i3 := c.StartNode(t, false)
	n3 := c.Nodes[i3]
	onLeader(t, c, "AddVoter", func(l *Node) error { return l.AddVoter(ctx, n3.ID(), n3.Addr()) })
	eventually(t, 10*time.Second, "n3's meta", hasMeta("n3"))
	sameLogs(t, c, 20, 0, 1, 2, i3)

	// Joins by itself through Config.Join.
	i4 := c.StartNode(t, true)
	eventually(t, 10*time.Second, "n4 to join", func() bool {
		return slices.Equal(members(c.Leader(t, 5*time.Second)), []string{"n0", "n1", "n2", "n3", "n4"})
	})
	eventually(t, 10*time.Second, "n4's meta", hasMeta("n4"))
	applyMany(t, c, 20, 10, 2)
	sameLogs(t, c, 30, 0, 1, 2, i3, i4)

	onLeader(t, c, "RemoveServer", func(l *Node) error { return l.RemoveServer(ctx, "n3") })
	leader := c.Leader(t, 5*time.Second)
	if got := members(leader); !slices.Equal(got, []string{"n0", "n1", "n2", "n4"}) {
		t.Fatalf("members after removing n3: %v", got)
	}
	if _, ok := leader.MemberMeta()["n3"]; ok {
		t.Fatal("MemberMeta still lists the removed n3")
	}
	eventually(t, 10*time.Second, "n3's meta to be dropped from the replicated state", func() bool {
		return !slices.Contains(c.Leader(t, 5*time.Second).fsm.metaIDs(), "n3")
	})
	applyMany(t, c, 30, 10, 2)
	sameLogs(t, c, 40, 0, 1, 2, i4)
	if got := len(logOf(c, i3).values()); got > 30 {
		t.Fatalf("removed n3 still receives entries: %d", got)
	}
}

// collect reads a subscription until it closes.
func collect(ch <-chan LeadershipEvent) (func() []LeadershipEvent, func() []LeadershipEvent) {
	var mu sync.Mutex
	var evs []LeadershipEvent
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range ch {
			mu.Lock()
			evs = append(evs, ev)
			mu.Unlock()
		}
	}()
	now := func() []LeadershipEvent { mu.Lock(); defer mu.Unlock(); return slices.Clone(evs) }
	final := func() []LeadershipEvent { <-done; return now() }
	return now, final
}

func TestSubscribeSeesLosingAndGainingLeadership(t *testing.T) {
	c := NewTestCluster(t, 3, newLogFSMFor)
	type subs struct {
		now, final func() []LeadershipEvent
		unread     <-chan LeadershipEvent // read only at the end
	}
	s := make([]subs, 3)
	for i, n := range c.Nodes {
		ch, _ := n.Subscribe()
		s[i].now, s[i].final = collect(ch)
		s[i].unread, _ = n.Subscribe()
	}
	last := func(i int) (LeadershipEvent, bool) {
		evs := s[i].now()
		if len(evs) == 0 {
			return LeadershipEvent{}, false
		}
		return evs[len(evs)-1], true
	}

	first := c.Leader(t, 10*time.Second)
	a := slices.Index(c.Nodes, first)
	eventually(t, 5*time.Second, "the leader's gain event", func() bool { ev, ok := last(a); return ok && ev.IsLeader })
	gained, _ := last(a)

	c.Partition(a)
	eventually(t, 5*time.Second, "the cut-off leader's loss event", func() bool { ev, ok := last(a); return ok && !ev.IsLeader })
	second := c.Leader(t, 10*time.Second)
	b := slices.Index(c.Nodes, second)
	eventually(t, 5*time.Second, "the new leader's gain event", func() bool { ev, ok := last(b); return ok && ev.IsLeader })
	if ev, _ := last(b); ev.Term <= gained.Term {
		t.Fatalf("new leader's term %d is not above the old %d", ev.Term, gained.Term)
	}
	c.Heal(a)
	applyOn(t, c, 1)

	for i := range c.Nodes {
		c.Kill(i)
	}
	for i := range c.Nodes {
		got := s[i].final()
		var unread []LeadershipEvent
		for ev := range s[i].unread {
			unread = append(unread, ev)
		}
		if !slices.Equal(got, unread) {
			t.Fatalf("node %d: a reader and a non-reader saw different events:\n%v\n%v", i, got, unread)
		}
		for j := 1; j < len(got); j++ {
			if got[j].IsLeader == got[j-1].IsLeader || got[j].Term < got[j-1].Term {
				t.Fatalf("node %d: events out of order: %v", i, got)
			}
		}
		if got[len(got)-1].IsLeader {
			t.Fatalf("node %d: last event after shutdown says leader: %v", i, got)
		}
	}
	if evs := s[a].final(); len(evs) < 3 || evs[0].IsLeader || !evs[1].IsLeader || evs[2].IsLeader {
		t.Fatalf("first leader's events = %v, want not leader, leader, not leader, ...", evs)
	}
}

func TestCloseEndsEverything(t *testing.T) {
	base := runtime.NumGoroutine()
	c := NewTestCluster(t, 3, newLogFSMFor)
	leader := c.Leader(t, 10*time.Second)
	applyMany(t, c, 0, 20, 2)
	ch, _ := leader.Subscribe()
	events, final := collect(ch)
	eventually(t, 5*time.Second, "the current state on subscribe", func() bool { return len(events()) > 0 })

	// A second node on the same data directory must not start.
	cfg := c.cfgs[0]
	cfg.BindAddr = "127.0.0.1:0"
	cfg.Logger = nil
	if _, err := Open(cfg, newLogFSM()); err == nil {
		t.Fatal("a second Open of a data directory in use succeeded")
	}

	if err := leader.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := leader.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if evs := final(); evs[len(evs)-1].IsLeader {
		t.Fatalf("closed leader's last event %v says leader", evs)
	}
	ctx := context.Background()
	if _, err := leader.Apply(ctx, u64(1)); !errors.Is(err, ErrShutdown) {
		t.Fatalf("Apply after Close = %v, want ErrShutdown", err)
	}
	if _, err := leader.WaitLeader(ctx); !errors.Is(err, ErrShutdown) {
		t.Fatalf("WaitLeader after Close = %v, want ErrShutdown", err)
	}
	applyOn(t, c, 2) // the group goes on without the closed leader
	for _, n := range c.Nodes {
		if err := n.Close(); err != nil {
			t.Fatalf("Close %s: %v", n.ID(), err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines still running, %d before the cluster:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The path a consumer takes without Cluster: Open, bootstrap alone on port
// 0, serve after Barrier, close, and reopen from the data directory; with
// either log store, and a directory keeps the store it was made with.
func TestSingleNodeOpenCloseReopen(t *testing.T) {
	for _, store := range []string{LogStoreBolt, LogStoreWAL} {
		t.Run(store, func(t *testing.T) { testSingleNodeOpenCloseReopen(t, store) })
	}
}

func testSingleNodeOpenCloseReopen(t *testing.T, store string) {
	cfg := TestConfig("solo")
	cfg.LogStore = store
	cfg.DataDir = t.TempDir()
	cfg.BindAddr = "127.0.0.1:0"
	cfg.Bootstrap = true
	cfg.Meta = metaFor("solo")
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	fsm := newLogFSM()
	n, err := Open(cfg, fsm)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if id, err := n.WaitLeader(ctx); err != nil || id != "solo" {
		t.Fatalf("WaitLeader = %q, %v", id, err)
	}
	for v := range uint64(10) {
		if _, err := n.Apply(ctx, u64(v)); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 5*time.Second, "the leader's own meta", func() bool { return maps.Equal(n.LeaderMeta(), metaFor("solo")) })
	second := cfg
	second.BindAddr = "127.0.0.1:0"
	if n2, err := Open(second, newLogFSM()); err == nil {
		n2.Close()
		t.Fatal("a second Open of a data directory in use succeeded")
	}
	cfg.BindAddr = n.Addr()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}

	// Reopened asking for the other store, it keeps its own.
	other := map[string]string{LogStoreBolt: LogStoreWAL, LogStoreWAL: LogStoreBolt}
	cfg.LogStore = other[store]
	fsm = newLogFSM()
	if n, err = Open(cfg, fsm); err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	ch, cancelSub := n.Subscribe()
	defer cancelSub()
	for ev := range ch {
		if ev.IsLeader {
			break
		}
	}
	if err := n.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	if got := fsm.values(); len(got) != 10 || got[9] != 9 {
		t.Fatalf("after reopen and Barrier the FSM holds %v", got)
	}
	if !maps.Equal(n.LeaderMeta(), metaFor("solo")) {
		t.Fatalf("meta after reopen: %v", n.LeaderMeta())
	}
}
