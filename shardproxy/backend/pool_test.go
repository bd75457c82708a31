package backend

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"vitess.io/vitess/go/mysql/sqlerror"

	"github.com/strata-db/strata/localdb"
)

func testCluster(t *testing.T, topo *localdb.Topology, mut func(*Options)) *Cluster {
	t.Helper()
	var specs []ShardSpec
	for _, sh := range topo.Shards() {
		s := ShardSpec{Name: sh.Name, Primary: sh.Primary().Addr()}
		for _, r := range sh.Replicas() {
			s.Replicas = append(s.Replicas, r.Addr())
		}
		specs = append(specs, s)
	}
	o := DefaultOptions()
	o.User = localdb.AppUser
	o.HealthCheckInterval = 100 * time.Millisecond
	o.Logger = localdb.TestLogger(t)
	if mut != nil {
		mut(&o)
	}
	c, err := NewCluster(specs, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func exec(t *testing.T, p *Pool, sql, db string, st *State) string {
	t.Helper()
	c, err := p.Get(context.Background(), st)
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	defer p.Put(c)
	res, _, err := c.Exec(context.Background(), sql, ExecOptions{DB: db, State: st})
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	if len(res.Rows) == 0 {
		return ""
	}
	return res.Rows[0][len(res.Rows[0])-1].ToString()
}

// TestPoolSessionState checks that a connection gets a session's database
// and variables before its statement, and that a second statement of the
// same state sends no SET at all (Com_set_option does not move).
func TestPoolSessionState(t *testing.T) {
	topo := localdb.StartForTest(t, localdb.TestConfig(1, 0))
	c := testCluster(t, topo, func(o *Options) { o.MaxOpen = 1 })
	p := c.Shard("s0").Primary
	if err := topo.Shards()[0].Primary().Exec(context.Background(), "CREATE DATABASE app"); err != nil {
		t.Fatal(err)
	}
	st := c.States.With(nil, "sql_mode", "@@session.sql_mode = 'ANSI_QUOTES'")
	if got := exec(t, p, "SELECT @@session.sql_mode", "app", st); got != "ANSI_QUOTES" {
		t.Fatalf("sql_mode %q", got)
	}
	if got := exec(t, p, "SELECT DATABASE()", "app", st); got != "app" {
		t.Fatalf("database %q", got)
	}
	sets := exec(t, p, "SHOW SESSION STATUS LIKE 'Com_set_option'", "app", st)
	again := exec(t, p, "SHOW SESSION STATUS LIKE 'Com_set_option'", "app", st)
	if sets != again {
		t.Errorf("same state sent SET again: Com_set_option %s -> %s", sets, again)
	}
	// Another session with default state gets the server's default back.
	if got := exec(t, p, "SELECT @@session.sql_mode", "app", nil); strings.Contains(got, "ANSI_QUOTES") {
		t.Errorf("state leaked to a default session: %q", got)
	}
	names := c.States.With(nil, NamesVar, "NAMES 'latin1'")
	if got := exec(t, p, "SELECT @@character_set_client", "", names); got != "latin1" {
		t.Errorf("names: %q", got)
	}
	if got := exec(t, p, "SELECT @@character_set_client", "", nil); got != "utf8mb4" {
		t.Errorf("names not reset: %q", got)
	}
	// The one connection carried an explicit character_set_client; the
	// next session's NAMES must hold (the reset went after NAMES, undoing it).
	cp := c.States.With(nil, "character_set_client", "@@session.character_set_client = 'cp1251'")
	if got := exec(t, p, "SELECT @@character_set_client", "", cp); got != "cp1251" {
		t.Errorf("character_set_client: %q", got)
	}
	if got := exec(t, p, "SELECT CONCAT(@@character_set_client, ',', @@character_set_connection, ',', @@character_set_results)", "", names); got != "latin1,latin1,latin1" {
		t.Errorf("names after an explicit character_set_client: %q", got)
	}
	if got := exec(t, p, "SELECT CONCAT(@@character_set_client, ',', @@character_set_results)", "", nil); got != "utf8mb4,utf8mb4" {
		t.Errorf("default after names: %q", got)
	}
}

// TestPoolDeadServer kills the server: statements fail at once with the
// server named in a MySQL connection error, and the pool recovers when the
// server is back.
func TestPoolDeadServer(t *testing.T) {
	topo := localdb.StartForTest(t, localdb.TestConfig(1, 0))
	c := testCluster(t, topo, nil)
	p := c.Shard("s0").Primary
	exec(t, p, "SELECT 1", "", nil)
	srv := topo.Shards()[0].Primary()
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for i := 0; i < 3; i++ {
		conn, err := p.Get(context.Background(), nil)
		if err == nil {
			_, _, err = conn.Exec(context.Background(), "SELECT 1", ExecOptions{})
			p.Put(conn)
		}
		var se *sqlerror.SQLError
		if !errors.As(err, &se) || (se.Number() != sqlerror.CRConnHostError && se.Number() != sqlerror.CRServerLost && se.Number() != sqlerror.CRServerGone) {
			t.Fatalf("dead server: got %v, want a 2003/2013 error", err)
		}
		if !strings.Contains(se.Message, srv.Addr()) {
			t.Errorf("error does not name the server: %v", se.Message)
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("errors took %v", d)
	}
	waitUntil(t, 2*time.Second, func() bool { return !p.Healthy() })
	if err := topo.Restart(context.Background(), srv); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, p.Healthy)
	if got := exec(t, p, "SELECT 41+1", "", nil); got != "42" {
		t.Fatalf("after restart: %q", got)
	}
}

// TestPoolWaitTimeout: with max_open 1 in use, the next Get waits and then
// fails with a clear error; a Put hands the connection to a waiter.
func TestPoolWaitTimeout(t *testing.T) {
	topo := localdb.StartForTest(t, localdb.TestConfig(1, 0))
	c := testCluster(t, topo, func(o *Options) { o.MaxOpen = 1; o.WaitTimeout = 200 * time.Millisecond })
	p := c.Shard("s0").Primary
	held, err := p.Get(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Get(context.Background(), nil)
	var se *sqlerror.SQLError
	if !errors.As(err, &se) || se.Number() != sqlerror.ERConCount || !strings.Contains(se.Message, "max_open 1") {
		t.Fatalf("got %v", err)
	}
	got := make(chan error, 1)
	go func() {
		conn, err := p.Get(context.Background(), nil)
		if err == nil {
			p.Put(conn)
		}
		got <- err
	}()
	time.Sleep(50 * time.Millisecond)
	p.Put(held)
	if err := <-got; err != nil {
		t.Fatalf("waiter: %v", err)
	}
	if s := p.Stats(); s.Waits != 2 || s.Timeouts != 1 || s.InUse != 0 || s.Open != 1 {
		t.Errorf("stats %+v", s)
	}
}

// TestInterrupt aborts a long statement from another goroutine.
func TestInterrupt(t *testing.T) {
	topo := localdb.StartForTest(t, localdb.TestConfig(1, 0))
	c := testCluster(t, topo, nil)
	p := c.Shard("s0").Primary
	conn, err := p.Get(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(100*time.Millisecond, conn.Interrupt)
	start := time.Now()
	_, _, err = conn.Exec(context.Background(), "SELECT SLEEP(5)", ExecOptions{})
	p.Put(conn)
	if err == nil || time.Since(start) > 2*time.Second {
		t.Fatalf("interrupt: %v after %v", err, time.Since(start))
	}
	if got := exec(t, p, "SELECT 1", "", nil); got != "1" {
		t.Fatalf("pool after interrupt: %q", got)
	}
}

func waitUntil(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
