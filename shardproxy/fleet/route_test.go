package fleet

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// fakeFleet is a fleet that was never started: its servers' state is set by
// the test, to check routing decisions alone.
func fakeFleet(t *testing.T, mut func(*Config)) (*Fleet, *shard) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Shards = []ShardConfig{{Name: "s0", Servers: []ServerConfig{
		{Name: "p", Addr: "127.0.0.1:1", Role: RolePrimary, User: "root"},
		{Name: "r1", Addr: "127.0.0.1:2", Role: RoleReplica, User: "root"},
		{Name: "r2", Addr: "127.0.0.1:3", Role: RoleReplica, User: "root"},
	}}}
	if mut != nil {
		mut(&cfg)
	}
	f, err := New(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	for _, s := range f.servers {
		s.healthy.Store(true)
		s.lagKnown.Store(true)
	}
	return f, f.shards["s0"]
}

func setLag(f *Fleet, s *server, lag time.Duration) {
	if lag == 0 {
		s.behindSince.Store(0)
		s.checkedLag.Store(0)
		return
	}
	s.behindSince.Store(f.now() - int64(lag))
	s.checkedLag.Store(int64(lag))
}

func setPos(s *server, p string) {
	pos, _ := ParsePosition(p)
	s.pos.Store(&pos)
}

func TestAcquireReadDecisions(t *testing.T) {
	ctx := context.Background()
	f, _ := fakeFleet(t, nil)
	r1, r2, p := f.servers["r1"], f.servers["r2"], f.servers["p"]
	after, _ := ParsePosition("0-1-10")
	read := func(r ReadRequest) (*Lease, error) {
		l, err := f.AcquireRead(ctx, "s0", r)
		if l != nil {
			l.Release()
		}
		return l, err
	}

	setLag(f, r1, 2*time.Second) // over MaxLag (1 s)
	if l, _ := read(ReadRequest{Consistency: Eventual}); l.Server != "r2" {
		t.Errorf("eventual with r1 lagging: %s", l.Server)
	}
	r2.healthy.Store(false)
	if l, _ := read(ReadRequest{Consistency: Eventual}); l.Server != "p" || !l.Primary {
		t.Errorf("no replica qualifies: %s, want the primary", l.Server)
	}
	f.cfg.NoReplica = FailRead
	if _, err := read(ReadRequest{Consistency: Eventual}); !errors.Is(err, ErrNoReplica) {
		t.Errorf("NoReplica=fail: %v", err)
	}
	f.cfg.NoReplica = FallbackPrimary
	r2.healthy.Store(true)
	setLag(f, r1, 0)

	// Session: a replica known to have the position, else one that can wait, else the primary.
	setPos(r1, "0-1-9")
	setPos(r2, "0-1-10")
	if l, _ := read(ReadRequest{Consistency: Session, After: after}); l.Server != "r2" || len(l.WaitFor) != 0 {
		t.Errorf("session, r2 has the write: %+v", l)
	}
	setPos(r2, "0-1-5")
	setLag(f, r2, 500*time.Millisecond)
	l, _ := read(ReadRequest{Consistency: Session, After: after})
	if l.Server != "r1" || l.WaitFor.String() != "0-1-10" || l.WaitQuery() != "SELECT MASTER_GTID_WAIT('0-1-10', 0.020)" {
		t.Errorf("session, r1 close behind: %+v %q", l, l.WaitQuery())
	}
	setLag(f, r1, 100*time.Millisecond) // too far behind to wait 20 ms for it
	if l, _ := read(ReadRequest{Consistency: Session, After: after}); !l.Primary {
		t.Errorf("session, nobody close: %s", l.Server)
	}
	if l, _ := read(ReadRequest{Consistency: Session}); l.Primary {
		t.Error("session without a write went to the primary")
	}
	if l, _ := read(ReadRequest{Consistency: Strong}); !l.Primary {
		t.Error("strong not on the primary")
	}
	// Reached makes the next read direct.
	setLag(f, r1, 0)
	l, _ = f.AcquireRead(ctx, "s0", ReadRequest{Consistency: Session, After: after})
	l.Reached()
	l.Release()
	if l, _ := read(ReadRequest{Consistency: Session, After: after}); l.Server != "r1" || len(l.WaitFor) != 0 {
		t.Errorf("after Reached: %+v", l)
	}
	// Exclude and a reported failure keep a replica out.
	if l, _ := read(ReadRequest{Consistency: Eventual, Exclude: "r1"}); l.Server == "r1" {
		t.Error("excluded replica chosen")
	}
	setLag(f, r2, 0)
	f.ReportFailure("r2")
	for i := 0; i < 10; i++ {
		if l, _ := read(ReadRequest{Consistency: Eventual}); l.Server == "r2" {
			t.Fatal("reported replica chosen before a check")
		}
	}
	if p.outstanding.Load() != 0 || r1.outstanding.Load() != 0 {
		t.Error("leases not released")
	}
}

func TestGate(t *testing.T) {
	ctx := context.Background()
	f, sh := fakeFleet(t, func(c *Config) { c.HoldTimeout, c.HoldMax = 200*time.Millisecond, 3 })
	f.closeGate(sh)
	start := time.Now()
	if _, err := f.AcquirePrimary(ctx, "s0"); !errors.Is(err, ErrHoldTimeout) || time.Since(start) < 200*time.Millisecond {
		t.Fatalf("held write: %v after %v", err, time.Since(start))
	}
	// HoldMax: three wait, the fourth fails at once; opening the gate lets
	// the three through to the (new) primary.
	var wg sync.WaitGroup
	got := make(chan string, 3)
	f.cfg.HoldTimeout = 5 * time.Second
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, err := f.AcquirePrimary(ctx, "s0")
			if err != nil {
				t.Error(err)
				return
			}
			got <- l.Server
			l.Release()
		}()
	}
	for {
		sh.mu.Lock()
		n := sh.held
		sh.mu.Unlock()
		if n == 3 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := f.AcquirePrimary(ctx, "s0"); !errors.Is(err, ErrHoldFull) {
		t.Fatalf("fourth held write: %v", err)
	}
	f.setPrimary(sh, f.servers["r1"])
	f.openGate(sh)
	wg.Wait()
	close(got)
	for s := range got {
		if s != "r1" {
			t.Errorf("held write ran on %s, want the new primary", s)
		}
	}
	f.servers["r1"].healthy.Store(false)
	if _, err := f.AcquirePrimary(ctx, "s0"); !errors.Is(err, ErrPrimaryDown) {
		t.Errorf("primary down: %v", err)
	}
}

// TestEjectionIgnoresOwnStall: a check that overran because the proxy
// itself stalled (its deadline passed while the process was not running)
// is one failure, not EjectAfter of silence: a server is ejected for
// silence only when a check that began EjectAfter after its last good one
// fails.
func TestEjectionIgnoresOwnStall(t *testing.T) {
	f, _ := fakeFleet(t, func(c *Config) { c.FailuresToEject = 5 })
	s := f.servers["r1"]
	lastOK := time.Now().Add(-1500 * time.Millisecond) // > EjectAfter (1 s) ago
	s.mu.Lock()
	s.lastOK = lastOK
	s.mu.Unlock()
	// This check began 100 ms after the last good one; the proxy then
	// stalled 1.4 s and it failed on its deadline.
	s.record(context.DeadlineExceeded, lastOK.Add(100*time.Millisecond))
	if !s.healthy.Load() {
		t.Fatal("one check that overran during the proxy's own stall ejected the server")
	}
	// A check that began EjectAfter after the last good one and failed: out.
	s.record(context.DeadlineExceeded, lastOK.Add(1100*time.Millisecond))
	if s.healthy.Load() {
		t.Fatal("a server silent for EjectAfter stayed in")
	}
	// Consecutive failures eject regardless of time.
	p := f.servers["r2"]
	p.mu.Lock()
	p.lastOK = time.Now()
	p.mu.Unlock()
	for i := 0; i < 5; i++ {
		p.record(context.DeadlineExceeded, time.Now())
	}
	if p.healthy.Load() {
		t.Fatal("5 consecutive failures (FailuresToEject) did not eject")
	}
}
