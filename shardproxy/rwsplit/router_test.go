package rwsplit

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-db/strata/localdb"
	"github.com/strata-db/strata/shardproxy/backend"
	"github.com/strata-db/strata/shardproxy/config"
	"github.com/strata-db/strata/shardproxy/fleet"
)

func TestHintAndAdminParsing(t *testing.T) {
	for sql, want := range map[string]bool{
		"SELECT /*+ strata:primary */ * FROM t":   true,
		"/*+strata:primary*/ SELECT 1":            true,
		"SELECT 'strata:primary' FROM t":          false,
		"SELECT /* strata:primary */ 1":           false,
		"SELECT * FROM t /*+  strata:primary  */": true,
	} {
		if got := HasPrimaryHint(sql); got != want {
			t.Errorf("HasPrimaryHint(%q) = %v", sql, got)
		}
	}
	for sql, want := range map[string]bool{
		"SHOW STRATA SERVERS":                  true,
		"  /* x */ strata switchover shard s0": true,
		"show strata servers;":                 true,
		"SHOW TABLES":                          false,
		"SELECT strata FROM t":                 false,
	} {
		if got := IsAdminStatement(sql); got != want {
			t.Errorf("IsAdminStatement(%q) = %v", sql, got)
		}
	}
	if _, err := ParseConsistency("'eventual'"); err != nil {
		t.Error(err)
	}
	if _, err := ParseConsistency("maybe"); err == nil || !strings.Contains(err.Error(), "1231") {
		t.Errorf("bad consistency: %v", err)
	}
	r := &Router{}
	for _, bad := range []string{"STRATA SWITCHOVER s0", "STRATA SWITCHOVER SHARD s0 TO", "SHOW STRATA NOTHING", "STRATA DANCE"} {
		if _, err := r.Handle(context.Background(), bad); err == nil || !strings.Contains(err.Error(), "1064") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// proxyConfig is a proxy config for a localdb topology, with read/write
// splitting on.
func proxyConfig(topo *localdb.Topology) *config.Config {
	cfg := config.DefaultConfig()
	for _, sh := range topo.Shards() {
		s := config.Shard{Name: sh.Name, Primary: sh.Primary().Addr()}
		for _, r := range sh.Replicas() {
			s.Replicas = append(s.Replicas, r.Addr())
		}
		cfg.Shards = append(cfg.Shards, s)
	}
	cfg.ReadWrite.Enabled = true
	return cfg
}

func startRouter(t *testing.T, cfg *config.Config) (*Router, *backend.Cluster) {
	t.Helper()
	var specs []backend.ShardSpec
	for _, s := range cfg.Shards {
		specs = append(specs, backend.ShardSpec{Name: s.Name, Primary: s.Primary, Replicas: s.Replicas})
	}
	opts := backend.DefaultOptions()
	c, err := backend.NewCluster(specs, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	def, err := fleet.ParseConsistency(cfg.ReadWrite.Consistency)
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(FleetConfig(cfg), def, prometheus.NewRegistry(), localdb.TestLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Bind(c); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	c.SetRouter(r)
	return r, c
}

// run routes and runs one statement as the proxy does.
func run(ctx context.Context, c *backend.Cluster, h *backend.RouteHint, read bool, sql string) (string, string, error) {
	tg, err := c.Route(ctx, "s0", read, h)
	if err != nil {
		return "", "", err
	}
	conn, err := tg.Pool.Get(ctx, nil)
	if err != nil {
		tg.Done(err)
		return "", "", err
	}
	res, _, err := conn.Exec(context.Background(), sql, backend.ExecOptions{DB: "app", State: conn.State(), Timeout: 10 * time.Second})
	tg.Pool.Put(conn)
	tg.Done(err)
	if err != nil {
		return "", tg.Pool.Addr, err
	}
	if len(res.Rows) == 1 {
		return res.Rows[0][0].ToString(), tg.Pool.Addr, nil
	}
	return "", tg.Pool.Addr, nil
}

// TestReadYourWrites: 16 sessions each update their own row and read it
// back, many times, with one replica 1 s behind (MASTER_DELAY). In session
// consistency no read is stale; in eventual consistency some are (so the
// check can fail).
func TestReadYourWrites(t *testing.T) {
	topo := localdb.StartForTest(t, localdb.TestConfig(1, 2))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sh := topo.Shards()[0]
	p, slow := sh.Primary(), sh.Replicas()[0]
	if err := p.Exec(ctx, "CREATE DATABASE app", "CREATE TABLE app.kv (id INT PRIMARY KEY, v INT NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 16; i++ {
		if err := p.Exec(ctx, fmt.Sprintf("INSERT INTO app.kv VALUES (%d, 0)", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := topo.WaitReplicated(ctx); err != nil {
		t.Fatal(err)
	}
	if err := topo.SetReplicationDelay(ctx, slow, time.Second); err != nil {
		t.Fatal(err)
	}
	cfg := proxyConfig(topo)
	cfg.ReadWrite.MaxLag = 5 * time.Second // the delayed replica stays in rotation
	r, c := startRouter(t, cfg)
	time.Sleep(1500 * time.Millisecond) // lag settles at ~1 s

	const sessions, rounds = 16, 150
	for _, level := range []fleet.Consistency{fleet.Session, fleet.Eventual} {
		var stale, reads, onReplica atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, sessions)
		for s := 0; s < sessions; s++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				h := &backend.RouteHint{Consistency: string(level)}
				for i := 1; i <= rounds; i++ {
					want := fmt.Sprint(i + 1000*len(level)) // differs between the two runs
					if _, _, err := run(ctx, c, h, false, fmt.Sprintf("UPDATE kv SET v = %s WHERE id = %d", want, s)); err != nil {
						errs <- err
						return
					}
					got, addr, err := run(ctx, c, h, true, fmt.Sprintf("SELECT v FROM kv WHERE id = %d", s))
					if err != nil {
						errs <- err
						return
					}
					reads.Add(1)
					if addr != p.Addr() {
						onReplica.Add(1)
					}
					if got != want {
						stale.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("%s: %v", level, err)
		}
		t.Logf("%s: %d write-then-read pairs, %d reads on replicas, %d stale", level, reads.Load(), onReplica.Load(), stale.Load())
		switch level {
		case fleet.Session:
			if stale.Load() != 0 {
				t.Errorf("session consistency: %d stale reads", stale.Load())
			}
			if onReplica.Load() == 0 {
				t.Errorf("session consistency sent every read to the primary")
			}
		case fleet.Eventual:
			if stale.Load() == 0 {
				t.Errorf("eventual consistency saw no stale read with a replica 1 s behind: the test cannot tell")
			}
		}
	}
	for _, st := range r.Fleet().Status() {
		t.Logf("%s %s lag=%v reads=%d writes=%d", st.Name, st.Role, st.Lag, st.Reads, st.Writes)
	}
}

// TestSessionReadPrimaryDown: a session that wrote on a shard whose primary
// then stops answering (SIGSTOP) gets its next read refused at once, with
// an error naming the shard, once the primary is ejected: the position its
// read needs cannot be read, and waiting for it held the read for the
// position query's timeout, and the proxy's retry for another.
func TestSessionReadPrimaryDown(t *testing.T) {
	topo := localdb.StartForTest(t, localdb.TestConfig(1, 1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := topo.Shards()[0].Primary()
	if err := p.Exec(ctx, "CREATE DATABASE app", "CREATE TABLE app.kv (id INT PRIMARY KEY, v INT NOT NULL)", "INSERT INTO app.kv VALUES (1, 0)"); err != nil {
		t.Fatal(err)
	}
	r, c := startRouter(t, proxyConfig(topo))
	h := &backend.RouteHint{}
	if _, _, err := run(ctx, c, h, false, "UPDATE kv SET v = 1 WHERE id = 1"); err != nil {
		t.Fatal(err)
	}
	if err := p.Pause(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Resume() })
	deadline := time.Now().Add(5 * time.Second)
	for primaryUp(r, p.Name) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	start := time.Now()
	_, _, err := run(ctx, c, h, true, "SELECT v FROM kv WHERE id = 1")
	took := time.Since(start)
	t.Logf("session read after a write, primary stopped and ejected: %v after %v", err, took)
	if err == nil || !strings.Contains(err.Error(), "shard s0") || took > time.Second {
		t.Fatalf("read: %v after %v, want an error naming the shard at once", err, took)
	}
	// A session that has not written there still reads from the replica.
	if _, _, err := run(ctx, c, &backend.RouteHint{}, true, "SELECT v FROM kv WHERE id = 1"); err != nil {
		t.Fatalf("read of a session without a write: %v", err)
	}
}

func primaryUp(r *Router, name string) bool {
	for _, st := range r.Fleet().Status() {
		if st.Name == name {
			return st.Healthy
		}
	}
	return false
}

// TestSessionSeesWritesOfOtherLevels: a session that wrote in eventual (or
// strong) consistency and then turns to session consistency reads its
// write: read-your-writes covers every write of the session, not only
// those made while it was set.
func TestSessionSeesWritesOfOtherLevels(t *testing.T) {
	topo := localdb.StartForTest(t, localdb.TestConfig(1, 1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sh := topo.Shards()[0]
	p, replica := sh.Primary(), sh.Replicas()[0]
	if err := p.Exec(ctx, "CREATE DATABASE app", "CREATE TABLE app.kv (id INT PRIMARY KEY, v INT NOT NULL)", "INSERT INTO app.kv VALUES (1, 0)"); err != nil {
		t.Fatal(err)
	}
	if err := topo.WaitReplicated(ctx); err != nil {
		t.Fatal(err)
	}
	if err := topo.SetReplicationDelay(ctx, replica, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	cfg := proxyConfig(topo)
	cfg.ReadWrite.MaxLag = 10 * time.Second // the delayed replica stays in rotation
	_, c := startRouter(t, cfg)
	for i, level := range []string{"eventual", "strong"} {
		h := &backend.RouteHint{Consistency: level}
		want := fmt.Sprint(i + 1)
		if _, _, err := run(ctx, c, h, false, "UPDATE kv SET v = "+want+" WHERE id = 1"); err != nil {
			t.Fatal(err)
		}
		h.Consistency = "session"
		got, addr, err := run(ctx, c, h, true, "SELECT v FROM kv WHERE id = 1")
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("write in %s, then a read in session consistency on %s: v=%s, want %s (stale)", level, addr, got, want)
		}
	}
}

// TestPosFetcherRetriesAfterError: a failed read of the primary's position
// is not served again to later readers: they read it anew.
func TestPosFetcherRetriesAfterError(t *testing.T) {
	var pf posFetcher
	wrote := time.Now()
	calls := 0
	failing := func() (fleet.Position, error) { calls++; return nil, fmt.Errorf("transient") }
	if _, err := pf.get(wrote, failing); err == nil {
		t.Fatal("want the fetch's error")
	}
	pos, _ := fleet.ParsePosition("0-1-5")
	got, err := pf.get(wrote, func() (fleet.Position, error) { calls++; return pos, nil })
	if err != nil || got.String() != "0-1-5" || calls != 2 {
		t.Fatalf("after a failed fetch: %v %v, %d fetches; want a new fetch", got, err, calls)
	}
	// A good read that began after the write is shared.
	got, err = pf.get(wrote, failing)
	if err != nil || got.String() != "0-1-5" || calls != 2 {
		t.Fatalf("after a good fetch: %v %v, %d fetches; want the shared result", got, err, calls)
	}
}
