package idserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/strata-db/strata/idserver/idpb"
	"github.com/strata-db/strata/raftstore"
)

// fakeNode is a RaftNode for tests of the server's leadership logic: it
// applies straight to an FSM, and the test decides its role, its term, its
// membership and when (if ever) leadership events reach the server. The
// real cluster tests exercise the same logic against raftstore.
type fakeNode struct {
	id     string
	fsm    *FSM
	events chan raftstore.LeadershipEvent

	mu       sync.Mutex
	leader   bool
	term     uint64
	index    uint64
	members  []raftstore.Peer
	meta     map[string]string // the leader's, as LeaderMeta reports it
	cutOff   chan struct{}     // when set, no quorum answers: round trips wait for it (or their ctx)
	memberMu sync.Mutex        // held by a test to stall Members
}

func newFakeNode(id string, voters int) *fakeNode {
	n := &fakeNode{id: id, fsm: NewFSM(), events: make(chan raftstore.LeadershipEvent, 16)}
	for i := range voters {
		p := raftstore.Peer{ID: fmt.Sprintf("other%d", i), Addr: fmt.Sprintf("127.0.0.1:%d", 1+i)}
		if i == 0 {
			p.ID = id
		}
		n.members = append(n.members, p)
	}
	return n
}

// set changes the node's role and term as Raft would, without telling the
// server.
func (n *fakeNode) set(leader bool, term uint64) {
	n.mu.Lock()
	n.leader, n.term = leader, term
	n.mu.Unlock()
}

// announce changes the role and tells the server.
func (n *fakeNode) announce(leader bool, term uint64) {
	n.set(leader, term)
	n.events <- raftstore.LeadershipEvent{IsLeader: leader, Term: term}
}

func (n *fakeNode) ID() string { return n.id }

// quorum waits while the node is cut off from the others.
func (n *fakeNode) quorum(ctx context.Context) error {
	n.mu.Lock()
	wait := n.cutOff
	n.mu.Unlock()
	if wait != nil {
		select {
		case <-wait:
		case <-ctx.Done():
			return raftstore.ErrTimeout
		}
	}
	return nil
}

func (n *fakeNode) Apply(ctx context.Context, cmd []byte) (any, error) {
	if err := n.quorum(ctx); err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.leader {
		return nil, &raftstore.NotLeaderError{}
	}
	n.index++
	return n.fsm.Apply(n.index, cmd), nil
}

func (n *fakeNode) Barrier(ctx context.Context) error {
	if err := n.quorum(ctx); err != nil {
		return err
	}
	if !n.IsLeader() {
		return &raftstore.NotLeaderError{}
	}
	return nil
}

func (n *fakeNode) VerifyLeader(ctx context.Context) error { return n.Barrier(ctx) }

func (n *fakeNode) IsLeader() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.leader
}

func (n *fakeNode) Term() uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.term
}

func (n *fakeNode) LeaderMeta() map[string]string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.meta
}

func (n *fakeNode) Members() ([]raftstore.Peer, error) {
	n.memberMu.Lock()
	defer n.memberMu.Unlock()
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]raftstore.Peer(nil), n.members...), nil
}

func (n *fakeNode) Subscribe() (<-chan raftstore.LeadershipEvent, func()) {
	return n.events, func() {}
}

// startFakeServer serves on node (no listeners) and waits until it serves
// segment IDs, the node being the leader in term 1.
func startFakeServer(t *testing.T, cfg Config, node *fakeNode) *Server {
	t.Helper()
	cfg.Logger = testLogger()
	s, err := New(cfg, node, node.fsm)
	if err != nil {
		t.Fatal(err)
	}
	s.Serve(nil, nil)
	t.Cleanup(s.Kill)
	node.announce(true, 1)
	waitServing(t, s)
	return s
}

func waitServing(t *testing.T, s *Server) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !s.Status().Serving; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the server does not serve")
		}
	}
}

func fakeServerConfig() Config {
	cfg := DefaultConfig()
	cfg.Snowflake.Disabled = true
	return cfg
}

// nextID asks s for one ID of tag within d.
func nextID(s *Server, tag string, d time.Duration) (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	rs, _, err := s.Next(ctx, tag, 1, nil)
	if err != nil {
		return 0, err
	}
	return rs[0].Start, nil
}

// A node that loses leadership and wins it back before the server has seen
// either event must not serve the ranges it cached in its earlier term: a
// leader in between may have served higher IDs. (Raft's events reach the
// server through goroutines that a loaded machine may hold up; the term
// is read directly.)
func TestNoCachedRangeServedInALaterTerm(t *testing.T) {
	cfg := fakeServerConfig()
	cfg.Lease = time.Hour // the lease is not what is under test
	node := newFakeNode("a", 3)
	s := startFakeServer(t, cfg, node)
	first, err := nextID(s, "t", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	cached, _ := node.fsm.tag("t")

	// Term 2: another leader reserves and serves above what a cached.
	node.set(false, 2)
	other, ok := applyCmd(t, node.fsm, command{Op: opReserve, Tag: "t", Count: 5000, MaxTags: 10}).(reserveResult)
	if !ok || other.Start != cached.Next {
		t.Fatalf("the other leader's reservation: %+v", other)
	}
	// Term 3: a leads again; the events are still on their way.
	node.set(true, 3)
	if id, err := nextID(s, "t", 300*time.Millisecond); err == nil && id < other.Start+other.Count {
		t.Fatalf("served %d (after %d) from a range cached in term 1, below the %d..%d another leader served in term 2",
			id, first, other.Start, other.Start+other.Count-1)
	}

	// Once the events arrive, a serves again, above everything.
	node.events <- raftstore.LeadershipEvent{IsLeader: false, Term: 2}
	node.events <- raftstore.LeadershipEvent{IsLeader: true, Term: 3}
	var id uint64
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if id, err = nextID(s, "t", time.Second); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || id < other.Start+other.Count {
		t.Fatalf("after the events: %d, %v; want an ID above %d", id, err, other.Start+other.Count-1)
	}
}

// The only voter serves without renewing its lease, but only for Lease
// after it last saw itself alone: if the goroutine that looks is held up
// (a loaded machine) while voters join, it must not serve on an old answer.
func TestSoleVoterStatusExpires(t *testing.T) {
	cfg := fakeServerConfig()
	cfg.Lease = 30 * time.Millisecond
	cfg.ApplyTimeout = 100 * time.Millisecond
	node := newFakeNode("a", 1)
	s := startFakeServer(t, cfg, node)
	if _, err := nextID(s, "t", time.Second); err != nil {
		t.Fatal(err)
	}
	// The membership check stalls; two voters join; this leader is cut
	// off, so VerifyLeader cannot succeed.
	node.memberMu.Lock()
	unblock := sync.OnceFunc(node.memberMu.Unlock)
	t.Cleanup(unblock)
	node.mu.Lock()
	node.members = append(node.members, raftstore.Peer{ID: "b"}, raftstore.Peer{ID: "c"})
	node.cutOff = make(chan struct{})
	node.mu.Unlock()
	time.Sleep(3 * cfg.Lease)
	if id, err := nextID(s, "t", 500*time.Millisecond); err == nil {
		t.Fatalf("served %d on a sole-voter status more than Lease old", id)
	} else if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("want ErrUnavailable, got %v", err)
	}
	unblock()
}

// Tags refused because the cluster holds its maximum leave nothing behind
// on the leader: no buffer, no metric series per invented tag.
func TestRefusedTagsLeaveNoState(t *testing.T) {
	cfg := fakeServerConfig()
	cfg.Lease = time.Hour
	cfg.MaxTags = 2
	node := newFakeNode("a", 3)
	s := startFakeServer(t, cfg, node)
	for i := range 300 {
		_, err := nextID(s, fmt.Sprintf("t%d", i), time.Second)
		if (i < cfg.MaxTags) != (err == nil) {
			t.Fatalf("tag %d: %v", i, err)
		}
		if err != nil && !errors.Is(err, ErrExhausted) {
			t.Fatalf("tag %d: %v, want ErrExhausted", i, err)
		}
	}
	s.segs.mu.Lock()
	bufs := len(s.segs.tags)
	s.segs.mu.Unlock()
	mfs, err := s.gath.Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := 0
	for _, mf := range mfs {
		if mf.GetName() == "strata_idserver_ids_served_total" {
			series = len(mf.GetMetric())
		}
	}
	if bufs > cfg.MaxTags || series > cfg.MaxTags {
		t.Fatalf("after 300 tags with MaxTags %d: %d tag buffers, %d ids_served series", cfg.MaxTags, bufs, series)
	}
}

// The Internal service answers a malformed or bad snowflake command with
// InvalidArgument and the reason, and commits nothing.
func TestProposeSnowflakeRefusesBadCommands(t *testing.T) {
	node := newFakeNode("a", 3)
	s := startFakeServer(t, fakeServerConfig(), node)
	good := DefaultLayout()
	for _, tc := range []struct {
		name string
		cmd  []byte
		want string
	}{
		{"garbage", []byte("{nope"), "undecodable"},
		{"not snowflake", mustJSON(t, command{Op: opReserve, Tag: "t", Count: 1}), "not a snowflake command"},
		{"no owner", mustJSON(t, command{Op: opSFAcquire, TTL: 1000, Layout: &good}), "without an owner"},
		{"no layout", mustJSON(t, command{Op: opSFAcquire, Owner: "x", TTL: 1000}), "without a layout"},
		{"no TTL", mustJSON(t, command{Op: opSFReserve, Owner: "x", Layout: &good}), "TTL"},
		{"bad layout", mustJSON(t, command{Op: opSFAcquire, Owner: "x", TTL: 1000, Layout: &Layout{TimeBits: 52, WorkerBits: -1, SequenceBits: 12}}), "WorkerBits"},
	} {
		_, err := (&grpcInternal{s: s}).ProposeSnowflake(context.Background(), &idpb.ProposeRequest{Command: tc.cmd})
		if st := status.Convert(err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), tc.want) {
			t.Errorf("%s: %v, want InvalidArgument with %q", tc.name, err, tc.want)
		}
	}
	node.mu.Lock()
	applied := node.index
	node.mu.Unlock()
	if applied != 0 || node.fsm.st.Snowflake.Layout != nil {
		t.Fatalf("bad commands reached the log: %d applied, layout %v", applied, node.fsm.st.Snowflake.Layout)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Two followers that each take the other for the leader (views differ for
// a moment during an election) do not bounce a forwarded CreateTag back and
// forth until the caller gives up: a forwarded call is not forwarded again.
func TestForwardedCreateTagIsNotForwardedAgain(t *testing.T) {
	var lns [2]net.Listener
	var nodes [2]*fakeNode
	for i := range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[i] = ln
		nodes[i] = newFakeNode(fmt.Sprintf("n%d", i), 3)
	}
	for i := range 2 {
		nodes[i].meta = map[string]string{MetaGRPC: lns[1-i].Addr().String()}
		cfg := fakeServerConfig()
		cfg.Logger = testLogger()
		s, err := New(cfg, nodes[i], nodes[i].fsm)
		if err != nil {
			t.Fatal(err)
		}
		s.Serve(nil, lns[i])
		t.Cleanup(s.Kill)
	}
	cc, err := grpc.NewClient(lns[0].Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	start := time.Now()
	_, err = idpb.NewIDsClient(cc).CreateTag(ctx, &idpb.CreateTagRequest{Tag: "t", Start: 1})
	if status.Code(err) != codes.Unavailable || time.Since(start) > time.Second {
		t.Fatalf("CreateTag between two nodes that each name the other: %v after %v, want Unavailable at once", err, time.Since(start))
	}
}

// stallProxy forwards TCP connections to target until stalled; then it
// keeps them open and forwards nothing, as a network that drops packets
// does (unlike a dead process on loopback, whose connections reset).
type stallProxy struct {
	ln      net.Listener
	stalled chan struct{}
}

func newStallProxy(t *testing.T, target string) *stallProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallProxy{ln: ln, stalled: make(chan struct{})}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	pipe := func(dst, src net.Conn) {
		defer wg.Done()
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			select {
			case <-p.stalled:
				return // drop it, and everything after
			default:
			}
			if n > 0 {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			d, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, d)
			mu.Unlock()
			wg.Add(2)
			go pipe(d, c)
			go pipe(c, d)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return p
}

func (p *stallProxy) addr() string { return p.ln.Addr().String() }
func (p *stallProxy) stall()       { close(p.stalled) }

// A follower whose connection to the leader goes silent answers snowflake
// requests with an error once its reservation runs out, within about
// ApplyTimeout, rather than holding them until the connection dies (the
// background renewal it waits for had no deadline).
func TestSnowflakeFailsWhenTheLeaderGoesSilent(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Logger = testLogger()
	cfg.ApplyTimeout = 300 * time.Millisecond
	cfg.Snowflake.Reserve, cfg.Snowflake.WorkerTTL = 100*time.Millisecond, time.Second
	leaderLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	leader := newFakeNode("l", 3)
	follower := newFakeNode("f", 3)
	follower.fsm = leader.fsm // one replicated state
	proxy := newStallProxy(t, leaderLn.Addr().String())
	follower.meta = map[string]string{MetaGRPC: proxy.addr()}
	ls, err := New(cfg, leader, leader.fsm)
	if err != nil {
		t.Fatal(err)
	}
	ls.Serve(nil, leaderLn)
	t.Cleanup(ls.Kill)
	leader.announce(true, 1)
	fs, err := New(cfg, follower, follower.fsm)
	if err != nil {
		t.Fatal(err)
	}
	fs.Serve(nil, nil)
	t.Cleanup(fs.Kill)
	ctx := context.Background()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := fs.Snowflake(ctx, 1, 1, nil); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("the follower issues no snowflake IDs: %v", err)
		}
	}
	proxy.stall()
	time.Sleep(3 * cfg.Snowflake.Reserve) // the reservation runs out
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_, err := fs.Snowflake(ctx, 1, 1, nil)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || time.Since(start) > 3*time.Second {
			t.Fatalf("with the leader silent: %v after %v, want an error within about ApplyTimeout", err, time.Since(start))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a snowflake request is still waiting 5s after the leader went silent")
	}
}

// Likewise a segment call a follower forwards to a leader that has gone
// silent fails within about ApplyTimeout plus the forwarding wait, even for
// a caller without a deadline (a Leaf client).
func TestForwardedNextFailsWhenTheLeaderGoesSilent(t *testing.T) {
	cfg := fakeServerConfig()
	cfg.Logger = testLogger()
	cfg.ApplyTimeout = 300 * time.Millisecond
	leaderLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	leader := newFakeNode("l", 3)
	follower := newFakeNode("f", 3)
	proxy := newStallProxy(t, leaderLn.Addr().String())
	follower.meta = map[string]string{MetaGRPC: proxy.addr()}
	ls, err := New(cfg, leader, leader.fsm)
	if err != nil {
		t.Fatal(err)
	}
	ls.Serve(nil, leaderLn)
	t.Cleanup(ls.Kill)
	leader.announce(true, 1)
	waitServing(t, ls)
	fs, err := New(cfg, follower, follower.fsm)
	if err != nil {
		t.Fatal(err)
	}
	fs.Serve(nil, nil)
	t.Cleanup(fs.Kill)
	if _, err := nextID(fs, "t", 5*time.Second); err != nil {
		t.Fatalf("forwarded: %v", err)
	}
	proxy.stall()
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		_, _, err := fs.Next(context.Background(), "t", 1, nil)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || time.Since(start) > 3*time.Second+forwardWait {
			t.Fatalf("with the leader silent: %v after %v", err, time.Since(start))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a forwarded call is still waiting 10s after the leader went silent")
	}
}

// A node whose snowflake layout differs from the cluster's can never lease
// a worker: its snowflake answers say why, not just "no worker yet".
func TestSnowflakeLayoutMismatchIsReported(t *testing.T) {
	node := newFakeNode("a", 3)
	other := DefaultLayout()
	other.EpochMs++
	applyCmd(t, node.fsm, command{Op: opSFAcquire, Owner: "b", TTL: 1000, Layout: &other})
	cfg := DefaultConfig()
	s := startFakeServer(t, cfg, node)
	var err error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if _, err = s.Snowflake(context.Background(), 1, 1, nil); err != nil && strings.Contains(err.Error(), "layout") {
			break
		}
	}
	if err == nil || !strings.Contains(err.Error(), "differs from the cluster's") {
		t.Fatalf("snowflake with another layout than the cluster's: %v", err)
	}
}

// A leader cut off from the others (VerifyLeader no longer succeeds) whose
// Raft has not stepped down yet (its own lease check runs on a timer, late
// on a loaded machine) stops serving from its cache once its lease runs
// out: no call that begins Lease after the last renewal began succeeds.
// (The cluster's partition test cannot tell: there Raft steps down too.)
func TestCutOffLeaderStopsServingWhenItsLeaseEnds(t *testing.T) {
	cfg := fakeServerConfig()
	cfg.Lease = 100 * time.Millisecond
	cfg.ApplyTimeout = 50 * time.Millisecond
	cfg.DefaultStep, cfg.MaxStep = 1<<30, 1<<30 // the cache outlasts the test: only the lease can stop it
	node := newFakeNode("a", 3)
	s := startFakeServer(t, cfg, node)
	if _, err := nextID(s, "t", time.Second); err != nil {
		t.Fatal(err)
	}
	cutOff := time.Now()
	node.mu.Lock()
	node.cutOff = make(chan struct{}) // never closed
	node.mu.Unlock()
	var served, late int
	for time.Since(cutOff) < 5*cfg.Lease {
		start := time.Now()
		if _, err := nextID(s, "t", 200*time.Millisecond); err == nil {
			served++
			if start.Sub(cutOff) >= cfg.Lease {
				late++
			}
		}
	}
	if late > 0 {
		t.Fatalf("%d calls begun more than Lease (%v) after the leader was cut off were served", late, cfg.Lease)
	}
	t.Logf("%d calls served within the lease after the cut-off", served)
}
