package rwsplit_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-db/strata/localdb"
	"github.com/strata-db/strata/shardproxy"
	"github.com/strata-db/strata/shardproxy/config"
	"github.com/strata-db/strata/shardproxy/proxytest"
)

// These tests run the whole proxy (shardproxy.Server with read/write
// splitting on) over real MariaDB replication from localdb, with real
// clients: go-sql-driver/mysql and sysbench.

type proxy struct {
	srv  *shardproxy.Server
	reg  *prometheus.Registry
	topo *localdb.Topology
}

// startProxy starts a proxy over topo with database app unsharded on s0
// and sbtest likewise, read/write splitting on.
func startProxy(t *testing.T, topo *localdb.Topology, mut func(*config.Config)) *proxy {
	t.Helper()
	kp := proxytest.Start(t, topo, func(c *config.Config) {
		c.AdminListen = "off"
		c.Backend.HealthCheckInterval = config.DefaultConfig().Backend.HealthCheckInterval
		c.Databases = map[string]*config.Database{"app": {Shard: "s0"}, "sbtest": {Shard: "s0"}}
		c.ReadWrite.Enabled = true
		if mut != nil {
			mut(c)
		}
	})
	p := &proxy{srv: kp.Server, reg: kp.Registry, topo: topo}
	p.ready(t)
	return p
}

// ready waits until the fleet sees every server healthy with a known lag.
func (p *proxy) ready(t *testing.T) {
	t.Helper()
	if p.srv.ReadWrite() == nil {
		return
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		ok := true
		for _, s := range p.srv.ReadWrite().Fleet().Status() {
			if !s.Healthy || !s.LagKnown || s.Lag > 300*time.Millisecond {
				ok = false
			}
		}
		if ok {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("fleet not ready: %+v", p.srv.ReadWrite().Fleet().Status())
}

func (p *proxy) open(t *testing.T, db string, conns int) *sql.DB {
	t.Helper()
	// readTimeout: a proxy that never answers fails the test in 30 s with
	// the statement named, not at go test's 10 minute timeout.
	d, err := sql.Open("mysql", fmt.Sprintf("root@tcp(%s)/%s?timeout=5s&readTimeout=30s&writeTimeout=30s", p.srv.Addr(), db))
	if err != nil {
		t.Fatal(err)
	}
	d.SetMaxOpenConns(conns)
	d.SetMaxIdleConns(conns)
	t.Cleanup(func() { d.Close() })
	return d
}

// routed is the proxy's strata_fleet_{reads,writes}_routed_total for a server.
func (p *proxy) routed(t *testing.T, kind, server string) int {
	t.Helper()
	mfs, err := p.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "strata_fleet_"+kind+"_routed_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "server" && l.GetValue() == server {
					return int(m.GetCounter().GetValue())
				}
			}
		}
	}
	return 0
}

// comCounter reads a server's own status counter (Com_select, Com_insert).
func comCounter(t *testing.T, s *localdb.Server, name string) int {
	t.Helper()
	db, err := s.OpenAdmin("")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var k string
	var v int
	if err := db.QueryRow("SHOW GLOBAL STATUS LIKE '"+name+"'").Scan(&k, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func mustExec(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// TestProxySplitsReadsAndWrites: through the proxy, plain reads land on the
// replicas and writes, locking reads, side effects and the hint on the
// primary, counted by the proxy's metrics and by each server's own status
// counters; then a replica delayed past the max lag stops getting reads
// within a second and gets them again after it recovers.
func TestProxySplitsReadsAndWrites(t *testing.T) {
	topo := localdb.StartForTest(t, localdb.TestConfig(1, 2))
	sh := topo.Shards()[0]
	prim, r1, r2 := sh.Primary(), sh.Replicas()[0], sh.Replicas()[1]
	p := startProxy(t, topo, func(c *config.Config) {
		c.ReadWrite.Consistency = "eventual"
		c.ReadWrite.MaxLag = 500 * time.Millisecond
		c.Users = append(c.Users, config.User{Name: "app", Password: "pw"})
		c.ReadWrite.AdminUsers = []string{"root"}
	})
	db := p.open(t, "app", 4)
	mustExec(t, db, "CREATE TABLE t (id INT PRIMARY KEY, v INT)")
	ctx := context.Background()
	if err := topo.WaitReplicated(ctx); err != nil {
		t.Fatal(err)
	}

	const writes, reads = 200, 1000
	names := []string{prim.Name, r1.Name, r2.Name}
	servers := []*localdb.Server{prim, r1, r2}
	selBefore, insBefore, rBefore, wBefore, qBefore := map[string]int{}, map[string]int{}, map[string]int{}, map[string]int{}, map[string]int{}
	for i, s := range servers {
		qBefore[names[i]] = comCounter(t, s, "Questions")
		selBefore[names[i]], insBefore[names[i]] = comCounter(t, s, "Com_select"), comCounter(t, s, "Com_insert")
		rBefore[names[i]], wBefore[names[i]] = p.routed(t, "reads", names[i]), p.routed(t, "writes", names[i])
	}
	start := time.Now()
	for i := 0; i < writes; i++ {
		mustExec(t, db, "INSERT INTO t VALUES (?, ?)", i, i)
	}
	if err := topo.WaitReplicated(ctx); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < reads; i++ {
		var v int
		if err := db.QueryRow("SELECT v FROM t WHERE id = ?", i%writes).Scan(&v); err != nil || v != i%writes {
			t.Fatalf("read %d: %d %v", i, v, err)
		}
	}
	took := time.Since(start)
	// The fleet's own checks are statements too: at most 3 per server per 100 ms.
	checks := int(took/(100*time.Millisecond)+3)*3 + 5
	for i, s := range servers {
		n := names[i]
		sel := comCounter(t, s, "Com_select") - selBefore[n]
		ins := comCounter(t, s, "Com_insert") - insBefore[n]
		rr, ww := p.routed(t, "reads", n)-rBefore[n], p.routed(t, "writes", n)-wBefore[n]
		q := comCounter(t, s, "Questions") - qBefore[n] - 1
		t.Logf("%s (%s): proxy routed %d reads, %d writes; server counted Com_select +%d, Com_insert +%d, Questions +%d", n, s.Role(), rr, ww, sel, ins, q)
		if s == prim {
			if ww != writes || ins != writes || rr != 0 || sel > checks {
				t.Errorf("primary: routed %d writes %d reads, Com_insert +%d Com_select +%d (fleet checks ≤ %d)", ww, rr, ins, sel, checks)
			}
			continue
		}
		// Com_insert counts the rows replication applied; Questions counts
		// only what clients sent: past the SELECTs, only the fleet's checks.
		if ww != 0 || q-sel > checks || rr < reads/4 || sel < rr || sel > rr+checks {
			t.Errorf("replica %s: routed %d reads %d writes, Com_select +%d Questions +%d", n, rr, ww, sel, q)
		}
	}
	if got := p.routed(t, "reads", r1.Name) - rBefore[r1.Name] + p.routed(t, "reads", r2.Name) - rBefore[r2.Name]; got < reads || got > reads+5 {
		// +1 per statement the proxy prepares on a backend for its metadata.
		t.Errorf("reads routed to replicas: %d, want %d", got, reads)
	}

	// Primary-only statements.
	pr := p.routed(t, "reads", prim.Name)
	pw := p.routed(t, "writes", prim.Name)
	for _, q := range []string{
		"SELECT v FROM t WHERE id = 1 FOR UPDATE",
		"SELECT v FROM t WHERE id = 1 LOCK IN SHARE MODE",
		"SELECT GET_LOCK('x', 0)",
		"SELECT /*+ strata:primary */ v FROM t WHERE id = 1",
	} {
		b := p.routed(t, "reads", prim.Name) + p.routed(t, "writes", prim.Name)
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if p.routed(t, "reads", prim.Name)+p.routed(t, "writes", prim.Name) != b+1 {
			t.Errorf("%s: not on the primary", q)
		}
	}
	if got := p.routed(t, "reads", prim.Name) - pr + p.routed(t, "writes", prim.Name) - pw; got != 4 {
		t.Errorf("locking reads, side effects and the hint: %d of 4 on the primary", got)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SET strata_read_consistency = 'sometimes'"); err == nil || !strings.Contains(err.Error(), "1231") {
		t.Errorf("bad consistency: %v", err)
	}
	var level string
	if _, err := conn.ExecContext(ctx, "SET strata_read_consistency = 'strong'"); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRowContext(ctx, "SELECT @@strata_read_consistency").Scan(&level); err != nil || level != "strong" {
		t.Errorf("@@strata_read_consistency = %q, %v", level, err)
	}
	pr = p.routed(t, "reads", prim.Name)
	var v int
	if err := conn.QueryRowContext(ctx, "SELECT v FROM t WHERE id = 3").Scan(&v); err != nil {
		t.Fatal(err)
	}
	if p.routed(t, "reads", prim.Name) != pr+1 {
		t.Error("strong read not on the primary")
	}
	rows, err := db.Query("SHOW STRATA SERVERS")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		n++
	}
	rows.Close()
	if n != 3 {
		t.Errorf("SHOW STRATA SERVERS: %d rows", n)
	}
	appDB, err := sql.Open("mysql", fmt.Sprintf("app:pw@tcp(%s)/app", p.srv.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer appDB.Close()
	if _, err := appDB.Exec("STRATA SWITCHOVER SHARD s0"); err == nil || !strings.Contains(err.Error(), "1227") {
		t.Errorf("switchover by a user not in admin_users: %v", err)
	}
	if _, err := appDB.Exec("SHOW STRATA SERVERS"); err != nil {
		t.Errorf("SHOW STRATA SERVERS by any user: %v", err)
	}

	// Lag past the max: r1 stops getting reads within a second.
	if err := topo.SetReplicationDelay(ctx, r1, 3*time.Second); err != nil {
		t.Fatal(err)
	}
	delayed := time.Now()
	window := func() int { // r1's share of 40 reads
		before := p.routed(t, "reads", r1.Name)
		for i := 0; i < 40; i++ {
			var v int
			if err := db.QueryRow("SELECT v FROM t WHERE id = 1").Scan(&v); err != nil {
				t.Fatal(err)
			}
		}
		return p.routed(t, "reads", r1.Name) - before
	}
	var stopped time.Duration
	for time.Since(delayed) < 5*time.Second {
		if window() == 0 {
			stopped = time.Since(delayed)
			break
		}
	}
	t.Logf("lag: %s delayed 3 s (max lag 500 ms): reads stopped %v after the delay was set", r1.Name, stopped)
	if stopped == 0 || stopped > 1500*time.Millisecond {
		t.Errorf("reads to the lagging replica stopped after %v (want within 1 s of crossing 500 ms)", stopped)
	}
	for i := 0; i < 5; i++ {
		if n := window(); n != 0 {
			t.Fatalf("lagging replica got %d reads", n)
		}
	}
	if err := topo.SetReplicationDelay(ctx, r1, 0); err != nil {
		t.Fatal(err)
	}
	recovered := time.Now()
	back := false
	for time.Since(recovered) < 5*time.Second && !back {
		back = window() > 0
	}
	if !back {
		t.Fatal("replica got no reads after it caught up")
	}
	t.Logf("lag: reads back %v after the delay was removed", time.Since(recovered))
}

// TestProxyReadYourWrites: 16 writers each update their own row and read it
// back through the proxy, 150 times each, with one of the two replicas
// 1 s behind (MASTER_DELAY) and the max lag above it. Read on the writing
// connection: in session consistency no read is stale; in eventual some
// are. Read on another pooled connection: in global consistency none is
// stale; in session (per connection) some are.
func TestProxyReadYourWrites(t *testing.T) {
	topo := localdb.StartForTest(t, localdb.TestConfig(1, 2))
	ctx := context.Background()
	p := startProxy(t, topo, func(c *config.Config) { c.ReadWrite.MaxLag = 5 * time.Second })
	const writers, rounds = 16, 150
	db := p.open(t, "app", 2*writers)
	mustExec(t, db, "CREATE TABLE kv (id INT PRIMARY KEY, v INT NOT NULL)")
	for i := 0; i < writers; i++ {
		mustExec(t, db, "INSERT INTO kv VALUES (?, 0)", i)
	}
	if err := topo.WaitReplicated(ctx); err != nil {
		t.Fatal(err)
	}
	slow := topo.Shards()[0].Replicas()[0]
	if err := topo.SetReplicationDelay(ctx, slow, time.Second); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1200 * time.Millisecond)

	for n, c := range []struct {
		level     string
		conns     int // 1: read where written; 2: read on another connection
		wantStale bool
	}{
		{"session", 1, false},
		{"eventual", 1, true},
		{"global", 2, false},
		{"session", 2, true},
	} {
		var stale, onReplicas atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		replicaReads := func() int {
			n := 0
			for _, r := range topo.Shards()[0].Replicas() {
				n += p.routed(t, "reads", r.Name)
			}
			return n
		}
		before := replicaReads()
		for s := 0; s < writers; s++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				conns := make([]*sql.Conn, c.conns) // one client connection: one proxy session
				for i := range conns {
					conn, err := db.Conn(ctx)
					if err != nil {
						errs <- err
						return
					}
					defer conn.Close()
					if _, err := conn.ExecContext(ctx, "SET strata_read_consistency = '"+c.level+"'"); err != nil {
						errs <- err
						return
					}
					conns[i] = conn
				}
				for i := 1; i <= rounds; i++ {
					want := i + 1000*(n+1)
					if _, err := conns[0].ExecContext(ctx, "UPDATE kv SET v = ? WHERE id = ?", want, s); err != nil {
						errs <- err
						return
					}
					var got int
					if err := conns[c.conns-1].QueryRowContext(ctx, "SELECT v FROM kv WHERE id = ?", s).Scan(&got); err != nil {
						errs <- err
						return
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
			t.Fatalf("%s: %v", c.level, err)
		}
		onReplicas.Store(int64(replicaReads() - before))
		t.Logf("%s, reading on connection %d of the writer: %d write-then-read pairs in %d writers: %d reads on replicas, %d stale", c.level, c.conns, writers*rounds, writers, onReplicas.Load(), stale.Load())
		switch {
		case !c.wantStale && stale.Load() != 0:
			t.Errorf("%s consistency: %d stale reads", c.level, stale.Load())
		case !c.wantStale && onReplicas.Load() == 0:
			t.Errorf("%s consistency sent no read to a replica", c.level)
		case c.wantStale && stale.Load() == 0:
			t.Errorf("%s consistency saw no stale read with a replica 1 s behind: the test cannot fail", c.level)
		}
	}
}

// TestProxySysbenchKillReplica: sysbench oltp_read_only through the proxy
// while one replica is killed with SIGKILL: sysbench sees no error; the
// replica restarted takes reads again.
func TestProxySysbenchKillReplica(t *testing.T) {
	if _, err := exec.LookPath("sysbench"); err != nil {
		t.Fatal("sysbench not installed: make deps installs it")
	}
	topo := localdb.StartForTest(t, localdb.TestConfig(1, 2))
	ctx := context.Background()
	p := startProxy(t, topo, func(c *config.Config) { c.ReadWrite.Consistency = "eventual" })
	host, port, _ := strings.Cut(p.srv.Addr(), ":")
	sb := func(ctx context.Context, args ...string) *exec.Cmd {
		a := append([]string{"oltp_read_only", "--mysql-host=" + host, "--mysql-port=" + port, "--mysql-user=root",
			"--mysql-db=sbtest", "--tables=2", "--table-size=2000"}, args...)
		return exec.CommandContext(ctx, "sysbench", a...)
	}
	if out, err := sb(ctx, "prepare").CombinedOutput(); err != nil {
		t.Fatalf("sysbench prepare: %v\n%s", err, out)
	}
	if err := topo.WaitReplicated(ctx); err != nil {
		t.Fatal(err)
	}
	victim := topo.Shards()[0].Replicas()[0]
	// --skip-trx: sysbench wraps each transaction in BEGIN/COMMIT otherwise,
	// which pins it to the primary.
	cmd := sb(ctx, "run", "--threads=8", "--time=8", "--skip-trx=on")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	before := p.routed(t, "reads", victim.Name)
	if err := victim.Kill(); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed %s after it served %d reads", victim.Name, before)
	err := cmd.Wait()
	res := out.String()
	if err != nil || !strings.Contains(res, "ignored errors:                      0") {
		t.Fatalf("sysbench with a replica killed: %v\n%s", err, res)
	}
	for _, l := range strings.Split(res, "\n") {
		if strings.Contains(l, "queries:") || strings.Contains(l, "errors") || strings.Contains(l, "transactions:") {
			t.Logf("sysbench: %s", strings.TrimSpace(l))
		}
	}
	if err := topo.Restart(ctx, victim); err != nil {
		t.Fatal(err)
	}
	db := p.open(t, "sbtest", 2)
	after := p.routed(t, "reads", victim.Name)
	deadline := time.Now().Add(5 * time.Second)
	for p.routed(t, "reads", victim.Name) == after && time.Now().Before(deadline) {
		var n int
		if err := db.QueryRow("SELECT COUNT(*) FROM sbtest1 WHERE id < 10").Scan(&n); err != nil {
			t.Fatal(err)
		}
	}
	if p.routed(t, "reads", victim.Name) == after {
		t.Fatal("restarted replica takes no reads")
	}
	t.Logf("restarted %s takes reads again", victim.Name)
}

// TestProxySwitchover: 8 sessions insert rows through the proxy while the
// shard switches its primary (STRATA SWITCHOVER): no client error, and every
// acknowledged row is on the new primary and its replicas. Then the new
// primary is killed: writes fail at once with an error naming the shard,
// and eventual reads go on.
func TestProxySwitchover(t *testing.T) {
	topo := localdb.StartForTest(t, localdb.TestConfig(1, 2))
	ctx := context.Background()
	p := startProxy(t, topo, nil)
	db := p.open(t, "app", 16)
	mustExec(t, db, "CREATE TABLE r (id BIGINT PRIMARY KEY, w INT)")
	if err := topo.WaitReplicated(ctx); err != nil {
		t.Fatal(err)
	}
	var next atomic.Int64
	var mu sync.Mutex
	var acked []int64
	var errs []error
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
				id := next.Add(1)
				_, err := db.ExecContext(ctx, "INSERT INTO r VALUES (?, ?)", id, w)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					acked = append(acked, id)
				}
				mu.Unlock()
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	mu.Lock()
	ackedBefore := len(acked)
	mu.Unlock()
	target := topo.Shards()[0].Replicas()[0]
	var shard, oldP, newP, pos, repointed, not string
	var held, took int
	err := db.QueryRowContext(ctx, "STRATA SWITCHOVER SHARD s0 TO "+target.Name).Scan(&shard, &oldP, &newP, &pos, &held, &took, &repointed, &not)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("switchover: %s -> %s at %s, writes held %d ms, took %d ms, repointed %s %s", oldP, newP, pos, held, took, repointed, not)
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d client errors during the switchover, first: %v", len(errs), errs[0])
	}
	if newP != target.Name {
		t.Fatalf("new primary %s", newP)
	}
	t.Logf("%d rows acknowledged, %d of them before the switchover began", len(acked), ackedBefore)
	newDB, err := target.Open("app")
	if err != nil {
		t.Fatal(err)
	}
	defer newDB.Close()
	posNow := ""
	if err := newDB.QueryRow("SELECT @@gtid_binlog_pos").Scan(&posNow); err != nil {
		t.Fatal(err)
	}
	for _, s := range topo.Shards()[0].Servers() {
		if s != target {
			if v, err := s.QueryString(ctx, fmt.Sprintf("SELECT MASTER_GTID_WAIT('%s', 10)", posNow)); err != nil || v != "0" {
				t.Fatalf("%s did not catch up with the new primary: %s %v", s.Name, v, err)
			}
		}
		sdb, _ := s.Open("app")
		var n int
		err := sdb.QueryRow("SELECT COUNT(*) FROM r").Scan(&n)
		sdb.Close()
		if err != nil || n != len(acked) {
			t.Errorf("%s has %d rows, %d acknowledged (%v)", s.Name, n, len(acked), err)
		}
	}

	// Unplanned: the new primary dies.
	if err := target.Kill(); err != nil {
		t.Fatal(err)
	}
	// Ejected within about 0.1 s (connection refused); on a loaded machine
	// later: wait for it, so the write below meets the fleet's error and
	// not the backend's connection error of the moments before.
	deadline := time.Now().Add(5 * time.Second)
	for primaryHealthy(p, target.Name) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	start := time.Now()
	_, err = db.ExecContext(ctx, "INSERT INTO r VALUES (-1, 0)")
	var me *mysql.MySQLError
	if err == nil || !strings.Contains(err.Error(), "shard s0") || time.Since(start) > time.Second {
		t.Fatalf("write with the primary down: %v after %v", err, time.Since(start))
	}
	if errorsAs(err, &me) {
		t.Logf("write with the primary down: error %d after %v: %s", me.Number, time.Since(start).Round(time.Microsecond), me.Message)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SET strata_read_consistency = 'eventual'"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := conn.QueryRowContext(ctx, "SELECT COUNT(*) FROM r").Scan(&n); err != nil || n != len(acked) {
		t.Fatalf("eventual read with the primary down: %d %v", n, err)
	}
}

func primaryHealthy(p *proxy, name string) bool {
	for _, st := range p.srv.ReadWrite().Fleet().Status() {
		if st.Name == name {
			return st.Healthy
		}
	}
	return false
}

func errorsAs(err error, me **mysql.MySQLError) bool {
	e, ok := err.(*mysql.MySQLError)
	if ok {
		*me = e
	}
	return ok
}

// TestProxyPausedReplica: a replica stopped with SIGSTOP while 4 clients
// read: it is ejected within about a second, and the reads already waiting
// on it end then (the proxy closes their connections at the ejection, or
// earlier at query_timeout if that is shorter) and are retried elsewhere, so
// no client sees an error; resumed, it takes reads again. With query_timeout
// 0 nothing but the ejection ends those reads.
func TestProxyPausedReplica(t *testing.T) {
	for _, timeout := range []time.Duration{1500 * time.Millisecond, 0} {
		t.Run(fmt.Sprintf("query_timeout=%v", timeout), func(t *testing.T) { testPausedReplica(t, timeout) })
	}
}

func testPausedReplica(t *testing.T, timeout time.Duration) {
	topo := localdb.StartForTest(t, localdb.TestConfig(1, 2))
	ctx := context.Background()
	p := startProxy(t, topo, func(c *config.Config) {
		c.ReadWrite.Consistency = "eventual"
		c.QueryTimeout = timeout
	})
	db := p.open(t, "app", 4)
	mustExec(t, db, "CREATE TABLE t (id INT PRIMARY KEY)")
	mustExec(t, db, "INSERT INTO t VALUES (1)")
	if err := topo.WaitReplicated(ctx); err != nil {
		t.Fatal(err)
	}
	victim := topo.Shards()[0].Replicas()[0]
	var errs, reads, stuck atomic.Int64
	var slowest atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				var n int
				if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM t").Scan(&n); err != nil {
					errs.Add(1)
					t.Errorf("read: %v", err)
					return
				}
				reads.Add(1)
				d := int64(time.Since(start))
				if d > int64(300*time.Millisecond) {
					stuck.Add(1)
				}
				if d > slowest.Load() {
					slowest.Store(d)
				}
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	if err := victim.Pause(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = victim.Resume() })
	paused := time.Now()
	healthy := func() bool {
		for _, st := range p.srv.ReadWrite().Fleet().Status() {
			if st.Name == victim.Name {
				return st.Healthy
			}
		}
		return false
	}
	for healthy() && time.Since(paused) < 3*time.Second {
		time.Sleep(10 * time.Millisecond)
	}
	ejected := time.Since(paused)
	t.Logf("paused %s ejected after %v", victim.Name, ejected)
	// Long enough that a read still waiting on the paused replica when it
	// resumes is much slower than one ended at the ejection.
	time.Sleep(2500 * time.Millisecond)
	if err := victim.Resume(); err != nil {
		t.Fatal(err)
	}
	before := p.routed(t, "reads", victim.Name)
	deadline := time.Now().Add(5 * time.Second)
	for p.routed(t, "reads", victim.Name) == before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if p.routed(t, "reads", victim.Name) == before {
		t.Error("resumed replica takes no reads")
	}
	t.Logf("%d reads, %d errors, %d slower than 300 ms (on the paused replica), slowest %v (query_timeout %v)",
		reads.Load(), errs.Load(), stuck.Load(), time.Duration(slowest.Load()), timeout)
	if errs.Load() > 0 {
		t.Fatalf("%d client errors with a paused replica", errs.Load())
	}
	if timeout == 0 {
		if stuck.Load() == 0 {
			t.Error("no read waited on the paused replica: the test cannot fail")
		}
		if s := time.Duration(slowest.Load()); s > ejected+time.Second {
			t.Errorf("slowest read %v: reads on the paused replica did not end at its ejection (%v after the pause)", s, ejected)
		}
	}
}

// TestProxySwitchoverOpenTransactions: a transaction open on the old primary
// when a switchover starts either commits within drain_timeout (the
// switchover waits for it, and its row is on the new primary) or, still
// open after it, gets an error at COMMIT (2013: the proxy closes the old
// primary's connections in use at the change of primary; 1290 read_only
// before that) and its row is nowhere: no acknowledged write is lost, none
// half applied.
func TestProxySwitchoverOpenTransactions(t *testing.T) {
	topo := localdb.StartForTest(t, localdb.TestConfig(1, 1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := startProxy(t, topo, func(c *config.Config) { c.ReadWrite.DrainTimeout = 500 * time.Millisecond })
	db := p.open(t, "app", 4)
	mustExec(t, db, "CREATE TABLE tx (id INT PRIMARY KEY)")
	sh := topo.Shards()[0]
	switchover := func(to string) chan error {
		done := make(chan error, 1)
		go func() {
			_, err := db.ExecContext(ctx, "STRATA SWITCHOVER SHARD s0 TO "+to)
			done <- err
		}()
		return done
	}

	// Committed within drain_timeout: waited for, kept.
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("INSERT INTO tx VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	done := switchover(sh.Replicas()[0].Name)
	time.Sleep(200 * time.Millisecond)
	if err := tx.Commit(); err != nil {
		t.Fatalf("COMMIT within drain_timeout: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// Still open after drain_timeout: COMMIT fails, the row is nowhere.
	tx, err = db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("INSERT INTO tx VALUES (2)"); err != nil {
		t.Fatal(err)
	}
	done = switchover(sh.Primary().Name) // back to s0-0
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	err = tx.Commit()
	t.Logf("COMMIT of a transaction open across the switchover: %v", err)
	if err == nil {
		t.Fatal("a transaction left open on the old primary past drain_timeout committed")
	}
	newPrimary, _, _ := p.srv.ReadWrite().Fleet().Primary("s0")
	pos, err := topo.Server(newPrimary).QueryString(ctx, "SELECT @@global.gtid_binlog_pos")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sh.Servers() {
		if s.Name != newPrimary {
			if v, err := s.QueryString(ctx, fmt.Sprintf("SELECT MASTER_GTID_WAIT('%s', 10)", pos)); err != nil || v != "0" {
				t.Fatalf("%s did not catch up: %s %v", s.Name, v, err)
			}
		}
		ids, err := s.QueryString(ctx, "SELECT GROUP_CONCAT(id ORDER BY id) FROM app.tx")
		if err != nil || ids != "1" {
			t.Errorf("%s has rows %q (%v), want exactly the committed one", s.Name, ids, err)
		}
	}
}

// TestProxyFailoverStalledCommit: with query_timeout 0, a COMMIT and 4
// sessions' inserts are sent to a primary stopped with SIGSTOP. When the
// fleet ejects it (about 1 s), the proxy closes their connections: each
// gets an error (2013, outcome unknown), not a wait. STRATA FAILOVER
// promotes the replica and the inserts go on there. The old primary then
// resumes: it may run what it had received before the ejection (its clients
// got errors for those), and is fenced. Every write a client got OK for is
// on the new primary, and the session whose COMMIT failed goes on.
func TestProxyFailoverStalledCommit(t *testing.T) {
	topo := localdb.StartForTest(t, localdb.TestConfig(1, 1))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p := startProxy(t, topo, func(c *config.Config) { c.QueryTimeout = 0 })
	db := p.open(t, "app", 8)
	mustExec(t, db, "CREATE TABLE f (id BIGINT PRIMARY KEY, w INT)")
	if err := topo.WaitReplicated(ctx); err != nil {
		t.Fatal(err)
	}
	sh := topo.Shards()[0]
	old, repl := sh.Primary(), sh.Replicas()[0]
	// Six backend connections to the primary at once, pooled after: the
	// inserts below then find one each and send their statement to the
	// stopped primary (rather than dial it).
	var warm sync.WaitGroup
	for i := 0; i < 6; i++ {
		warm.Add(1)
		go func() {
			defer warm.Done()
			if _, err := db.ExecContext(ctx, "SELECT /*+ strata:primary */ SLEEP(0.2)"); err != nil {
				t.Error(err)
			}
		}()
	}
	warm.Wait()

	txc, err := db.Conn(ctx) // one client connection: one proxy session
	if err != nil {
		t.Fatal(err)
	}
	defer txc.Close()
	for _, q := range []string{"BEGIN", "INSERT INTO f VALUES (0, -1)"} {
		if _, err := txc.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}

	if err := old.Pause(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = old.Resume() })
	paused := time.Now()
	for !stopped(old.Pid()) && time.Since(paused) < 5*time.Second {
		time.Sleep(time.Millisecond)
	}
	commit := make(chan error, 1)
	go func() {
		_, err := txc.ExecContext(ctx, "COMMIT")
		commit <- err
	}()
	var next atomic.Int64
	var mu sync.Mutex
	var acked []int64
	failed := map[int64]error{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				id := next.Add(1)
				_, err := db.ExecContext(ctx, fmt.Sprintf("INSERT INTO f VALUES (%d, %d)", id, w))
				mu.Lock()
				if err == nil {
					acked = append(acked, id)
				} else {
					failed[id] = err
				}
				mu.Unlock()
				if err != nil {
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}
	defer func() {
		// On an early failure: writers waiting on the stopped server end
		// when it resumes.
		_ = old.Resume()
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()

	for primaryHealthy(p, old.Name) && time.Since(paused) < 5*time.Second {
		time.Sleep(10 * time.Millisecond)
	}
	ejected := time.Since(paused)
	if primaryHealthy(p, old.Name) {
		t.Fatal("the stopped primary was not ejected within 5 s")
	}
	t.Logf("primary %s stopped, ejected after %v", old.Name, ejected)
	select {
	case err := <-commit:
		var me *mysql.MySQLError
		if !errorsAs(err, &me) || me.Number != 2013 {
			t.Fatalf("COMMIT on the stopped primary: %v, want error 2013", err)
		}
		t.Logf("COMMIT on the stopped primary: error after %v (ejected after %v): %v", time.Since(paused), ejected, err)
	case <-time.After(3 * time.Second):
		t.Fatalf("COMMIT still waits %v after the primary's ejection (query_timeout 0)", time.Since(paused)-ejected)
	}

	var shard, oldP, newP, pos, repointed, not string
	var held, took int
	if err := db.QueryRowContext(ctx, "STRATA FAILOVER SHARD s0").Scan(&shard, &oldP, &newP, &pos, &held, &took, &repointed, &not); err != nil {
		t.Fatal(err)
	}
	t.Logf("failover: %s -> %s at %s, took %d ms", oldP, newP, pos, took)
	if newP != repl.Name {
		t.Fatalf("new primary %s, want %s", newP, repl.Name)
	}
	mu.Lock()
	ackedAtFailover := len(acked)
	mu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n > ackedAtFailover+20 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}

	// The old primary resumes: what it received before the ejection may
	// run now; the fleet fences it before it takes anything else.
	if err := old.Resume(); err != nil {
		t.Fatal(err)
	}
	resumed := time.Now()
	for time.Since(resumed) < 10*time.Second {
		ro, err := old.QueryString(ctx, "SELECT @@global.read_only")
		if err == nil && ro == "1" && primaryHealthy(p, old.Name) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if ro, err := old.QueryString(ctx, "SELECT @@global.read_only"); err != nil || ro != "1" {
		t.Fatalf("old primary not fenced 10 s after it resumed: read_only %q %v", ro, err)
	}
	t.Logf("old primary resumed and fenced within %v", time.Since(resumed))
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()

	rows := func(s *localdb.Server) map[int64]bool {
		t.Helper()
		sdb, err := s.OpenAdmin("app")
		if err != nil {
			t.Fatal(err)
		}
		defer sdb.Close()
		r, err := sdb.QueryContext(ctx, "SELECT id FROM f")
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		out := map[int64]bool{}
		for r.Next() {
			var id int64
			if err := r.Scan(&id); err != nil {
				t.Fatal(err)
			}
			out[id] = true
		}
		return out
	}
	onNew, onOld := rows(repl), rows(old)
	mu.Lock()
	defer mu.Unlock()
	missing := 0
	for _, id := range acked {
		if !onNew[id] {
			missing++
			if missing <= 5 {
				t.Errorf("row %d acknowledged but not on the new primary %s (on the old one: %v)", id, repl.Name, onOld[id])
			}
		}
	}
	ranOnOld := 0
	for id := range onOld {
		if !onNew[id] {
			ranOnOld++
			if id != 0 && failed[id] == nil {
				t.Errorf("row %d only on the fenced old primary, and its client did not get an error", id)
			}
		}
	}
	t.Logf("%d inserts acknowledged (%d after the failover), %d failed; %d rows only on the old primary, which ran them when it resumed (their clients got errors); %d acknowledged rows missing on the new primary",
		len(acked), len(acked)-ackedAtFailover, len(failed), ranOnOld, missing)
	if len(acked) == ackedAtFailover {
		t.Error("no insert acknowledged after the failover")
	}
	seen := map[string]bool{}
	for _, err := range failed {
		var me *mysql.MySQLError
		if !errorsAs(err, &me) {
			t.Errorf("insert failed with a non-MySQL error: %v", err)
			break
		}
		if msg := fmt.Sprintf("%d %.60s", me.Number, me.Message); !seen[msg] {
			seen[msg] = true
			t.Logf("insert error: %v", err)
		}
	}

	// The session whose COMMIT failed goes on, on the new primary.
	if _, err := txc.ExecContext(ctx, "INSERT INTO f VALUES (-2, 0)"); err != nil {
		t.Fatalf("session after the failed COMMIT: %v", err)
	}
	var n int
	if err := txc.QueryRowContext(ctx, "SELECT COUNT(*) FROM f WHERE id = -2").Scan(&n); err != nil || n != 1 {
		t.Fatalf("session after the failed COMMIT reads %d, %v", n, err)
	}
}

// stopped reports whether every thread of process pid is stopped. SIGSTOP
// stops a process thread by thread, and on a loaded machine a thread may
// still answer a statement some milliseconds after kill returned.
func stopped(pid int) bool {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
	if err != nil || len(tasks) == 0 {
		return false
	}
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			return false
		}
		// The state follows the command name, which ends with the last ')'.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 || i+2 >= len(b) || (b[i+2] != 'T' && b[i+2] != 't') {
			return false
		}
	}
	return true
}
