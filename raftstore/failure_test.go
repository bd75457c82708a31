package raftstore

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// A leader cut off from its followers: Apply cannot commit and, once the
// leader steps down, says the command may still commit; a short deadline
// says ErrTimeout. VerifyLeader and Barrier carry no command of the
// caller's, so they only say "not the leader".
func TestCutOffLeaderReportsUnknownOutcome(t *testing.T) {
	c := NewTestCluster(t, 3, newLogFSMFor)
	leader := c.Leader(t, 10*time.Second)
	applyMany(t, c, 0, 5, 1)
	a := slices.Index(c.Nodes, leader)
	c.Partition(a)

	type result struct {
		name string
		err  error
	}
	results := make(chan result, 4)
	long, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	go func() {
		_, err := leader.Apply(long, u64(100))
		results <- result{"Apply", err}
	}()
	go func() { results <- result{"VerifyLeader", leader.VerifyLeader(long)} }()
	go func() { results <- result{"Barrier", leader.Barrier(long)} }()
	go func() {
		short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err := leader.Apply(short, u64(101))
		results <- result{"Apply with a short deadline", err}
	}()
	for range 4 {
		r := <-results
		var nl *NotLeaderError
		switch r.name {
		case "Apply":
			// Sent before the step-down (MaybeCommitted) or, on a slow
			// machine, after it (not sent at all): never a plain success.
			if !errors.As(r.err, &nl) {
				t.Errorf("Apply on a cut-off leader = %v, want a *NotLeaderError", r.err)
			} else if nl.MaybeCommitted != errors.Is(r.err, ErrLeadershipLost) {
				t.Errorf("Apply: MaybeCommitted=%v but errors.Is(ErrLeadershipLost)=%v", nl.MaybeCommitted, errors.Is(r.err, ErrLeadershipLost))
			}
		case "Apply with a short deadline":
			if !errors.Is(r.err, ErrTimeout) && !errors.Is(r.err, ErrNotLeader) {
				t.Errorf("%s = %v, want ErrTimeout (or not leader)", r.name, r.err)
			}
		default:
			if !errors.As(r.err, &nl) || nl.MaybeCommitted || errors.Is(r.err, ErrLeadershipLost) {
				t.Errorf("%s on a cut-off leader = %#v, want a *NotLeaderError without MaybeCommitted", r.name, r.err)
			}
		}
	}
	c.Heal(a)
	applyOn(t, c, 200)
}

// While a leader hands leadership over it refuses writes; its error must
// not name itself, or a client following the redirect comes straight back.
func TestNotLeaderErrorNeverNamesItself(t *testing.T) {
	c := NewTestCluster(t, 3, newLogFSMFor)
	leader := c.Leader(t, 10*time.Second)
	for _, cause := range []error{raft.ErrLeadershipTransferInProgress, raft.ErrLeadershipLost, raft.ErrNotLeader} {
		err := leader.translate("apply", cause)
		var nl *NotLeaderError
		if !errors.As(err, &nl) {
			t.Fatalf("%v: translated to %v", cause, err)
		}
		if nl.LeaderID == leader.ID() || nl.LeaderAddr == leader.Addr() {
			t.Errorf("%v: the leader's own error names itself: %v", cause, err)
		}
	}
}

// The caller's Config maps and slices stay the caller's: changing Meta
// after Open neither races with the node nor changes what it replicates.
func TestOpenKeepsItsOwnCopyOfMeta(t *testing.T) {
	meta := metaFor("solo")
	cfg := TestConfig("solo")
	cfg.DataDir = t.TempDir()
	cfg.BindAddr = "127.0.0.1:0"
	cfg.Bootstrap = true
	cfg.Meta = meta
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	n, err := Open(cfg, newLogFSM())
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := n.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the node's meta", func() bool { return maps.Equal(n.LeaderMeta(), metaFor("solo")) })

	meta["http"] = "changed by the caller"
	// Give the member loop a few passes to (wrongly) pick the change up.
	time.Sleep(4 * cfg.HeartbeatTimeout)
	if err := n.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	if got := n.LeaderMeta(); !maps.Equal(got, metaFor("solo")) {
		t.Fatalf("replicated meta followed the caller's map: %v", got)
	}
}

// AdvertiseAddr is what peers dial, as configured: a DNS name (a
// StatefulSet pod's, whose IP changes when it moves) must stay a name in
// the Raft configuration, and Peers may name members by it.
func TestAdvertiseAddrKeepsAHostName(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	start := func(id string, bootstrap bool) *Node {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		cfg := TestConfig(id)
		cfg.DataDir = t.TempDir()
		cfg.BindAddr = ln.Addr().String()
		cfg.AdvertiseAddr = net.JoinHostPort("localhost", port)
		cfg.Logger = logger
		if bootstrap {
			cfg.Bootstrap = true
			cfg.Peers = []Peer{{ID: id, Addr: cfg.AdvertiseAddr}}
		}
		n, err := open(cfg, newLogFSM(), ln)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		if n.Addr() != cfg.AdvertiseAddr {
			t.Fatalf("Addr() = %q, want AdvertiseAddr %q as configured", n.Addr(), cfg.AdvertiseAddr)
		}
		return n
	}
	a := start("a", true)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := a.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	b := start("b", false)
	if err := a.AddVoter(ctx, b.ID(), b.Addr()); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Apply(ctx, u64(1)); err != nil { // needs b, reached by name
		t.Fatal(err)
	}
	members, err := a.Members()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range members {
		if !strings.HasPrefix(p.Addr, "localhost:") {
			t.Errorf("member %s is in the configuration as %q, not by its advertised name", p.ID, p.Addr)
		}
	}
}

// badRestoreFSM cannot restore: Open on a data directory with a snapshot
// fails.
type badRestoreFSM struct{ *logFSM }

func (badRestoreFSM) Restore([]byte) error { return errors.New("cannot restore") }

// An Open that fails half way (here: the FSM cannot restore the snapshot on
// disk) leaves no goroutine, listener or file lock behind: the same data
// directory and port open again at once.
func TestFailedOpenReleasesEverything(t *testing.T) {
	cfg := TestConfig("solo")
	cfg.DataDir = t.TempDir()
	cfg.BindAddr = "127.0.0.1:0"
	cfg.Bootstrap = true
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	n, err := Open(cfg, newLogFSM())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	for v := range uint64(5) {
		if _, err := n.Apply(ctx, u64(v)); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	cfg.BindAddr = n.Addr()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}

	base := runtime.NumGoroutine()
	if _, err := Open(cfg, badRestoreFSM{newLogFSM()}); err == nil || !strings.Contains(err.Error(), "cannot restore") {
		t.Fatalf("Open with an FSM that cannot restore = %v, want its error", err)
	}
	eventually(t, 10*time.Second, "the failed Open's goroutines to end", func() bool { return runtime.NumGoroutine() <= base })

	fsm := newLogFSM()
	if n, err = Open(cfg, fsm); err != nil {
		t.Fatalf("Open after a failed Open: %v", err)
	}
	defer n.Close()
	if got := fsm.values(); len(got) != 5 {
		t.Fatalf("reopened FSM holds %v, want the 5 snapshotted values", got)
	}
}
