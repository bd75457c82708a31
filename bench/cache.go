package bench

import (
	"context"
	"database/sql"
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/strata-db/strata/internal/zipf"
	"github.com/strata-db/strata/localdb"
)

// cacheBench: point selects (SELECT c FROM sbtest1 WHERE id=?) with Zipf
// s=1.01 keys over rows rows (default 100,000): MariaDB direct (the
// reference), a proxy without the cache, and a proxy caching the table
// (memory, default 16MiB), over one server. The client is sysbench
// (zipf_select.lua: sysbench 1.0's point select with the key drawn from
// the Zipf distribution, prepared statements unless ps_disable=1), or
// with client=go go-sql-driver in this process (text protocol), as
// shardproxy/rowcache/e2e TestCacheBenchmark runs them. Each round of
// the cached proxy notes its hit ratio and the process's RSS. Params:
// rows, memory_mb, ps_disable, client, proxy_procs (GOMAXPROCS of each
// proxy, default 1), proxy_gomemlimit (GOMEMLIMIT of each proxy, e.g.
// 96MiB).
type cacheBench struct{}

//go:embed zipf_select.lua
var zipfSelectLua []byte

func (cacheBench) Setup(ctx context.Context, e *Env) (vs []Variant, stop func(), err error) {
	s := &stack{}
	defer func() {
		if err != nil {
			s.stop()
		}
	}()
	topo, err := s.topology(ctx, e, 1, 0)
	if err != nil {
		return nil, s.stop, err
	}
	s0 := topo.Shards()[0].Primary()
	rows := param(e, "rows", 100000)
	for _, q := range []string{"CREATE DATABASE IF NOT EXISTS sbtest",
		"CREATE TABLE sbtest.sbtest1 (id INT PRIMARY KEY, k INT NOT NULL DEFAULT 0, c CHAR(120) NOT NULL DEFAULT '', pad CHAR(60) NOT NULL DEFAULT '')"} {
		if err := s0.Exec(ctx, q); err != nil {
			return nil, s.stop, err
		}
	}
	for b := 0; b < rows; b += 1000 {
		var sb strings.Builder
		sb.WriteString("INSERT INTO sbtest.sbtest1 VALUES ")
		for i := b + 1; i <= min(b+1000, rows); i++ {
			if i > b+1 {
				sb.WriteString(",")
			}
			fmt.Fprintf(&sb, "(%d,%d,'%0120d','%060d')", i, i, i, i)
		}
		if err := s0.Exec(ctx, sb.String()); err != nil {
			return nil, s.stop, err
		}
	}
	if _, ok := e.Params["proxy_procs"]; !ok {
		// One thread per proxy, as bench proxy runs it (HAProxy's one
		// thread there): on two cores shared with the client and MariaDB,
		// a second one mostly spins looking for work.
		if e.Params == nil {
			e.Params = map[string]string{}
		}
		e.Params["proxy_procs"] = "1"
	}
	body := shardsYAML(topo) + fmt.Sprintf("databases:\n  sbtest: {shard: %s}\n", topo.Shards()[0].Name)
	plain, plainProc, err := s.proxy(ctx, e, "proxy-plain", body)
	if err != nil {
		return nil, s.stop, err
	}
	mem := param(e, "memory_mb", 16)
	cached, cachedProc, err := s.proxy(ctx, e, "proxy-cached", body+fmt.Sprintf("cache:\n  tables:\n    sbtest.sbtest1: {ttl: 5m, memory: %dMiB}\n", mem))
	if err != nil {
		return nil, s.stop, err
	}
	rss0 := rssOf(cachedProc.pid())
	stats, err := openDB(cached, "root", "sbtest")
	if err != nil {
		return nil, s.stop, err
	}
	s.add(func() { stats.Close() })
	var lastHits, lastMisses float64
	round := 0
	// noteCache notes the cached proxy's hit ratio over the round just
	// run and its RSS against the budget.
	noteCache := func() {
		round++
		hits, misses, entries, bytes, err := cacheCounts(ctx, stats)
		if err != nil {
			e.Note("round %d: SHOW STRATA CACHE: %v", round, err)
			return
		}
		dh, dm := hits-lastHits, misses-lastMisses
		lastHits, lastMisses = hits, misses
		e.Note("round %d, cached proxy: hit ratio %.3f over the round (%.0f lookups); %d entries, %.1f MiB accounted of %d MiB; RSS %.1f MiB (%.1f MiB at start, empty; the proxy without the cache: %.1f MiB)",
			round, dh/max(dh+dm, 1), dh+dm, entries, float64(bytes)/(1<<20), mem, mib(rssOf(cachedProc.pid())), mib(rss0), mib(rssOf(plainProc.pid())))
	}

	targets := []struct {
		name, addr, user string
		pid              int
		after            func()
	}{
		{"MariaDB direct", s0.Addr(), localdb.AppUser, 0, nil},
		{"proxy, no cache", plain, "root", plainProc.pid(), nil},
		{fmt.Sprintf("proxy, cache (%d MiB)", mem), cached, "root", cachedProc.pid(), noteCache},
	}
	ref := func(i int) bool { return i == 0 }
	switch client := e.Params["client"]; client {
	case "", "sysbench":
		lua := filepath.Join(e.Dir, "zipf_select.lua")
		if err := os.WriteFile(lua, zipfSelectLua, 0o644); err != nil {
			return nil, s.stop, err
		}
		psMode := "auto"
		if param(e, "ps_disable", 0) == 1 {
			psMode = "disable"
		}
		for i, t := range targets {
			sb := sysbench{test: lua, addr: t.addr, user: t.user, db: "sbtest", tables: 1, size: rows,
				extra: []string{fmt.Sprintf("--rows=%d", rows), "--zipf_s=1.01", "--db-ps-mode=" + psMode}}
			vs = append(vs, Variant{Name: t.name, Reference: ref(i), Run: func(ctx context.Context, d time.Duration) (Round, error) {
				r, err := sb.run(ctx, d, e.Threads, t.pid)
				if err == nil && t.after != nil {
					t.after()
				}
				return r, err
			}})
		}
	case "go":
		keys := zipf.New(1.01, rows, 1)
		var seed atomic.Uint64
		th := e.Threads
		for i, t := range targets {
			db, err := openDB(t.addr, t.user, "sbtest")
			if err != nil {
				return nil, s.stop, err
			}
			db.SetMaxOpenConns(th)
			db.SetMaxIdleConns(th)
			s.add(func() { db.Close() })
			vs = append(vs, Variant{Name: t.name, Reference: ref(i), Run: func(ctx context.Context, d time.Duration) (Round, error) {
				r := zipfSelects(ctx, db, keys, &seed, th, d)
				if t.after != nil {
					t.after()
				}
				return r, nil
			}})
		}
	default:
		return nil, s.stop, fmt.Errorf("client=%q: want sysbench or go", client)
	}
	return vs, s.stop, nil
}

// cacheCounts reads SHOW STRATA CACHE's first row (the one table cached).
func cacheCounts(ctx context.Context, db *sql.DB) (hits, misses float64, entries, bytes int64, err error) {
	rows, err := db.QueryContext(ctx, "SHOW STRATA CACHE")
	if err != nil {
		return 0, 0, 0, 0, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return 0, 0, 0, 0, err
	}
	if !rows.Next() {
		return 0, 0, 0, 0, fmt.Errorf("no rows")
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return 0, 0, 0, 0, err
	}
	col := func(name string) string {
		for i, c := range cols {
			if strings.EqualFold(c, name) {
				return vals[i].String
			}
		}
		return ""
	}
	hits, _ = strconv.ParseFloat(col("hits"), 64)
	misses, _ = strconv.ParseFloat(col("misses"), 64)
	entries, _ = strconv.ParseInt(col("entries"), 10, 64)
	bytes, _ = strconv.ParseInt(col("bytes"), 10, 64)
	return hits, misses, entries, bytes, rows.Err()
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// rssOf is a process's resident set in bytes (0 when it cannot be read).
func rssOf(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			f := strings.Fields(l)
			if len(f) >= 2 {
				n, _ := strconv.ParseInt(f[1], 10, 64)
				return n << 10
			}
		}
	}
	return 0
}

// zipfSelects runs point selects with Zipf keys from th goroutines for d.
func zipfSelects(ctx context.Context, db *sql.DB, keys *zipf.Zipf, seed *atomic.Uint64, th int, d time.Duration) Round {
	zs := make(chan *zipf.Zipf, th)
	for range th {
		zs <- keys.Clone(seed.Add(1))
	}
	return perOp(ctx, th, d, "queries/s", func(ctx context.Context) error {
		z := <-zs
		defer func() { zs <- z }()
		var c string
		return db.QueryRowContext(ctx, "SELECT c FROM sbtest1 WHERE id=?", z.Next()).Scan(&c)
	})
}
