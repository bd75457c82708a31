package e2e

import (
	"container/list"
	"database/sql"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-db/strata/internal/zipf"
	"github.com/strata-db/strata/localdb"
	"github.com/strata-db/strata/shardproxy/config"
)

func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			f := strings.Fields(l)
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n << 10
		}
	}
	return 0
}

// pointSelects runs sysbench-style point selects (SELECT c FROM sbtest1
// WHERE id=?, text protocol) with Zipf keys from threads connections for d,
// and returns the rate.
func pointSelects(t *testing.T, dsn string, rows, threads int, d time.Duration) float64 {
	t.Helper()
	db, err := sql.Open("mysql", dsn+"?interpolateParams=true")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(threads)
	db.SetMaxIdleConns(threads)
	var n atomic.Int64
	var wg sync.WaitGroup
	stop := time.Now().Add(d)
	for i := range threads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			z := zipf.New(1.01, rows, uint64(i+1))
			var c string
			for time.Now().Before(stop) {
				if err := db.QueryRow("SELECT c FROM sbtest1 WHERE id=?", z.Next()).Scan(&c); err != nil {
					t.Errorf("point select: %v", err)
					return
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	return float64(n.Load()) / d.Seconds()
}

// lruRatio replays a Zipf stream through a byte-budgeted LRU.
func lruRatio(rows int, budget, entry int64, lookups int) float64 {
	l, m, used := list.New(), map[int]*list.Element{}, int64(0)
	z := zipf.New(1.01, rows, 99)
	hits := 0
	for range lookups {
		k := z.Next()
		if e, ok := m[k]; ok {
			l.MoveToFront(e)
			hits++
			continue
		}
		m[k] = l.PushFront(k)
		used += entry
		for used > budget {
			e := l.Back()
			l.Remove(e)
			delete(m, e.Value.(int))
			used -= entry
		}
	}
	return float64(hits) / float64(lookups)
}

// TestCacheBenchmark compares, in one run, Zipf (s = 1.01) point selects
// through the proxy with the cache, without it, and direct to MariaDB; the
// cache's hit ratio against an LRU of the same budget; and the process's
// RSS growth against the budget. STRATA_CACHE_BENCH=1 to run it; the
// figures depend on the machine (here: 2 cores shared with other work).
func TestCacheBenchmark(t *testing.T) {
	if os.Getenv("STRATA_CACHE_BENCH") == "" {
		t.Skip("STRATA_CACHE_BENCH=1 runs the cache benchmark")
	}
	rows, threads := 100_000, 8
	dur := 10 * time.Second
	if s := os.Getenv("STRATA_CACHE_BENCH_SECONDS"); s != "" {
		n, _ := strconv.Atoi(s)
		dur = time.Duration(n) * time.Second
	}
	if s := os.Getenv("STRATA_CACHE_BENCH_ROWS"); s != "" {
		rows, _ = strconv.Atoi(s)
	}
	topo := localdb.StartForTest(t, localdb.TestConfig(1, 0))
	prim := topo.Shards()[0].Primary()
	admin, err := prim.OpenAdmin("")
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	mustExec(t, admin, "CREATE DATABASE sbtest")
	mustExec(t, admin, "CREATE TABLE sbtest.sbtest1 (id INT PRIMARY KEY, k INT NOT NULL DEFAULT 0, c CHAR(120) NOT NULL DEFAULT '', pad CHAR(60) NOT NULL DEFAULT '')")
	for b := 0; b < rows; b += 1000 {
		var sb strings.Builder
		sb.WriteString("INSERT INTO sbtest.sbtest1 VALUES ")
		for i := b + 1; i <= min(b+1000, rows); i++ {
			if i > b+1 {
				sb.WriteString(",")
			}
			fmt.Fprintf(&sb, "(%d,%d,'%0120d','%060d')", i, i, i, i)
		}
		mustExec(t, admin, sb.String())
	}
	const budget = "16MiB"
	mk := func(cache bool) *proxy {
		c := proxyConfig(topo, time.Minute)
		c.Databases = map[string]*config.Database{"sbtest": {Shard: topo.Shards()[0].Name}}
		c.Cache.Tables = nil
		if cache {
			c.Cache.Tables = map[string]*config.CacheTable{"sbtest.sbtest1": {TTL: 5 * time.Minute, Memory: budget}}
		}
		return startProxy(t, c)
	}
	plain := mk(false)
	direct := fmt.Sprintf("%s@tcp(%s)/sbtest", localdb.AppUser, prim.Addr())
	via := func(p *proxy) string { return fmt.Sprintf("root@tcp(%s)/sbtest", p.srv.Addr()) }

	directQPS := pointSelects(t, direct, rows, threads, dur)
	plainQPS := pointSelects(t, via(plain), rows, threads, dur)
	rssBefore := rssBytes()
	cached := mk(true)
	cachedQPS := pointSelects(t, via(cached), rows, threads, dur)
	rssAfter := rssBytes()
	row := cached.srv.RowCache().ShowCache().Rows[0]
	entries, _ := strconv.ParseInt(row[2].ToString(), 10, 64)
	bytes, _ := strconv.ParseInt(row[3].ToString(), 10, 64)
	maxBytes, _ := strconv.ParseInt(row[4].ToString(), 10, 64)
	hits, _ := strconv.ParseFloat(row[6].ToString(), 64)
	misses, _ := strconv.ParseFloat(row[9].ToString(), 64)
	ratio := hits / (hits + misses)
	// The LRU sees as many lookups, from cold, as the cache did.
	lru := lruRatio(rows, maxBytes, bytes/max(entries, 1), int(hits+misses))
	t.Logf("Zipf s=1.01 point selects over %d rows, %d threads, %v each, client+proxy+MariaDB on one machine (2 cores shared):", rows, threads, dur)
	t.Logf("  direct MariaDB: %.0f/s; proxy without cache: %.0f/s (%.2fx direct); proxy with cache: %.0f/s (%.2fx direct, %.2fx uncached)",
		directQPS, plainQPS, plainQPS/directQPS, cachedQPS, cachedQPS/directQPS, cachedQPS/plainQPS)
	t.Logf("  cache %s: %d entries, %d bytes accounted; hit ratio %.3f over %.0f lookups from cold; an LRU of the same bytes, same number of lookups from cold: %.3f",
		budget, entries, bytes, ratio, hits+misses, lru)
	t.Logf("  process RSS grew %.1f MiB while the cached proxy started and ran (budget %d MiB; includes the second proxy's pools and the client)",
		float64(rssAfter-rssBefore)/(1<<20), maxBytes>>20)
}
