package shardproxy_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/strata-db/strata/localdb"

	"github.com/strata-db/strata/shardproxy/config"
	"github.com/strata-db/strata/shardproxy/proxytest"
)

// TestPipelineLockedTable: through the proxy, a point select of a table
// that another connection holds locked (LOCK TABLES; DDL's metadata lock
// does the same) waits for it as on MariaDB, and answers once it is
// released, while other sessions' point selects of other tables of that
// server go on: the pipeline they share does not wait for the lock.
func TestPipelineLockedTable(t *testing.T) {
	p := proxytest.Start(t, proxytest.SharedTopology(t), nil)
	db := p.Open(t, p.Demo)
	for _, tb := range []string{"t1", "t2"} {
		proxytest.MustExec(t, db, "CREATE TABLE "+tb+" (id BIGINT PRIMARY KEY, s VARCHAR(20))")
		proxytest.MustExec(t, db, "INSERT INTO "+tb+" (id, s) VALUES (1, '"+tb+"-1')")
	}
	get := func(q string) (string, error) {
		var s string
		err := db.QueryRow(q).Scan(&s)
		return s, err
	}
	// Planned, in the lane's cache, and on a pipeline.
	before := p.Metric(t, "strata_proxy_pool_pipelined_total")
	for i := 0; i < 3; i++ {
		for _, tb := range []string{"t1", "t2"} {
			if s, err := get("SELECT s FROM " + tb + " WHERE id = 1"); err != nil || s != tb+"-1" {
				t.Fatalf("%s: %q, %v", tb, s, err)
			}
		}
	}
	if p.Metric(t, "strata_proxy_pool_pipelined_total") == before {
		t.Fatal("no statement went on a pipeline")
	}

	ctx := context.Background()
	var unlocks []func()
	unlock := func() {
		for _, u := range unlocks {
			u()
		}
		unlocks = nil
	}
	defer unlock()
	for _, sh := range p.Topo.Shards() {
		sdb, err := sh.Primary().Open(p.Demo)
		if err != nil {
			t.Fatal(err)
		}
		conn, err := sdb.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.ExecContext(ctx, "LOCK TABLES t1 WRITE"); err != nil {
			t.Fatal(err)
		}
		unlocks = append(unlocks, func() {
			if _, err := conn.ExecContext(ctx, "UNLOCK TABLES"); err != nil {
				t.Error(err)
			}
			conn.Close()
			sdb.Close()
		})
	}

	type answer struct {
		s   string
		err error
	}
	locked := make(chan answer, 1)
	go func() {
		s, err := get("SELECT s FROM t1 WHERE id = 1")
		locked <- answer{s, err}
	}()
	time.Sleep(200 * time.Millisecond) // on its way, or waiting
	other := make(chan answer, 1)
	go func() {
		s, err := get("SELECT s FROM t2 WHERE id = 1")
		other <- answer{s, err}
	}()
	otherDone := true
	select {
	case a := <-other:
		if a.err != nil || a.s != "t2-1" {
			t.Errorf("the select of the other table: %q, %v", a.s, a.err)
		}
	case <-time.After(3 * time.Second):
		t.Error("the select of the other table waited for the lock of t1")
		otherDone = false
	}
	select {
	case a := <-locked:
		t.Fatalf("the select of the locked table answered before the unlock: %q, %v", a.s, a.err)
	default:
	}
	unlock()
	if a := <-locked; a.err != nil || a.s != "t1-1" {
		t.Errorf("the select of the locked table after the unlock: %q, %v", a.s, a.err)
	}
	if !otherDone {
		<-other
	}
}

// TestPipelineKillReleasesLease: a KILL QUERY that lands while a session's
// point select is routed but not yet on its pipeline answers 1317, and the
// statement's route (a lease of the fleet, which switchovers drain and
// reads balance by) ends: none stays outstanding.
func TestPipelineKillReleasesLease(t *testing.T) {
	p := proxytest.Start(t, proxytest.SharedTopology(t), func(c *config.Config) { c.ReadWrite.Enabled = true })
	db := p.Open(t, p.Demo)
	proxytest.MustExec(t, db, "CREATE TABLE t1 (id BIGINT PRIMARY KEY, s VARCHAR(20))")
	proxytest.MustExec(t, db, "INSERT INTO t1 (id, s) VALUES (1, 'x')")
	ctx := context.Background()
	victim, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer victim.Close()
	var id int64
	if err := victim.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&id); err != nil {
		t.Fatal(err)
	}
	before := p.Metric(t, "strata_proxy_pool_pipelined_total")
	stop := time.Now().Add(2 * time.Second)
	done := make(chan int)
	go func() {
		kills := 0
		for time.Now().Before(stop) {
			if _, err := db.Exec(fmt.Sprintf("KILL QUERY %d", id)); err == nil {
				kills++
			}
			time.Sleep(500 * time.Microsecond)
		}
		done <- kills
	}()
	killed := 0
	for time.Now().Before(stop) {
		var s string
		if err := victim.QueryRowContext(ctx, "SELECT s FROM t1 WHERE id = 1").Scan(&s); err != nil {
			if proxytest.SQLErr(err) != 1317 {
				t.Fatalf("select: %v", err)
			}
			killed++
		}
	}
	kills := <-done
	if killed == 0 {
		t.Fatalf("none of the statements was killed (%d KILL QUERY)", kills)
	}
	if p.Metric(t, "strata_proxy_pool_pipelined_total") == before {
		t.Fatal("no statement went on a pipeline")
	}
	// The fleet's gauge follows its count at each check.
	if mfs, err := p.Registry.Gather(); err != nil || !slices.ContainsFunc(mfs, func(mf *dto.MetricFamily) bool { return mf.GetName() == "strata_fleet_server_outstanding" }) {
		t.Fatalf("no strata_fleet_server_outstanding: %v", err)
	}
	var out float64
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if out = p.Metric(t, "strata_fleet_server_outstanding"); out == 0 {
			break
		}
	}
	if out != 0 {
		t.Errorf("%v leases outstanding after %d KILL QUERY (%d statements killed)", out, kills, killed)
	}
}

// TestPipelineHiccup: point selects that held their pipeline's head a
// while because their server stalled (here: stopped for a moment), not
// because of what they ask, now and then among fast runs, do not take the
// statement off pipelines for good; a run of them in a row does.
func TestPipelineHiccup(t *testing.T) {
	p := proxytest.Start(t, proxytest.SharedTopology(t), nil)
	db := p.Open(t, p.Demo)
	proxytest.MustExec(t, db, "CREATE TABLE t1 (id BIGINT PRIMARY KEY, s VARCHAR(20))")
	proxytest.MustExec(t, db, "INSERT INTO t1 (id, s) VALUES (1, 'x')")
	get := func() {
		t.Helper()
		var s string
		if err := db.QueryRow("SELECT s FROM t1 WHERE id = 1").Scan(&s); err != nil || s != "x" {
			t.Fatalf("point select: %q, %v", s, err)
		}
	}
	piped := func() float64 { return p.Metric(t, "strata_proxy_pool_pipelined_total") }
	for i := 0; i < 3; i++ {
		get()
	}
	before := piped()
	if before == 0 {
		t.Fatal("no statement went on a pipeline")
	}
	// The server holding id 1.
	var srv *localdb.Server
	for _, sh := range p.Topo.Shards() {
		sdb, err := sh.Primary().Open(p.Demo)
		if err != nil {
			t.Fatal(err)
		}
		var n int
		err = sdb.QueryRow("SELECT COUNT(*) FROM t1 WHERE id = 1").Scan(&n)
		sdb.Close()
		if err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			srv = sh.Primary()
		}
	}
	// stall runs the point select while its server is stopped a moment,
	// and reports whether it went on the pipeline.
	stall := func() bool {
		t.Helper()
		if err := srv.Pause(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		sent := piped()
		go func() {
			defer close(done)
			var s string
			if err := db.QueryRow("SELECT s FROM t1 WHERE id = 1").Scan(&s); err != nil || s != "x" {
				t.Errorf("point select across the stall: %q, %v", s, err)
			}
		}()
		// On the pipeline, waiting for the stopped server.
		for deadline := time.Now().Add(time.Second); piped() == sent && time.Now().Before(deadline); {
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(60 * time.Millisecond)
		if err := srv.Resume(); err != nil {
			t.Fatal(err)
		}
		<-done
		return piped() > sent
	}
	// Stalls now and then, among fast runs, over the plan's life.
	for k := 0; k < 6; k++ {
		if !stall() {
			t.Fatalf("stall %d: the statement did not go on the pipeline", k)
		}
		stalled := piped()
		for i := 0; i < 5; i++ {
			get()
		}
		if piped() < stalled+5 {
			t.Fatalf("after %d stalled runs among fast ones the statement no longer goes on a pipeline", k+1)
		}
	}
	// Slow every time: off pipelines after a few in a row (a stall that
	// missed the statement, which the machine's load can make, only
	// delays it).
	for i := 0; stall(); i++ {
		if i == 12 {
			t.Fatal("after 12 stalled runs in a row the statement still goes on a pipeline")
		}
	}
}

// TestPipelineWarnings: a point select with warnings answers as MariaDB
// does (its rows, then SHOW WARNINGS has them: it ran again on a
// connection of its own, as the pipeline's next statement cleared them),
// and one that warns every time stops going on the pipeline first, to be
// run twice for each execution.
func TestPipelineWarnings(t *testing.T) {
	p := proxytest.Start(t, proxytest.SharedTopology(t), nil)
	db := p.Open(t, p.Demo)
	proxytest.MustExec(t, db, "CREATE TABLE t1 (id BIGINT PRIMARY KEY, s VARCHAR(20))")
	proxytest.MustExec(t, db, "INSERT INTO t1 (id, s) VALUES (1, 'x')")
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	piped := func() float64 { return p.Metric(t, "strata_proxy_pool_pipelined_total") }
	before := piped()
	for i := 0; i < 8; i++ {
		var s string
		if err := conn.QueryRowContext(ctx, "SELECT s FROM t1 WHERE id = 1 AND s = 0").Scan(&s); err != nil || s != "x" {
			t.Fatalf("run %d: %q, %v", i, s, err)
		}
		var level, msg string
		var code int
		if err := conn.QueryRowContext(ctx, "SHOW WARNINGS").Scan(&level, &code, &msg); err != nil || code != 1292 {
			t.Fatalf("run %d: SHOW WARNINGS: %d %q, %v", i, code, msg, err)
		}
	}
	if n := piped() - before; n == 0 || n > 4 {
		t.Errorf("%v of 8 runs of a statement that warns every time went on the pipeline, want 1 to 4", n)
	}
}
