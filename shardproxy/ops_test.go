package shardproxy_test

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/strata-db/strata/localdb"
	"github.com/strata-db/strata/shardproxy/config"
	"github.com/strata-db/strata/shardproxy/proxytest"
)

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestDeadBackend kills a shard's primary: statements for that shard fail
// at once with a MySQL error naming it, the other shard keeps serving,
// /healthz turns 503 and back, and the pool recovers when the server
// returns. Metrics count per shard.
func TestDeadBackend(t *testing.T) {
	topo := localdb.StartForTest(t, localdb.TestConfig(2, 0))
	p := proxytest.Start(t, topo, func(c *config.Config) {
		c.SlowQueryThreshold = 50 * time.Millisecond
	})
	admin := "http://" + p.Server.AdminAddr()
	db := p.Open(t, p.Demo)
	proxytest.MustExec(t, db, "CREATE TABLE customers (id BIGINT PRIMARY KEY, name VARCHAR(40))")
	a, _, other := idsOnShards(t, p, 1)
	for _, id := range []int64{a, other} {
		proxytest.MustExec(t, db, "INSERT INTO customers (id, name) VALUES (?, 'x')", id)
	}
	if code, body := httpGet(t, admin+"/healthz"); code != 200 || !strings.Contains(body, "ok") {
		t.Fatalf("healthz %d %s", code, body)
	}
	// A slow statement is logged.
	query1(t, db, "SELECT SLEEP(0.1)")

	dead := topo.Shard(shardOf(t, p, a)).Primary()
	if err := dead.Kill(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := db.Exec("UPDATE customers SET name = 'y' WHERE id = ?", a)
	if code := proxytest.SQLErr(err); code != 2003 && code != 2013 && code != 2006 {
		t.Fatalf("write to dead shard: %v", err)
	}
	if !strings.Contains(err.Error(), dead.Addr()) {
		t.Errorf("error does not name the server: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("error took %v", d)
	}
	if got := query1(t, db, "SELECT name FROM customers WHERE id = ?", other); got != "x" {
		t.Errorf("live shard: %q", got)
	}
	waitFor(t, 5*time.Second, func() bool {
		code, _ := httpGet(t, admin+"/healthz")
		return code == 503
	})
	if err := topo.Restart(context.Background(), dead); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() bool {
		_, err := db.Exec("UPDATE customers SET name = 'z' WHERE id = ?", a)
		return err == nil
	})
	waitFor(t, 5*time.Second, func() bool {
		code, _ := httpGet(t, admin+"/healthz")
		return code == 200
	})

	code, metrics := httpGet(t, admin+"/metrics")
	if code != 200 {
		t.Fatal(code)
	}
	for _, want := range []string{
		`strata_proxy_shard_queries_total{shard="s0"}`,
		`strata_proxy_shard_queries_total{shard="s1"}`,
		`strata_proxy_shard_query_errors_total{shard="` + dead.Shard + `"}`,
		`strata_proxy_shard_query_duration_seconds_bucket{shard="s0",le="0.001"}`,
		`strata_proxy_pool_in_use{role="primary",server=`,
		`strata_proxy_pool_idle{role="primary",server=`,
		`strata_proxy_pool_waits_total{role="primary",server=`,
		`strata_proxy_statements_total{kind="select"}`,
		`strata_proxy_plan_cache_hits_total`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// At least the SLEEP: on a loaded machine the CREATE TABLE may be slow
	// too.
	if !regexp.MustCompile(`(?m)^strata_proxy_slow_statements_total [1-9]`).MatchString(metrics) {
		t.Errorf("metrics lack strata_proxy_slow_statements_total >= 1")
	}
	if logs := p.Logs.String(); !strings.Contains(logs, `msg="slow query"`) || !strings.Contains(logs, "SLEEP(0.1)") {
		t.Errorf("no slow query line in the log:\n%s", logs)
	}
	if code, body := httpGet(t, admin+"/debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") {
		t.Errorf("pprof: %d", code)
	}
}

func waitFor(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
