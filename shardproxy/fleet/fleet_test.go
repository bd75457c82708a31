package fleet

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/strata-db/strata/localdb"
)

// configFor describes a localdb topology to the fleet, with root as the
// fleet's admin account.
func configFor(topo *localdb.Topology) Config {
	cfg := DefaultConfig()
	for _, sh := range topo.Shards() {
		sc := ShardConfig{Name: sh.Name}
		for _, s := range sh.Servers() {
			role := RoleReplica
			if s.Role() == localdb.RolePrimary {
				role = RolePrimary
			}
			sc.Servers = append(sc.Servers, ServerConfig{Name: s.Name, Addr: s.Addr(), Role: role, User: "root"})
		}
		cfg.Shards = append(cfg.Shards, sc)
	}
	return cfg
}

func startFleet(t *testing.T, cfg Config) (*Fleet, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	f, err := New(cfg, reg, localdb.TestLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := f.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, reg
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < d {
		if cond() {
			return time.Since(start)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s: not within %v", what, d)
	return 0
}

func status(f *Fleet, name string) ServerStatus {
	for _, s := range f.Status() {
		if s.Name == name {
			return s
		}
	}
	return ServerStatus{}
}

// ready waits until every server is healthy and every replica's lag is
// known and small.
func ready(t *testing.T, f *Fleet) {
	t.Helper()
	waitFor(t, 10*time.Second, "fleet ready", func() bool {
		for _, s := range f.Status() {
			if !s.Healthy || !s.LagKnown || s.Lag > 200*time.Millisecond {
				return false
			}
		}
		return true
	})
}

// picks leases n eventual reads and counts them per server, releasing each.
func picks(t *testing.T, f *Fleet, shard string, r ReadRequest, n int) map[string]int {
	t.Helper()
	out := map[string]int{}
	for i := 0; i < n; i++ {
		l, err := f.AcquireRead(context.Background(), shard, r)
		if err != nil {
			t.Fatalf("AcquireRead: %v", err)
		}
		out[l.Server]++
		l.Release()
	}
	return out
}

func openApp(t *testing.T, addr, db string) *sql.DB {
	t.Helper()
	d, err := sql.Open("mysql", fmt.Sprintf("%s@tcp(%s)/%s?timeout=2s", localdb.AppUser, addr, db))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestConfigValidate(t *testing.T) {
	good := DefaultConfig()
	good.Shards = []ShardConfig{{Name: "s0", Servers: []ServerConfig{
		{Name: "a", Addr: "127.0.0.1:1", Role: RolePrimary, User: "root"},
		{Name: "b", Addr: "127.0.0.1:2", Role: RoleReplica, User: "root"},
	}}}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	cases := map[string]func(*Config){
		"Shards[0].Servers: 2 primaries": func(c *Config) { c.Shards[0].Servers[1].Role = RolePrimary },
		"Servers[1].Addr":                func(c *Config) { c.Shards[0].Servers[1].Addr = "nope" },
		"Servers[1].Name":                func(c *Config) { c.Shards[0].Servers[1].Name = "a" },
		"CheckTimeout":                   func(c *Config) { c.CheckTimeout = 2 * time.Second },
		"NoReplica":                      func(c *Config) { c.NoReplica = "maybe" },
		"MetaSchema":                     func(c *Config) { c.MetaSchema = "x; DROP" },
	}
	for want, mutate := range cases {
		c := good
		c.Shards = []ShardConfig{{Name: "s0", Servers: append([]ServerConfig(nil), good.Shards[0].Servers...)}}
		mutate(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v", want, err)
		}
	}
	if _, err := ParseConsistency("EVENTUAL"); err != nil {
		t.Error(err)
	}
	if _, err := ParseConsistency("sometimes"); err == nil {
		t.Error("bad consistency accepted")
	}
}

// TestRouting: reads spread over the replicas, writes on the primary; a
// replica past the max lag stops getting reads within a second and gets
// them again after it recovers; a killed and a paused replica are ejected
// within about a second and come back on their own.
func TestRouting(t *testing.T) {
	topo := localdb.StartForTest(t, localdb.TestConfig(1, 2))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := configFor(topo)
	cfg.MaxLag = 500 * time.Millisecond
	f, reg := startFleet(t, cfg)
	ready(t, f)
	sh := topo.Shards()[0]
	p, r1, r2 := sh.Primary(), sh.Replicas()[0], sh.Replicas()[1]

	got := picks(t, f, "s0", ReadRequest{Consistency: Eventual}, 100)
	if got[p.Name] != 0 || got[r1.Name] == 0 || got[r2.Name] == 0 {
		t.Fatalf("eventual reads: %v, want spread over both replicas only", got)
	}
	// Least outstanding: with a lease held on r1, reads go to r2.
	l, _ := f.AcquireRead(ctx, "s0", ReadRequest{Consistency: Eventual})
	other := r1.Name
	if l.Server == r1.Name {
		other = r2.Name
	}
	if got := picks(t, f, "s0", ReadRequest{Consistency: Eventual}, 10); got[other] != 10 {
		t.Errorf("with a lease out on %s, reads went %v", l.Server, got)
	}
	l.Release()
	w, err := f.AcquirePrimary(ctx, "s0")
	if err != nil || w.Server != p.Name || !w.Primary {
		t.Fatalf("AcquirePrimary: %+v %v", w, err)
	}
	w.Release()
	if got := picks(t, f, "s0", ReadRequest{Consistency: Strong}, 5); got[p.Name] != 5 {
		t.Errorf("strong reads: %v", got)
	}
	if _, err := f.AcquireRead(ctx, "nope", ReadRequest{}); !errors.Is(err, ErrUnknownShard) {
		t.Errorf("unknown shard: %v", err)
	}

	// Lag: delay r1 by 3 s; lag crosses 500 ms about 500 ms later.
	if err := topo.SetReplicationDelay(ctx, r1, 3*time.Second); err != nil {
		t.Fatal(err)
	}
	delayed := time.Now()
	took := waitFor(t, 3*time.Second, "r1 excluded for lag", func() bool {
		return picks(t, f, "s0", ReadRequest{Consistency: Eventual}, 20)[r1.Name] == 0
	})
	t.Logf("lag: %s excluded %v after MASTER_DELAY=3 (max lag 500ms); lag now %v", r1.Name, took, status(f, r1.Name).Lag)
	if took > 1500*time.Millisecond {
		t.Errorf("excluded only after %v", took)
	}
	// The gauge is the lag measured at the last check; routing uses the
	// bound that grows between checks, so the gauge may trail it by one
	// interval: it must get there, and it keeps growing (3 s delay).
	waitFor(t, time.Second, "lag gauge past 0.4 s", func() bool {
		return testutil.ToFloat64(f.m.lag.WithLabelValues("s0", r1.Name)) >= 0.4
	})
	for i := 0; i < 10; i++ { // stays out while lagging
		if got := picks(t, f, "s0", ReadRequest{Consistency: Eventual}, 20); got[r1.Name] != 0 {
			t.Fatalf("lagging replica got reads: %v (lag %v)", got, status(f, r1.Name).Lag)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := topo.SetReplicationDelay(ctx, r1, 0); err != nil {
		t.Fatal(err)
	}
	took = waitFor(t, 10*time.Second, "r1 back after delay removed", func() bool {
		return picks(t, f, "s0", ReadRequest{Consistency: Eventual}, 20)[r1.Name] > 0
	})
	t.Logf("lag: %s back %v after the delay was removed (%v after it was set)", r1.Name, took, time.Since(delayed))

	// Kill -9: ejected fast (connection refused), back after restart.
	if err := r2.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	f.ReportFailure(r2.Name) // as the proxy does when a query on it fails
	if got := picks(t, f, "s0", ReadRequest{Consistency: Eventual}, 20); got[r2.Name] != 0 {
		t.Errorf("reported replica got reads before its next check: %v", got)
	}
	took = waitFor(t, 2*time.Second, "killed replica ejected", func() bool { return !status(f, r2.Name).Healthy })
	t.Logf("kill -9: %s ejected after %v", r2.Name, took)
	if got := picks(t, f, "s0", ReadRequest{Consistency: Eventual}, 20); got[r2.Name] != 0 {
		t.Errorf("killed replica got reads: %v", got)
	}
	if err := topo.Restart(ctx, r2); err != nil {
		t.Fatal(err)
	}
	took = waitFor(t, 5*time.Second, "restarted replica back", func() bool {
		return picks(t, f, "s0", ReadRequest{Consistency: Eventual}, 20)[r2.Name] > 0
	})
	t.Logf("kill -9: %s takes reads %v after restart (%v after kill)", r2.Name, took, time.Since(killed))

	// SIGSTOP: no answers at all; ejected within EjectAfter (~1 s).
	if err := r2.Pause(); err != nil {
		t.Fatal(err)
	}
	took = waitFor(t, 3*time.Second, "paused replica ejected", func() bool { return !status(f, r2.Name).Healthy })
	t.Logf("pause: %s ejected after %v", r2.Name, took)
	if took > 1600*time.Millisecond { // EjectAfter plus scheduling slack on a loaded machine
		t.Errorf("paused replica ejected only after %v, want about EjectAfter=%v", took, cfg.EjectAfter)
	}
	if err := r2.Resume(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "resumed replica back", func() bool {
		return picks(t, f, "s0", ReadRequest{Consistency: Eventual}, 20)[r2.Name] > 0
	})
	if n := testutil.ToFloat64(f.m.ejections.WithLabelValues("s0", r2.Name)); n != 2 {
		t.Errorf("ejections of %s: %v, want 2", r2.Name, n)
	}
	if n, err := testutil.GatherAndCount(reg, "strata_fleet_reads_routed_total"); err != nil || n != 3 {
		t.Errorf("reads_routed series: %d %v", n, err)
	}
}

// TestSessionReads: a read after a write goes only where the write is.
func TestSessionReads(t *testing.T) {
	topo := localdb.StartForTest(t, localdb.TestConfig(1, 2))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := configFor(topo)
	cfg.MaxLag = 10 * time.Second // the delayed replica stays eligible by lag
	f, _ := startFleet(t, cfg)
	sh := topo.Shards()[0]
	p, slow, fast := sh.Primary(), sh.Replicas()[0], sh.Replicas()[1]
	if err := p.Exec(ctx, "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	ready(t, f)
	if err := topo.SetReplicationDelay(ctx, slow, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "delayed replica lagging", func() bool { return status(f, slow.Name).Lag > 500*time.Millisecond })
	pdb := openApp(t, p.Addr(), "app")
	pdb.SetMaxOpenConns(1)
	waits, direct, toPrimary := 0, 0, 0
	for i := 0; i < 50; i++ {
		if _, err := pdb.ExecContext(ctx, "INSERT INTO t VALUES (?)", i); err != nil {
			t.Fatal(err)
		}
		var gtid string
		if err := pdb.QueryRowContext(ctx, "SELECT @@last_gtid").Scan(&gtid); err != nil {
			t.Fatal(err)
		}
		after, err := ParsePosition(gtid)
		if err != nil || len(after) != 1 {
			t.Fatalf("last_gtid %q: %v", gtid, err)
		}
		l, err := f.AcquireRead(ctx, "s0", ReadRequest{Consistency: Session, After: after})
		if err != nil {
			t.Fatal(err)
		}
		if l.Server == slow.Name && len(l.WaitFor) == 0 {
			t.Fatalf("read after write %d went to the delayed replica without a wait", i)
		}
		db := openApp(t, l.Addr, "app")
		if len(l.WaitFor) > 0 {
			waits++
			var res int
			if err := db.QueryRowContext(ctx, l.WaitQuery()).Scan(&res); err != nil {
				t.Fatal(err)
			}
			if res != 0 {
				l.Release()
				if l, err = f.AcquirePrimary(ctx, "s0"); err != nil {
					t.Fatal(err)
				}
				db = openApp(t, l.Addr, "app")
			} else {
				l.Reached()
			}
		} else if l.Primary {
			toPrimary++
		} else {
			direct++
		}
		var n int
		if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM t WHERE id = ?", i).Scan(&n); err != nil || n != 1 {
			t.Fatalf("read %d on %s: n=%d %v (stale read)", i, l.Server, n, err)
		}
		l.Release()
		db.Close()
		// A second read needs no wait: the fleet knows fast has it.
		l2, err := f.AcquireRead(ctx, "s0", ReadRequest{Consistency: Session, After: after})
		if err != nil {
			t.Fatal(err)
		}
		if l2.Server == fast.Name && len(l2.WaitFor) > 0 {
			t.Errorf("second read after write %d still waits", i)
		}
		l2.Release()
	}
	t.Logf("session reads after a write: %d waited on the fresh replica, %d went there directly, %d to the primary", waits, direct, toPrimary)
	if waits+direct == 0 {
		t.Error("no session read used the up-to-date replica")
	}
	// Without SessionWait, reads the fleet cannot prove fresh go to the primary.
	f.cfg.SessionWait = 0
	if err := p.Exec(ctx, "INSERT INTO app.t VALUES (1000)"); err != nil {
		t.Fatal(err)
	}
	gtid, _ := p.QueryString(ctx, "SELECT @@global.gtid_binlog_pos")
	after, _ := ParsePosition(gtid)
	l, err := f.AcquireRead(ctx, "s0", ReadRequest{Consistency: Session, After: after})
	if err != nil || (!l.Primary && !status(f, l.Server).LagKnown) || l.Server == slow.Name || len(l.WaitFor) > 0 {
		t.Fatalf("session read without SessionWait: %+v %v", l, err)
	}
	l.Release()
}

// TestSwitchoverUnderWrites: 8 writers insert through leases while the
// shard switches over, and back: none sees an error and every acknowledged
// row is on every server afterwards. Then the primary dies: writes fail at
// once naming the shard, eventual reads go on.
func TestSwitchoverUnderWrites(t *testing.T) {
	topo := localdb.StartForTest(t, localdb.TestConfig(1, 2))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := configFor(topo)
	f, _ := startFleet(t, cfg)
	sh := topo.Shards()[0]
	p0, r1, r2 := sh.Primary(), sh.Replicas()[0], sh.Replicas()[1]
	if err := p0.Exec(ctx, "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY, w INT)"); err != nil {
		t.Fatal(err)
	}
	ready(t, f)
	// A second proxy's fleet over the same shards: it must follow the
	// switchovers the first one makes.
	cfg2 := configFor(topo)
	cfg2.HeartbeatID = "other-proxy"
	other, _ := startFleet(t, cfg2)

	dbs := map[string]*sql.DB{}
	for _, s := range sh.Servers() {
		dbs[s.Name] = openApp(t, s.Addr(), "app")
	}
	var next, errs atomic.Int64
	var mu sync.Mutex
	var acked []int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				l, err := f.AcquirePrimary(ctx, "s0")
				if err != nil {
					errs.Add(1)
					t.Errorf("acquire: %v", err)
					return
				}
				id := next.Add(1)
				_, err = dbs[l.Server].ExecContext(ctx, "INSERT INTO t VALUES (?, ?)", id, w)
				l.Release()
				if err != nil {
					errs.Add(1)
					t.Errorf("insert on %s: %v", l.Server, err)
					return
				}
				mu.Lock()
				acked = append(acked, id)
				mu.Unlock()
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	rep, err := f.Switchover(ctx, "s0", r1.Name)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("switchover: %+v", rep)
	if name, _, _ := f.Primary("s0"); name != r1.Name || len(rep.Repointed) != 2 {
		t.Fatalf("after switchover primary %s, report %+v", name, rep)
	}
	took := waitFor(t, 2*time.Second, "the other proxy's fleet follows", func() bool {
		name, _, _ := other.Primary("s0")
		return name == r1.Name
	})
	t.Logf("another fleet followed the switchover after %v", took)
	time.Sleep(300 * time.Millisecond)
	rep, err = f.Switchover(ctx, "s0", "") // back: the old primary now follows as a replica
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("switchover back: %+v", rep)
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	if errs.Load() > 0 {
		t.Fatalf("%d writer errors", errs.Load())
	}
	newP := topo.Server(rep.New)
	pos, _ := newP.QueryString(ctx, "SELECT @@global.gtid_binlog_pos")
	for _, s := range sh.Servers() {
		if s != newP {
			if res, err := s.QueryString(ctx, fmt.Sprintf("SELECT MASTER_GTID_WAIT('%s', 10)", pos)); err != nil || res != "0" {
				t.Fatalf("%s did not catch up: %s %v", s.Name, res, err)
			}
		}
		var n int
		if err := dbs[s.Name].QueryRowContext(ctx, "SELECT COUNT(*) FROM t").Scan(&n); err != nil || n != len(acked) {
			t.Errorf("%s has %d rows, %d acknowledged (%v)", s.Name, n, len(acked), err)
		}
		ro, _ := s.QueryString(ctx, "SELECT @@global.read_only")
		if (s == newP) != (ro == "0") {
			t.Errorf("%s read_only=%s", s.Name, ro)
		}
	}
	t.Logf("%d rows acknowledged across two switchovers, all on every server", len(acked))
	if _, err := f.Switchover(ctx, "s0", newP.Name); err == nil {
		t.Error("switchover to the primary itself accepted")
	}

	// Unplanned: the primary dies.
	ready(t, f)
	if err := newP.Kill(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "primary ejected", func() bool { return !status(f, newP.Name).Healthy })
	start := time.Now()
	_, err = f.AcquirePrimary(ctx, "s0")
	// In memory, microseconds; the bound only tells "at once" from a wait
	// on the dead server, with room for a loaded machine's scheduling.
	if !errors.Is(err, ErrPrimaryDown) || time.Since(start) > 200*time.Millisecond {
		t.Fatalf("write with primary down: %v after %v", err, time.Since(start))
	}
	se := SQLError(err)
	if !strings.Contains(se.Error(), "shard s0") || !strings.Contains(se.Error(), "1105") {
		t.Errorf("SQL error %q", se)
	}
	t.Logf("write with primary down: %v", se)
	if got := picks(t, f, "s0", ReadRequest{Consistency: Eventual}, 20); got[r2.Name]+got[p0.Name]+got[r1.Name] != 20 {
		t.Errorf("eventual reads with primary down: %v", got)
	}
	if _, err := f.Switchover(ctx, "s0", ""); !errors.Is(err, ErrPrimaryDown) {
		t.Errorf("switchover with primary down: %v", err)
	}
	if err := topo.Restart(ctx, newP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "writes again after restart", func() bool {
		l, err := f.AcquirePrimary(ctx, "s0")
		l.Release()
		return err == nil
	})
}

// TestAutomaticPromotion: with AutoPromoteAfter set, a dead primary is
// replaced by the most advanced replica; when it returns it is fenced
// with read_only and follows the new primary.
func TestAutomaticPromotion(t *testing.T) {
	topo := localdb.StartForTest(t, localdb.TestConfig(1, 2))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := configFor(topo)
	cfg.AutoPromoteAfter = time.Second
	f, _ := startFleet(t, cfg)
	sh := topo.Shards()[0]
	old := sh.Primary()
	if err := old.Exec(ctx, "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY)", "INSERT INTO app.t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	ready(t, f)
	if err := topo.WaitReplicated(ctx); err != nil {
		t.Fatal(err)
	}
	var events []Event
	var mu sync.Mutex
	f.OnEvent(func(e Event) { mu.Lock(); events = append(events, e); mu.Unlock() })
	if err := old.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	took := waitFor(t, 10*time.Second, "a replica promoted", func() bool {
		name, _, _ := f.Primary("s0")
		return name != old.Name
	})
	newName, addr, _ := f.Primary("s0")
	t.Logf("automatic promotion of %s %v after the kill", newName, took)
	if took < cfg.AutoPromoteAfter {
		t.Errorf("promoted after %v, before AutoPromoteAfter", took)
	}
	l, err := f.AcquirePrimary(ctx, "s0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := openApp(t, addr, "app").ExecContext(ctx, "INSERT INTO t VALUES (2)"); err != nil {
		t.Fatalf("write on promoted primary: %v", err)
	}
	l.Release()
	// The old primary comes back writable (localdb still thinks it is the
	// primary): the fleet fences it and makes it follow.
	if err := topo.Restart(ctx, old); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "old primary fenced and replicating", func() bool {
		st := status(f, old.Name)
		return st.Healthy && st.ReadOnly && st.Replication == "running" && !st.Fenced
	})
	if _, err := openApp(t, old.Addr(), "app").ExecContext(ctx, "INSERT INTO t VALUES (3)"); err == nil {
		t.Error("returned old primary took an application write")
	}
	if err := f.servers[newName].db.QueryRowContext(ctx, "SELECT 1").Err(); err != nil {
		t.Fatal(err)
	}
	var n int
	waitFor(t, 5*time.Second, "old primary has the new write", func() bool {
		err := openApp(t, old.Addr(), "app").QueryRowContext(ctx, "SELECT COUNT(*) FROM t").Scan(&n)
		return err == nil && n == 2
	})
	mu.Lock()
	defer mu.Unlock()
	var kinds []string
	for _, e := range events {
		kinds = append(kinds, e.Kind.String()+":"+e.Server)
	}
	t.Logf("events since the kill (%v ago): %v", time.Since(killed).Round(time.Millisecond), kinds)
	if !strings.Contains(strings.Join(kinds, " "), "primary-changed:"+newName) {
		t.Errorf("no PrimaryChanged event: %v", kinds)
	}
}

// TestSessionReadsIgnoreErrantWrites: a replica with a local transaction of
// its own in its binlog (a DBA's DDL on the replica: a GTID with the
// replica's server id and the domain's next seq) has not applied the
// primary's later write with the same seq. A session read after that write
// must not go to it on the strength of its binlog position.
func TestSessionReadsIgnoreErrantWrites(t *testing.T) {
	topo := localdb.StartForTest(t, localdb.TestConfig(1, 1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := configFor(topo)
	cfg.MaxLag = 30 * time.Second // the stopped replica stays eligible by lag
	cfg.SessionWait = 0           // no MASTER_GTID_WAIT: only what the fleet knows counts
	f, _ := startFleet(t, cfg)
	sh := topo.Shards()[0]
	p, r := sh.Primary(), sh.Replicas()[0]
	if err := p.Exec(ctx, "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	ready(t, f)
	if err := topo.WaitReplicated(ctx); err != nil {
		t.Fatal(err)
	}
	// The replica stops applying, then gets a local DDL of its own.
	if err := r.Exec(ctx, "STOP SLAVE SQL_THREAD", "CREATE TABLE app.local_only (id INT)"); err != nil {
		t.Fatal(err)
	}
	if err := p.Exec(ctx, "INSERT INTO app.t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	pp, _ := p.QueryString(ctx, "SELECT @@global.gtid_binlog_pos")
	rb, _ := r.QueryString(ctx, "SELECT @@global.gtid_binlog_pos")
	rs, _ := r.QueryString(ctx, "SELECT @@global.gtid_slave_pos")
	t.Logf("primary at %s; replica applied %s, its binlog at %s", pp, rs, rb)
	after, err := ParsePosition(pp)
	if err != nil {
		t.Fatal(err)
	}
	// Let two checks of the replica see its current state.
	rs0 := f.servers[r.Name]
	for i := 0; i < 2; i++ {
		old := rs0.pos.Load()
		waitFor(t, 5*time.Second, "a check of the replica", func() bool { return rs0.pos.Load() != old })
	}
	l, err := f.AcquireRead(ctx, "s0", ReadRequest{Consistency: Session, After: after})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	var n int
	if err := openApp(t, l.Addr, "app").QueryRowContext(ctx, "SELECT COUNT(*) FROM t WHERE id = 1").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("session read after the write went to %s (fleet position %s) and missed the write: stale read", l.Server, status(f, l.Server).Position)
	}
	if !l.Primary {
		t.Errorf("session read went to %s, which has not applied %s", l.Server, after)
	}
}

// TestSwitchoverBounds: a switchover never pauses the shard for nothing or
// for long, and never stops halfway. A target whose replication is stopped
// is refused before the gate closes; a statement running on the primary
// outside the fleet's leases holds read_only off only for a bounded wait,
// then the switchover is undone; a caller that goes away once the new
// primary is routed to does not leave the others unrepointed.
func TestSwitchoverBounds(t *testing.T) {
	topo := localdb.StartForTest(t, localdb.TestConfig(1, 2))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := configFor(topo)
	cfg.DrainTimeout = 500 * time.Millisecond // read_only may wait 1 s for running statements
	cfg.CatchupTimeout = 3 * time.Second
	f, _ := startFleet(t, cfg)
	sh := topo.Shards()[0]
	p, r1, r2 := sh.Primary(), sh.Replicas()[0], sh.Replicas()[1]
	if err := p.Exec(ctx, "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY, v INT)", "INSERT INTO app.t VALUES (1, 0)"); err != nil {
		t.Fatal(err)
	}
	ready(t, f)
	pdb := openApp(t, p.Addr(), "app")

	// A target that does not apply: refused at once.
	if err := r1.Exec(ctx, "STOP SLAVE SQL_THREAD"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "fleet sees the stopped SQL thread", func() bool { return status(f, r1.Name).Replication == "sql stopped" })
	start := time.Now()
	_, err := f.Switchover(ctx, "s0", r1.Name)
	t.Logf("switchover to a replica with its SQL thread stopped: %v after %v", err, time.Since(start))
	if err == nil || time.Since(start) > time.Second {
		t.Fatalf("switchover to a stopped replica: %v after %v, want a refusal at once", err, time.Since(start))
	}
	if name, _, _ := f.Primary("s0"); name != p.Name {
		t.Fatalf("primary now %s", name)
	}
	if err := r1.Exec(ctx, "START SLAVE SQL_THREAD"); err != nil {
		t.Fatal(err)
	}
	ready(t, f)

	// A long statement on the primary, not through the fleet.
	long := make(chan error, 1)
	go func() {
		_, err := pdb.ExecContext(ctx, "UPDATE t SET v = SLEEP(6) WHERE id = 1")
		long <- err
	}()
	time.Sleep(300 * time.Millisecond)
	start = time.Now()
	_, err = f.Switchover(ctx, "s0", r1.Name)
	took := time.Since(start)
	t.Logf("switchover with a 6 s statement running on the primary: %v after %v", err, took)
	if err == nil || took > 3*time.Second {
		t.Fatalf("switchover behind a long statement: %v after %v, want a failure after about 1.5 s", err, took)
	}
	if name, _, _ := f.Primary("s0"); name != p.Name {
		t.Fatalf("primary now %s", name)
	}
	if ro, _ := p.QueryString(ctx, "SELECT @@global.read_only"); ro != "0" {
		t.Fatalf("old primary left read_only=%s after the switchover was undone", ro)
	}
	if err := <-long; err != nil {
		t.Fatalf("the long statement: %v", err)
	}
	if _, err := pdb.ExecContext(ctx, "INSERT INTO t VALUES (2, 0)"); err != nil {
		t.Fatalf("write after the undone switchover: %v", err)
	}

	// The caller gives up as soon as the new primary takes queries.
	cctx, ccancel := context.WithCancel(ctx)
	defer ccancel()
	f.OnEvent(func(e Event) {
		if e.Kind == PrimaryChanged {
			ccancel()
		}
	})
	rep, err := f.Switchover(cctx, "s0", r1.Name)
	t.Logf("switchover whose caller went away after the promotion: %+v %v", rep, err)
	if err != nil || len(rep.Repointed) != 2 {
		t.Fatalf("switchover with the caller gone: %+v %v, want done and 2 servers repointed", rep, err)
	}
	for _, s := range []*localdb.Server{p, r2} {
		var st localdb.ReplicaStatus
		waitFor(t, 5*time.Second, s.Name+" replicating from the new primary", func() bool {
			st, err = s.ReplicaStatus(ctx)
			return err == nil && st.IORunning && st.SQLRunning && st.MasterPort == r1.Port
		})
	}
}

// TestOtherProxyFollowsFailover: when one proxy promotes a replica of a
// shard whose primary died, another proxy over the same shards follows it
// while the old primary is still down (its writes do not keep failing),
// and when the old primary returns writable neither proxy writes to it:
// it is fenced.
func TestOtherProxyFollowsFailover(t *testing.T) {
	topo := localdb.StartForTest(t, localdb.TestConfig(1, 2))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a, _ := startFleet(t, configFor(topo))
	cfgB := configFor(topo)
	cfgB.HeartbeatID = "proxy-b"
	b, _ := startFleet(t, cfgB)
	sh := topo.Shards()[0]
	old := sh.Primary()
	if err := old.Exec(ctx, "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	ready(t, a)
	ready(t, b)
	if err := old.Kill(); err != nil {
		t.Fatal(err)
	}
	for _, f := range []*Fleet{a, b} {
		waitFor(t, 3*time.Second, "primary ejected", func() bool { return !status(f, old.Name).Healthy })
	}
	rep, err := a.Failover(ctx, "s0", "")
	if err != nil {
		t.Fatal(err)
	}
	promoted := time.Now()
	took := waitFor(t, 3*time.Second, "the other proxy follows the failover", func() bool {
		name, _, _ := b.Primary("s0")
		return name == rep.New
	})
	t.Logf("proxy B follows A's failover to %s after %v, the old primary still down", rep.New, took)
	l, err := b.AcquirePrimary(ctx, "s0")
	if err != nil {
		t.Fatalf("write through proxy B after the failover: %v", err)
	}
	l.Release()

	// The old primary comes back writable (as after a restart by an
	// init system): both proxies keep writing to the new one, and it is
	// fenced.
	if err := topo.Restart(ctx, old); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "returned old primary fenced", func() bool {
		ro, err := old.QueryString(ctx, "SELECT @@global.read_only")
		return err == nil && ro == "1"
	})
	for i := 0; i < 20; i++ {
		for _, f := range []*Fleet{a, b} {
			if name, _, _ := f.Primary("s0"); name != rep.New {
				t.Fatalf("a proxy routes writes to %s after the failover to %s", name, rep.New)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("old primary back and fenced; both proxies on %s (%v after the promotion)", rep.New, time.Since(promoted))
}

// TestDownReplicaRepointedOnReturn: a replica that was down (paused) during
// a switchover follows the new primary when it answers again, instead of
// staying behind the old one.
func TestDownReplicaRepointedOnReturn(t *testing.T) {
	topo := localdb.StartForTest(t, localdb.TestConfig(1, 2))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	f, _ := startFleet(t, configFor(topo))
	sh := topo.Shards()[0]
	p, r1, r2 := sh.Primary(), sh.Replicas()[0], sh.Replicas()[1]
	ready(t, f)
	if err := r2.Pause(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r2.Resume() })
	waitFor(t, 3*time.Second, "paused replica ejected", func() bool { return !status(f, r2.Name).Healthy })
	rep, err := f.Switchover(ctx, "s0", r1.Name)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("switchover with %s paused: %+v", r2.Name, rep)
	if _, ok := rep.Unrepointed[r2.Name]; !ok {
		t.Fatalf("paused replica reported repointed: %+v", rep)
	}
	if err := r2.Resume(); err != nil {
		t.Fatal(err)
	}
	took := waitFor(t, 10*time.Second, "returned replica replicating from the new primary", func() bool {
		st, err := r2.ReplicaStatus(ctx)
		return err == nil && st.IORunning && st.SQLRunning && st.MasterPort == r1.Port
	})
	t.Logf("%s replicates from %s %v after it answered again (it had been replicating from %s)", r2.Name, r1.Name, took, p.Name)
}

// TestFenceSparesCurrentPrimary: a fence left pending on a server that is
// still the shard's primary (a failover whose promotion failed) is
// dropped, not applied: fencing it pointed it at itself and stopped the
// shard's writes.
func TestFenceSparesCurrentPrimary(t *testing.T) {
	topo := localdb.StartForTest(t, localdb.TestConfig(1, 1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f, _ := startFleet(t, configFor(topo))
	p := topo.Shards()[0].Primary()
	ready(t, f)
	ps := f.servers[p.Name]
	ps.mu.Lock()
	ps.needsFence = true
	ps.mu.Unlock()
	waitFor(t, 5*time.Second, "pending fence handled", func() bool { return !status(f, p.Name).Fenced })
	for i := 0; i < 2; i++ { // two more checks
		old := ps.pos.Load()
		waitFor(t, 5*time.Second, "a check", func() bool { return ps.pos.Load() != old })
	}
	ro, _ := p.QueryString(ctx, "SELECT @@global.read_only")
	st, _ := p.ReplicaStatus(ctx)
	if ro != "0" || st.MasterPort != 0 {
		t.Fatalf("primary fenced by a stale fence: read_only=%s, replicating from port %d", ro, st.MasterPort)
	}
	if _, err := openApp(t, p.Addr(), "").ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS app"); err != nil {
		t.Fatalf("write on the primary: %v", err)
	}
}

// TestSwitchoverKeepsReplicaWithLocalWrite: a replica with a local
// transaction of its own in its binlog (a DBA's DDL, or an ANALYZE TABLE,
// which MariaDB binlogs) keeps replicating after a switchover. Repointed
// with MASTER_USE_GTID=current_pos, it asked the new primary for its own
// local GTID, which no primary has, and replication stopped for good
// (error 1236, "the slave has diverged").
func TestSwitchoverKeepsReplicaWithLocalWrite(t *testing.T) {
	topo := localdb.StartForTest(t, localdb.TestConfig(1, 2))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f, _ := startFleet(t, configFor(topo))
	sh := topo.Shards()[0]
	p, r1, r2 := sh.Primary(), sh.Replicas()[0], sh.Replicas()[1]
	if err := p.Exec(ctx, "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	ready(t, f)
	if err := topo.WaitReplicated(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r2.Exec(ctx, "CREATE TABLE app.local_only (id INT)"); err != nil {
		t.Fatal(err)
	}
	rep, err := f.Switchover(ctx, "s0", r1.Name)
	if err != nil {
		t.Fatal(err)
	}
	if err := r1.Exec(ctx, "INSERT INTO app.t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	pos, _ := r1.QueryString(ctx, "SELECT @@global.gtid_binlog_pos")
	for _, s := range []*localdb.Server{r2, p} {
		res, err := s.QueryString(ctx, fmt.Sprintf("SELECT MASTER_GTID_WAIT('%s', 5)", pos))
		st, _ := s.ReplicaStatus(ctx)
		if err != nil || res != "0" || !st.IORunning || !st.SQLRunning || st.MasterPort != r1.Port {
			t.Errorf("%s after the switchover (%v): wait=%s %v, replicating from %d io=%v sql=%v: %s", s.Name, rep.Repointed, res, err, st.MasterPort, st.IORunning, st.SQLRunning, st.LastError)
		}
	}
}

// TestBlockedHeartbeatKeepsPrimary: a primary whose heartbeat write is
// blocked (a lock on the heartbeat table, a backup's FLUSH TABLES WITH READ
// LOCK, a slow fsync on a loaded machine) but which answers is not ejected:
// ejecting it made every write fail with "primary down" while it was up.
func TestBlockedHeartbeatKeepsPrimary(t *testing.T) {
	topo := localdb.StartForTest(t, localdb.TestConfig(1, 1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f, _ := startFleet(t, configFor(topo))
	p := topo.Shards()[0].Primary()
	ready(t, f)
	db, err := p.OpenAdmin("")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "LOCK TABLES strata_meta.heartbeat WRITE"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2500 * time.Millisecond)
	for time.Now().Before(deadline) {
		if !status(f, p.Name).Healthy {
			t.Fatalf("primary ejected while its heartbeat table was locked: %s", status(f, p.Name).LastError)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := conn.ExecContext(ctx, "UNLOCK TABLES"); err != nil {
		t.Fatal(err)
	}
	l, err := f.AcquirePrimary(ctx, "s0")
	if err != nil {
		t.Fatal(err)
	}
	l.Release()
}
