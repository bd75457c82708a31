package e2e

import (
	"container/list"
	"database/sql"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
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
// WHERE id=?) with Zipf keys over rows 1..rows from threads connections
// for d, and returns the rate. Thread i draws its keys from seed+i: a run
// that passes the same seed replays the same streams. Text: the client writes the key into the
// statement (COM_QUERY); prepared: each connection prepares the statement
// once and executes it (COM_STMT_EXECUTE, binary rows), as sysbench does
// by default.
func pointSelects(t *testing.T, dsn string, z *zipf.Zipf, seed uint64, threads int, d time.Duration, prepared bool) float64 {
	t.Helper()
	db, err := sql.Open("mysql", dsn+"?interpolateParams="+strconv.FormatBool(!prepared))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(threads)
	db.SetMaxIdleConns(threads)
	const q = "SELECT c FROM sbtest1 WHERE id=?"
	var stmt *sql.Stmt
	if prepared {
		if stmt, err = db.Prepare(q); err != nil {
			t.Fatal(err)
		}
		defer stmt.Close()
	}
	var n atomic.Int64
	var wg sync.WaitGroup
	stop := time.Now().Add(d)
	for i := range threads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			z := z.Clone(seed + uint64(i))
			var c string
			for time.Now().Before(stop) {
				var row *sql.Row
				if prepared {
					row = stmt.QueryRow(z.Next())
				} else {
					row = db.QueryRow(q, z.Next())
				}
				if err := row.Scan(&c); err != nil {
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
func lruRatio(z *zipf.Zipf, budget, entry int64, lookups int) float64 {
	l, m, used := list.New(), map[int]*list.Element{}, int64(0)
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

// cacheCounts reads SHOW STRATA CACHE's first row: entries, bytes,
// budget, hits, misses.
func cacheCounts(p *proxy) (entries, bytes, maxBytes int64, hits, misses float64) {
	row := p.srv.RowCache().ShowCache().Rows[0]
	entries, _ = strconv.ParseInt(row[2].ToString(), 10, 64)
	bytes, _ = strconv.ParseInt(row[3].ToString(), 10, 64)
	maxBytes, _ = strconv.ParseInt(row[4].ToString(), 10, 64)
	hits, _ = strconv.ParseFloat(row[6].ToString(), 64)
	misses, _ = strconv.ParseFloat(row[9].ToString(), 64)
	return
}

// selfCPU is this process's CPU time so far (user + system, all threads).
func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU is process pid's CPU time so far, from /proc (clock ticks of
// 10 ms: fine over seconds).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	// Fields 14 and 15 of the line (utime, stime); f[0] is field 3.
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+st) * 10 * time.Millisecond
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// TestCacheBenchmark compares Zipf (s = 1.01) point selects through the
// proxy with the cache, without it, and direct to MariaDB, in one run, in
// text and prepared mode; the cache's hit ratio from cold against an LRU
// of the same budget; and the process's RSS growth against the budget.
// STRATA_CACHE_BENCH=1 to run it; the figures depend on the machine (the
// client, the proxy and MariaDB share its cores).
//
// First the cached proxy runs alone from cold for the phase's duration:
// that phase gives the hit ratio against the LRU and warms the cache.
// Then rounds interleave the three (direct, uncached, cached) for each
// protocol, with the same key streams, so that a change in the machine's
// load touches all three alike; rates are medians over the rounds, ratios
// the medians of each round's ratios.
func TestCacheBenchmark(t *testing.T) {
	if os.Getenv("STRATA_CACHE_BENCH") == "" {
		t.Skip("STRATA_CACHE_BENCH=1 runs the cache benchmark")
	}
	rows, threads, rounds := 100_000, 8, 3
	dur := 10 * time.Second
	if s := os.Getenv("STRATA_CACHE_BENCH_SECONDS"); s != "" {
		n, _ := strconv.Atoi(s)
		dur = time.Duration(n) * time.Second
	}
	if s := os.Getenv("STRATA_CACHE_BENCH_ROWS"); s != "" {
		rows, _ = strconv.Atoi(s)
	}
	if s := os.Getenv("STRATA_CACHE_BENCH_ROUNDS"); s != "" {
		rounds, _ = strconv.Atoi(s)
	}
	if s := os.Getenv("STRATA_CACHE_BENCH_THREADS"); s != "" {
		threads, _ = strconv.Atoi(s)
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
	z := zipf.New(1.01, rows, 1)
	plain := mk(false)
	direct := fmt.Sprintf("%s@tcp(%s)/sbtest", localdb.AppUser, prim.Addr())
	via := func(p *proxy) string { return fmt.Sprintf("root@tcp(%s)/sbtest", p.srv.Addr()) }

	rssBefore := rssBytes()
	cached := mk(true)
	coldQPS := pointSelects(t, via(cached), z, 1, threads, dur, false)
	entries, bytes, maxBytes, hits, misses := cacheCounts(cached)
	rssAfter := rssBytes()
	ratio := hits / (hits + misses)
	// The LRU sees as many lookups, from cold, as the cache did.
	lru := lruRatio(z.Clone(99), maxBytes, bytes/max(entries, 1), int(hits+misses))

	type series struct {
		direct, plain, cached, plainX, cachedX []float64
		// CPU per query (µs): this process (client, proxies) and MariaDB.
		selfCPU, dbCPU [3][]float64
	}
	var res [2]series
	dbPid := prim.Pid()
	for r := range rounds {
		for proto := range res {
			// The three targets get the same key streams, and each round
			// new ones (replaying the cold phase's would flatter the cache).
			prep, s, seed := proto == 1, &res[proto], uint64(1000*(1+2*r+proto))
			var rate [3]float64
			for i, dsn := range []string{direct, via(plain), via(cached)} {
				self, db := selfCPU(), procCPU(dbPid)
				rate[i] = pointSelects(t, dsn, z, seed, threads, dur, prep)
				n := rate[i] * dur.Seconds()
				s.selfCPU[i] = append(s.selfCPU[i], float64(selfCPU()-self)/float64(time.Microsecond)/n)
				s.dbCPU[i] = append(s.dbCPU[i], float64(procCPU(dbPid)-db)/float64(time.Microsecond)/n)
			}
			d, p, c := rate[0], rate[1], rate[2]
			s.direct, s.plain, s.cached = append(s.direct, d), append(s.plain, p), append(s.cached, c)
			s.plainX, s.cachedX = append(s.plainX, p/d), append(s.cachedX, c/d)
		}
	}
	_, _, _, hits2, misses2 := cacheCounts(cached)
	t.Logf("Zipf s=1.01 point selects over %d rows, %d threads, client+proxy+MariaDB on one machine (%d cores, shared):", rows, threads, runtime.NumCPU())
	t.Logf("  cold cache (cached proxy alone, %v, text): %.0f/s; hit ratio %.3f over %.0f lookups; an LRU of the same bytes, same lookups from cold: %.3f; %d entries, %d bytes accounted of %d",
		dur, coldQPS, ratio, hits+misses, lru, entries, bytes, maxBytes)
	t.Logf("  warm, %d interleaved rounds of %v each (median rate; median of the rounds' ratios to direct); hit ratio over the rounds %.3f:", rounds, dur, (hits2-hits)/(hits2-hits+misses2-misses))
	for proto, s := range res {
		name := "text"
		if proto == 1 {
			name = "prepared"
		}
		t.Logf("    %-8s direct MariaDB %.0f/s; proxy without cache %.0f/s (%.2fx direct); proxy with cache %.0f/s (%.2fx direct; rounds %s)",
			name, median(s.direct), median(s.plain), median(s.plainX), median(s.cached), median(s.cachedX), fmtRatios(s.cachedX))
		// CPU time per query does not depend on how the machine's load
		// shares the cores out: what each target costs, and the rate the
		// cores would give if the queries had them to themselves.
		var total [3]float64
		for i := range total {
			total[i] = median(s.selfCPU[i]) + median(s.dbCPU[i])
		}
		t.Logf("    %-8s CPU µs per query (client process incl. proxy + MariaDB): direct %.1f + %.1f; without cache %.1f + %.1f; with cache %.1f + %.1f; CPU-bound ratio to direct: without cache %.2fx, with cache %.2fx",
			name, median(s.selfCPU[0]), median(s.dbCPU[0]), median(s.selfCPU[1]), median(s.dbCPU[1]), median(s.selfCPU[2]), median(s.dbCPU[2]), total[0]/total[1], total[0]/total[2])
	}
	t.Logf("  process RSS grew %.1f MiB while the cached proxy started and ran cold (budget %d MiB; includes the client)",
		float64(rssAfter-rssBefore)/(1<<20), maxBytes>>20)
}

func fmtRatios(v []float64) string {
	var b strings.Builder
	for i, x := range v {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%.2f", x)
	}
	return b.String()
}
