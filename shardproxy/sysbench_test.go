package shardproxy_test

import (
	"context"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strata-db/strata/shardproxy/config"
	"github.com/strata-db/strata/shardproxy/proxytest"
	"github.com/strata-db/strata/txcoord"
)

// TestSysbench runs sysbench through the proxy with its tables sharded by
// id over two shards (examples/sysbench.yaml's layout): prepare, then
// oltp_read_write, oltp_point_select (both --db-ps-mode) and oltp_insert,
// each to completion with zero errors. oltp_read_write runs sysbench's own
// transactions: each touches random ids on both shards, so it commits in
// two phases through a coordinator. One thread: with several, two
// transactions can lock rows on two shards in opposite orders, a deadlock
// no single server sees, which ends only at innodb_lock_wait_timeout (an
// error sysbench counts; the README says so under cross-shard transactions).
func TestSysbench(t *testing.T) {
	bin, err := exec.LookPath("sysbench")
	if err != nil {
		t.Fatalf("sysbench not installed (make deps installs it): %v", err)
	}
	coord := txcoord.NewXATestGroup(t, 1).GRPCAddrs()
	p := proxytest.Start(t, proxytest.SharedTopology(t), func(c *config.Config) {
		c.Transactions.Coordinator = coord
		c.Databases["sbtest"] = &config.Database{Sharded: true, Tables: map[string]*config.Table{
			"sbtest{1..8}": {Kind: "sharded", Column: "id", Function: "hash"},
		}}
	})
	host, port, _ := net.SplitHostPort(p.Server.Addr())
	common := []string{"--db-driver=mysql", "--mysql-host=" + host, "--mysql-port=" + port, "--mysql-user=root",
		"--mysql-db=sbtest", "--tables=2", "--table-size=2000", "--auto-inc=off"}
	run := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, append(args, common...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("sysbench %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run("oltp_common", "cleanup")
	run("oltp_read_write", "prepare")
	// The rows spread over both shards.
	for _, sh := range p.Topo.Shards() {
		db, err := sh.Primary().Open("sbtest")
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := db.QueryRow("SELECT COUNT(*) FROM sbtest1").Scan(&n); err != nil {
			t.Fatal(err)
		}
		db.Close()
		if n < 500 || n > 1500 {
			t.Errorf("shard %s holds %d of 2000 rows of sbtest1", sh.Name, n)
		}
	}
	workloads := [][]string{
		{"oltp_read_write", "run", "--threads=1", "--time=5", "--db-ps-mode=auto"},
		{"oltp_read_write", "run", "--threads=1", "--time=5", "--db-ps-mode=disable"},
		{"oltp_point_select", "run", "--threads=4", "--time=4", "--db-ps-mode=auto"},
		{"oltp_point_select", "run", "--threads=4", "--time=4", "--db-ps-mode=disable"},
		{"oltp_insert", "run", "--threads=4", "--time=4"},
	}
	queries := regexp.MustCompile(`queries:\s+(\d+)`)
	errs := regexp.MustCompile(`ignored errors:\s+(\d+)`)
	for _, w := range workloads {
		lane := p.Server.Stats().FastLaneHits
		out := run(w...)
		lane = p.Server.Stats().FastLaneHits - lane
		q, e := queries.FindStringSubmatch(out), errs.FindStringSubmatch(out)
		if q == nil || e == nil || q[1] == "0" {
			t.Fatalf("%v: no result:\n%s", w, out)
		}
		if e[1] != "0" || strings.Contains(out, "FATAL") {
			t.Errorf("%v: %s errors:\n%s", w, e[1], out)
		}
		// Point selects (both ps modes) are what the fast lane is for.
		if n, _ := strconv.Atoi(q[1]); w[0] == "oltp_point_select" && int(lane) < n/2 {
			t.Errorf("%v: %d of %d queries took the fast lane", w, lane, n)
		}
		t.Logf("%s: %s queries, %s errors, %d in the fast lane", strings.Join(w, " "), q[1], e[1], lane)
	}
	run("oltp_common", "cleanup")
}
