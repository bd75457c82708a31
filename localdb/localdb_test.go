package localdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func openT(t *testing.T, s *Server, db string) *sql.DB {
	t.Helper()
	d, err := s.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func count(t *testing.T, db *sql.DB, q string) int {
	t.Helper()
	var n int
	if err := db.QueryRow(q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(d)
	var lastErr error
	for time.Now().Before(deadline) {
		ok, err := cond()
		if ok {
			return
		}
		lastErr = err
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: not within %v (last error: %v)", what, d, lastErr)
}

func TestConfigValidate(t *testing.T) {
	good := DefaultConfig()
	good.Root = "/tmp/x"
	if err := good.Validate(); err != nil {
		t.Fatalf("default config with root: %v", err)
	}
	cases := map[string]func(*Config){
		"Root":                func(c *Config) { c.Root = "" },
		"Shards":              func(c *Config) { c.Shards = 0 },
		"Replicas":            func(c *Config) { c.Replicas = -1 },
		"BasePort":            func(c *Config) { c.BasePort = 65534 },
		"FlushLogAtTrxCommit": func(c *Config) { c.FlushLogAtTrxCommit = 3 },
		"StartTimeout":        func(c *Config) { c.StartTimeout = 0 },
	}
	for field, mutate := range cases {
		c := good
		mutate(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), "Config."+field) {
			t.Errorf("%s: got %v, want an error naming the field", field, err)
		}
	}
}

// TestReplication starts the default shape and checks that a row written on
// each primary is on its replica within a second, that replicas are
// read-only and that replication uses GTIDs.
func TestReplication(t *testing.T) {
	topo := StartForTest(t, TestConfig(2, 1))
	ctx := ctxT(t, time.Minute)
	if got := len(topo.Shards()); got != 2 {
		t.Fatalf("shards: %d", got)
	}
	for _, sh := range topo.Shards() {
		p := sh.Primary()
		if err := p.Exec(ctx, "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY, shard VARCHAR(8))",
			fmt.Sprintf("INSERT INTO app.t VALUES (1, '%s')", sh.Name)); err != nil {
			t.Fatal(err)
		}
		r := sh.Replicas()[0]
		start := time.Now()
		rdb := openT(t, r, "")
		waitFor(t, time.Second, "row on replica "+r.Name, func() (bool, error) {
			var got string
			err := rdb.QueryRow("SELECT shard FROM app.t WHERE id = 1").Scan(&got)
			return err == nil && got == sh.Name, err
		})
		t.Logf("%s: row visible on %s after %v", sh.Name, r.Name, time.Since(start))

		st, err := r.ReplicaStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !st.IORunning || !st.SQLRunning || st.MasterPort != p.Port || st.UsingGTID != "Current_Pos" {
			t.Errorf("%s replica status: %+v", r.Name, st)
		}
		if ro, _ := r.QueryString(ctx, "SELECT @@read_only"); ro != "1" {
			t.Errorf("%s read_only = %q, want 1", r.Name, ro)
		}
		if ro, _ := p.QueryString(ctx, "SELECT @@read_only"); ro != "0" {
			t.Errorf("%s (primary) read_only = %q, want 0", p.Name, ro)
		}
		if _, err := rdb.Exec("INSERT INTO app.t VALUES (2, 'x')"); err == nil {
			t.Errorf("write on replica %s succeeded", r.Name)
		}
	}
	// Shards are independent: shard 0's table is not on shard 1.
	var other string
	err := openT(t, topo.Shards()[1].Primary(), "").QueryRow("SELECT shard FROM app.t WHERE id = 1").Scan(&other)
	if err != nil || other != "s1" {
		t.Fatalf("shard 1 sees %q, %v", other, err)
	}
}

// TestKillPrimaryNoLoss kills a primary with SIGKILL in the middle of a write
// stream and restarts it: every acknowledged row is there, and the replica
// goes on replicating.
func TestKillPrimaryNoLoss(t *testing.T) {
	topo := StartForTest(t, TestConfig(1, 1))
	ctx := ctxT(t, 2*time.Minute)
	sh := topo.Shards()[0]
	p := sh.Primary()
	if err := p.Exec(ctx, "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	db := openT(t, p, "app")
	db.SetMaxOpenConns(4)

	acked := make(chan int, 100000)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := db.Exec("INSERT INTO t VALUES (?)", i); err != nil {
				return // the server is gone
			}
			acked <- i
		}
	}()
	waitFor(t, 10*time.Second, "some rows written", func() (bool, error) { return len(acked) > 300, nil })
	oldPid := p.Pid()
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(oldPid, 0); err == nil {
		t.Fatalf("pid %d still alive after Kill", oldPid)
	}
	close(stop)
	<-done
	close(acked)
	n := len(acked)
	if err := topo.Restart(ctx, p); err != nil {
		t.Fatal(err)
	}
	db2 := openT(t, p, "app")
	missing := 0
	for id := range acked {
		var x int
		if err := db2.QueryRow("SELECT id FROM t WHERE id = ?", id).Scan(&x); err != nil {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged rows lost after kill -9", missing, n)
	}
	t.Logf("%d acknowledged rows all present after kill -9 and restart", n)

	if err := p.Exec(ctx, "INSERT INTO app.t VALUES (-1)"); err != nil {
		t.Fatal(err)
	}
	if err := topo.WaitReplicated(ctx); err != nil {
		t.Fatal(err)
	}
	r := sh.Replicas()[0]
	if got := count(t, openT(t, r, "app"), "SELECT COUNT(*) FROM t WHERE id = -1"); got != 1 {
		t.Fatalf("replica did not resume after primary restart: %d", got)
	}
}

// TestPauseReplicaCatchesUp pauses a replica with SIGSTOP, writes to the
// primary, resumes it and sees it catch up.
func TestPauseReplicaCatchesUp(t *testing.T) {
	topo := StartForTest(t, TestConfig(1, 1))
	ctx := ctxT(t, time.Minute)
	sh := topo.Shards()[0]
	p, r := sh.Primary(), sh.Replicas()[0]
	if err := p.Exec(ctx, "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	if err := topo.WaitReplicated(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.Pause(); err != nil {
		t.Fatal(err)
	}
	if !r.Paused() {
		t.Fatal("Paused() false after Pause")
	}
	// A paused server does not answer.
	rdb := openT(t, r, "app")
	pctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	if err := rdb.PingContext(pctx); err == nil {
		t.Error("paused replica answered a ping")
	}
	cancel()
	pdb := openT(t, p, "app")
	for i := 0; i < 200; i++ {
		if _, err := pdb.Exec("INSERT INTO t VALUES (?)", i); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Resume(); err != nil {
		t.Fatal(err)
	}
	rdb2 := openT(t, r, "app")
	waitFor(t, 5*time.Second, "replica caught up", func() (bool, error) {
		var n int
		err := rdb2.QueryRow("SELECT COUNT(*) FROM t").Scan(&n)
		return err == nil && n == 200, err
	})
}

// TestReplicationDelay sets MASTER_DELAY and sees Seconds_Behind_Master
// rise while a write waits out the delay, and the row arrive after it.
func TestReplicationDelay(t *testing.T) {
	topo := StartForTest(t, TestConfig(1, 1))
	ctx := ctxT(t, time.Minute)
	sh := topo.Shards()[0]
	p, r := sh.Primary(), sh.Replicas()[0]
	if err := p.Exec(ctx, "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	if err := topo.WaitReplicated(ctx); err != nil {
		t.Fatal(err)
	}
	if err := topo.SetReplicationDelay(ctx, r, 3*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := p.Exec(ctx, "INSERT INTO app.t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	written := time.Now()
	var maxBehind int64
	waitFor(t, 10*time.Second, "Seconds_Behind_Master > 0", func() (bool, error) {
		st, err := r.ReplicaStatus(ctx)
		if st.SecondsBehindMaster.Int64 > maxBehind {
			maxBehind = st.SecondsBehindMaster.Int64
		}
		return st.SecondsBehindMaster.Valid && st.SecondsBehindMaster.Int64 > 0, err
	})
	rdb := openT(t, r, "app")
	if n := count(t, rdb, "SELECT COUNT(*) FROM t"); n != 0 && time.Since(written) < 2*time.Second {
		t.Errorf("row visible on delayed replica after %v", time.Since(written))
	}
	waitFor(t, 10*time.Second, "delayed row arrives", func() (bool, error) {
		var n int
		err := rdb.QueryRow("SELECT COUNT(*) FROM t").Scan(&n)
		return n == 1, err
	})
	// The delay counts from the event's timestamp, which has whole
	// seconds: a write at x.9 s is applied from x+3 s, 2.1 s later.
	if lag := time.Since(written); lag < 1900*time.Millisecond {
		t.Errorf("row arrived after %v, before the 3s delay (less the timestamp's 1s resolution)", lag)
	}
	st, _ := r.ReplicaStatus(ctx)
	if st.SQLDelay != 3 {
		t.Errorf("SQL_Delay = %d, want 3", st.SQLDelay)
	}
	// The delay survives a restart of the replica.
	if err := topo.Restart(ctx, r); err != nil {
		t.Fatal(err)
	}
	st, _ = r.ReplicaStatus(ctx)
	if st.SQLDelay != 3 || !st.SQLRunning {
		t.Errorf("after restart: %+v", st)
	}
}

// TestPromoteAndReuse promotes the replica, writes to the new primary, sees
// the old primary follow it as a read-only replica, then stops everything
// and starts the same root again: data and roles are kept.
func TestPromoteAndReuse(t *testing.T) {
	cfg := TestConfig(1, 2)
	cfg.Root = t.TempDir()
	cfg.Logger = TestLogger(t)
	ctx := ctxT(t, 2*time.Minute)
	topo, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = topo.Stop() })
	sh := topo.Shards()[0]
	old := sh.Primary()
	if err := old.Exec(ctx, "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY)", "INSERT INTO app.t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	newP := sh.Replicas()[0]
	if err := topo.Promote(ctx, newP); err != nil {
		t.Fatal(err)
	}
	if sh.Primary() != newP || old.Role() != RoleReplica {
		t.Fatalf("roles after promote: primary %s, old %s", sh.Primary().Name, old.Role())
	}
	if err := newP.Exec(ctx, "INSERT INTO app.t VALUES (2)"); err != nil {
		t.Fatalf("write on new primary: %v", err)
	}
	if _, err := openT(t, old, "app").Exec("INSERT INTO t VALUES (3)"); err == nil {
		t.Fatal("old primary still takes writes")
	}
	if err := topo.WaitReplicated(ctx); err != nil {
		t.Fatal(err)
	}
	for _, s := range sh.Servers() {
		if n := count(t, openT(t, s, "app"), "SELECT COUNT(*) FROM t"); n != 2 {
			t.Errorf("%s has %d rows, want 2", s.Name, n)
		}
	}
	var pids []int
	for _, s := range topo.Servers() {
		pids = append(pids, s.Pid())
	}
	if err := topo.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("pid %d alive after Stop", pid)
		}
	}

	topo2, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = topo2.Stop() })
	sh2 := topo2.Shards()[0]
	if sh2.Primary().Name != newP.Name {
		t.Fatalf("after restart primary is %s, want %s", sh2.Primary().Name, newP.Name)
	}
	if err := sh2.Primary().Exec(ctx, "INSERT INTO app.t VALUES (4)"); err != nil {
		t.Fatal(err)
	}
	if err := topo2.WaitReplicated(ctx); err != nil {
		t.Fatal(err)
	}
	for _, s := range sh2.Servers() {
		if n := count(t, openT(t, s, "app"), "SELECT COUNT(*) FROM t"); n != 3 {
			t.Errorf("after reuse %s has %d rows, want 3", s.Name, n)
		}
	}
}

// TestLeftoverReaped starts a topology, forgets it without stopping (as a
// crashed run would), and starts the same root again: the leftover servers
// are found through their pid files and replaced.
func TestLeftoverReaped(t *testing.T) {
	cfg := TestConfig(1, 0)
	cfg.Root = t.TempDir()
	cfg.Logger = TestLogger(t)
	ctx := ctxT(t, time.Minute)
	topo, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := topo.Servers()[0]
	leftover := s.Pid()
	t.Cleanup(func() { _ = syscall.Kill(leftover, syscall.SIGKILL) })
	b, err := os.ReadFile(s.pidFile())
	if err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(leftover) {
		t.Fatalf("pid file %q, %v; want %d", b, err, leftover)
	}
	// Forget topo, and take its port so the new start must move.
	topo2, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer topo2.Stop()
	if err := syscall.Kill(leftover, 0); err == nil {
		t.Fatalf("leftover pid %d still alive", leftover)
	}
	if topo2.Servers()[0].Pid() == leftover {
		t.Fatal("same pid")
	}
}

// TestAdoptsOutsidePromotion promotes a replica by hand, as the proxy's
// switchover does, without telling localdb; the next Start on the same root
// keeps the new roles instead of reviving the old primary.
func TestAdoptsOutsidePromotion(t *testing.T) {
	cfg := TestConfig(1, 1)
	cfg.Root = t.TempDir()
	cfg.Logger = TestLogger(t)
	ctx := ctxT(t, 2*time.Minute)
	topo, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = topo.Stop() })
	sh := topo.Shards()[0]
	old, repl := sh.Primary(), sh.Replicas()[0]
	if err := old.Exec(ctx, "CREATE DATABASE app", "CREATE TABLE app.t (id INT PRIMARY KEY)", "INSERT INTO app.t VALUES (1)", "SET GLOBAL read_only = 1"); err != nil {
		t.Fatal(err)
	}
	if err := topo.WaitReplicated(ctx); err != nil {
		t.Fatal(err)
	}
	if err := repl.Exec(ctx, "STOP SLAVE", "RESET SLAVE ALL", "SET GLOBAL read_only = 0", "INSERT INTO app.t VALUES (2)"); err != nil {
		t.Fatal(err)
	}
	if err := old.Exec(ctx, fmt.Sprintf("CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=%d, MASTER_USER='root', MASTER_USE_GTID=current_pos", repl.Port), "START SLAVE"); err != nil {
		t.Fatal(err)
	}
	if err := topo.Stop(); err != nil {
		t.Fatal(err)
	}

	topo2, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = topo2.Stop() })
	sh2 := topo2.Shards()[0]
	if p := sh2.Primary(); p.Name != repl.Name {
		t.Fatalf("primary after restart is %s, want the hand-promoted %s", p.Name, repl.Name)
	}
	if err := sh2.Primary().Exec(ctx, "INSERT INTO app.t VALUES (3)"); err != nil {
		t.Fatal(err)
	}
	if err := topo2.WaitReplicated(ctx); err != nil {
		t.Fatal(err)
	}
	oldNow := topo2.Server(old.Name)
	if n := count(t, openT(t, oldNow, "app"), "SELECT COUNT(*) FROM t"); n != 3 {
		t.Fatalf("old primary has %d rows, want 3: it does not follow the new primary", n)
	}
	if ro, _ := oldNow.QueryString(ctx, "SELECT @@read_only"); ro != "1" {
		t.Fatalf("old primary read_only=%q", ro)
	}
}

// TestPortTakenByAnotherServer: a port another server answers on (here a
// MariaDB of another topology) is not taken for this one's: the start
// fails naming the port, instead of setting up the other server (a
// fresh-clone run once saw CREATE USER answered by a test's proxy that had
// taken the port between its choice and mariadbd's bind).
func TestPortTakenByAnotherServer(t *testing.T) {
	other := StartForTest(t, TestConfig(1, 0))
	cfg := TestConfig(1, 0)
	cfg.Root, cfg.Logger, cfg.BasePort = t.TempDir(), TestLogger(t), other.Shards()[0].Primary().Port
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	topo, err := Start(ctx, cfg)
	if err == nil {
		_ = topo.Stop()
		t.Fatal("a topology started on a port another server holds")
	}
	if !errors.Is(err, errPortTaken) || !strings.Contains(err.Error(), other.Shards()[0].Primary().Addr()) {
		t.Fatalf("error %v, want errPortTaken naming %s", err, other.Shards()[0].Primary().Addr())
	}
	// The other server still answers.
	if err := other.Shards()[0].Primary().Exec(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
}
