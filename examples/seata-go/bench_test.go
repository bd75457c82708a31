package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestThroughput measures global transactions per second through a 3-node
// group of `strata txcoord` processes: empty ones (GlobalBegin and
// GlobalCommit, no branch) and TCC ones with a branch on each of two
// services. It is a measurement, not a check, so it runs only with
// STRATA_SEATA_BENCH=1:
//
//	cd examples/seata-go && STRATA_SEATA_BENCH=1 go test -run TestThroughput -v -count=1 .
//
// STRATA_SEATA_BENCH_DURATION (default 10s) and STRATA_SEATA_BENCH_C
// (default 64 concurrent transactions) tune it.
func TestThroughput(t *testing.T) {
	if os.Getenv("STRATA_SEATA_BENCH") != "1" {
		t.Skip("set STRATA_SEATA_BENCH=1 to measure")
	}
	dur := envOr("STRATA_SEATA_BENCH_DURATION", "10s")
	conc := envOr("STRATA_SEATA_BENCH_C", "64")
	nodes := startStrataGroup(t)
	var addrs []string
	for _, n := range nodes {
		addrs = append(addrs, n.seata)
	}
	cfg := writeConfig(t, addrs)
	leader(t, nodes, nil)

	r := tmRun(t, cfg, "-mode", "commit", "-duration", dur, "-c", conc)
	t.Logf("empty global transactions: %.0f/s (%d ok, %d failed in %.1fs, %s concurrent)", r.PerSec, r.OK, r.Failed, r.Seconds, conc)

	dir := t.TempDir()
	a := startService(t, cfg, "strata-example-a", filepath.Join(dir, "a.events"))
	b := startService(t, cfg, "strata-example-b", filepath.Join(dir, "b.events"))
	r = tmRun(t, cfg, "-svc", a.url+","+b.url, "-mode", "commit", "-duration", dur, "-c", conc)
	t.Logf("TCC two-branch global transactions: %.0f/s (%d ok, %d failed in %.1fs, %s concurrent)", r.PerSec, r.OK, r.Failed, r.Seconds, conc)
	if len(r.Errors) > 0 {
		t.Logf("errors: %v", r.Errors)
	}
}

func envOr(k, d string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return d
}
