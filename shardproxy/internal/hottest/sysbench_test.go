package hottest

import (
	"context"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strata-db/strata/shardproxy/config"
	"github.com/strata-db/strata/txcoord"
)

// TestSysbenchSubTables runs sysbench oltp_read_write to completion, with
// zero errors, through the proxy configured by examples/sysbench-subtables.yaml
// (tables sharded by id over 2 shards x 8 sub-tables), its shard
// addresses replaced by local servers', with sysbench's own transactions
// (each touches ids on both shards, so it commits in two phases through a
// coordinator) on one thread (on several, a deadlock across two shards
// ends only at innodb_lock_wait_timeout: see TestSysbench).
func TestSysbenchSubTables(t *testing.T) {
	bin, err := exec.LookPath("sysbench")
	if err != nil {
		t.Fatalf("sysbench not installed (make deps installs it): %v", err)
	}
	topo := sharedTopo(t)
	cfg, err := config.Load("../../../examples/sysbench-subtables.yaml")
	if err != nil {
		t.Fatal(err)
	}
	useTopo(cfg, topo)
	// A coordinator makes sysbench's transactions, which touch ids on both
	// shards, atomic cross-shard transactions (transaction_mode twopc).
	cfg.Transactions.Coordinator = txcoord.NewXATestGroup(t, 1).GRPCAddrs()
	p := launch(t, cfg)
	addr := p.srv.Addr()
	host, port := splitAddr(t, addr)
	common := []string{"--db-driver=mysql", "--mysql-host=" + host, "--mysql-port=" + port, "--mysql-user=root",
		"--mysql-db=sbtest", "--tables=2", "--table-size=2000", "--auto-inc=off"}
	run := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, bin, append(args, common...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("sysbench %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	ctx := context.Background()
	for _, sh := range topo.Shards() {
		if err := sh.Primary().Exec(ctx, "CREATE DATABASE IF NOT EXISTS sbtest"); err != nil {
			t.Fatal(err)
		}
	}
	run("oltp_common", "cleanup")
	run("oltp_read_write", "prepare")
	// Every shard holds 8 sub-tables of sbtest1, each with some rows, and
	// the table of the logical name is empty.
	total := 0
	for _, sh := range topo.Shards() {
		db, err := sh.Primary().Open("sbtest")
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 8; i++ {
			var n int
			name := "sbtest1_000" + string(rune('0'+i))
			if err := db.QueryRow("SELECT COUNT(*) FROM " + name).Scan(&n); err != nil {
				t.Fatalf("%s on %s: %v", name, sh.Name, err)
			}
			if n < 50 {
				t.Errorf("%s on %s holds %d rows", name, sh.Name, n)
			}
			total += n
		}
		var n int
		if err := db.QueryRow("SELECT COUNT(*) FROM sbtest1").Scan(&n); err != nil || n != 0 {
			t.Errorf("shard %s: table sbtest1 holds %d rows (%v), want it empty: the rows are in its sub-tables", sh.Name, n, err)
		}
		db.Close()
	}
	if total != 2000 {
		t.Errorf("the sub-tables hold %d rows of 2000", total)
	}
	queries := regexp.MustCompile(`queries:\s+(\d+)`)
	errs := regexp.MustCompile(`ignored errors:\s+(\d+)`)
	for _, w := range [][]string{
		{"oltp_read_write", "run", "--threads=1", "--time=4", "--db-ps-mode=auto"},
		{"oltp_read_write", "run", "--threads=1", "--time=3", "--db-ps-mode=disable"},
		{"oltp_point_select", "run", "--threads=2", "--time=2", "--db-ps-mode=auto"},
	} {
		lane := p.srv.Executor().Stats().FastLaneHits
		twoPhase := metricValue(t, p, "strata_xa_commits_total")
		out := run(w...)
		twoPhase = metricValue(t, p, "strata_xa_commits_total") - twoPhase
		lane = p.srv.Executor().Stats().FastLaneHits - lane
		q, e := queries.FindStringSubmatch(out), errs.FindStringSubmatch(out)
		if q == nil || e == nil || q[1] == "0" {
			t.Fatalf("%v: no result:\n%s", w, out)
		}
		if e[1] != "0" || strings.Contains(out, "FATAL") {
			t.Errorf("%v: %s errors:\n%s", w, e[1], out)
		}
		// A point select names one sub-table: the fast lane serves it,
		// prepared on the shard per sub-table.
		if n, _ := strconv.Atoi(q[1]); w[0] == "oltp_point_select" && int(lane) < n/2 {
			t.Errorf("%v: %d of %d queries took the fast lane", w, lane, n)
		}
		// Each sysbench transaction writes ids on both shards: they commit
		// in two phases.
		if w[0] == "oltp_read_write" && twoPhase == 0 {
			t.Errorf("%v: no transaction committed in two phases", w)
		}
		t.Logf("%s: %s queries, %s errors, %d in the fast lane, %.0f two-phase commits", strings.Join(w, " "), q[1], e[1], lane, twoPhase)
	}
	run("oltp_common", "cleanup")
}
