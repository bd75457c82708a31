// Package e2e tests the hot-row cache through the whole proxy (shardproxy
// with package rowcache) over real MariaDB from localdb, with
// go-sql-driver/mysql as the client and direct connections to the shard
// primaries as the writers that bypass the proxy; bench_test.go is the
// benchmark (STRATA_CACHE_BENCH=1).
package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-db/strata/localdb"
	"github.com/strata-db/strata/shardproxy"
	"github.com/strata-db/strata/shardproxy/config"
	"github.com/strata-db/strata/shardproxy/planner"
)

type proxy struct {
	srv *shardproxy.Server
	reg *prometheus.Registry
}

// proxyConfig is demo.customers sharded by id over every shard, cached.
func proxyConfig(topo *localdb.Topology, ttl time.Duration) *config.Config {
	c := config.DefaultConfig()
	c.Listen, c.AdminListen = "127.0.0.1:0", "off"
	c.Backend.User = localdb.AppUser
	for _, sh := range topo.Shards() {
		s := config.Shard{Name: sh.Name, Primary: sh.Primary().Addr()}
		for _, r := range sh.Replicas() {
			s.Replicas = append(s.Replicas, r.Addr())
		}
		c.Shards = append(c.Shards, s)
	}
	c.Databases = map[string]*config.Database{"demo": {Sharded: true, Tables: map[string]*config.Table{
		"customers": {Kind: "sharded", Column: "id"},
	}}}
	c.Cache.Tables = map[string]*config.CacheTable{"demo.customers": {TTL: ttl, Memory: "16MiB"}}
	return c
}

func startProxy(t *testing.T, c *config.Config) *proxy {
	t.Helper()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := shardproxy.New(ctx, shardproxy.Options{Config: c, Planner: planner.Plan, Registry: reg, Logger: localdb.TestLogger(t)})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return &proxy{srv: srv, reg: reg}
}

func openDB(t testing.TB, addr, db string, conns int, params ...string) *sql.DB {
	t.Helper()
	extra := ""
	for _, p := range params {
		extra += "&" + p
	}
	d, err := sql.Open("mysql", fmt.Sprintf("root@tcp(%s)/%s?timeout=5s&readTimeout=30s&writeTimeout=30s%s", addr, db, extra))
	if err != nil {
		t.Fatal(err)
	}
	d.SetMaxOpenConns(conns)
	d.SetMaxIdleConns(conns)
	t.Cleanup(func() { d.Close() })
	return d
}

func mustExec(t testing.TB, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// setup starts shards, creates demo.customers with rows 1..n through a
// proxy without the cache (the cache reads the table at start), and
// returns the topology and a handle per shard primary (for direct writes).
func setup(t *testing.T, shards, n int) (*localdb.Topology, []*sql.DB) {
	t.Helper()
	topo := localdb.StartForTest(t, localdb.TestConfig(shards, 0))
	c := proxyConfig(topo, time.Minute)
	c.Cache.Tables = nil
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := shardproxy.New(ctx, shardproxy.Options{Config: c, Planner: planner.Plan, Registry: prometheus.NewRegistry(), Logger: localdb.TestLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ctx) }()
	db := openDB(t, srv.Addr(), "demo", 4)
	mustExec(t, db, "CREATE TABLE customers (id BIGINT PRIMARY KEY, name VARCHAR(100), v BIGINT NOT NULL DEFAULT 0)")
	for i := 1; i <= n; i++ {
		mustExec(t, db, "INSERT INTO customers (id, name) VALUES (?, ?)", i, "c"+strconv.Itoa(i))
	}
	db.Close()
	cancel()
	<-done
	var direct []*sql.DB
	for _, sh := range topo.Shards() {
		d, err := sh.Primary().Open("demo")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		direct = append(direct, d)
	}
	return topo, direct
}

// directUpdate sets v of row id on whichever shard holds it, as a writer
// that bypasses the proxy would.
func directUpdate(t testing.TB, direct []*sql.DB, id int, v int64) {
	t.Helper()
	n := int64(0)
	for _, d := range direct {
		res, err := d.Exec("UPDATE customers SET v = ? WHERE id = ?", v, id)
		if err != nil {
			t.Fatalf("direct update: %v", err)
		}
		a, _ := res.RowsAffected()
		n += a
	}
	if n != 1 {
		t.Fatalf("direct update of id %d changed %d rows", id, n)
	}
}

func comSelect(t testing.TB, topo *localdb.Topology) int {
	t.Helper()
	total := 0
	for _, sh := range topo.Shards() {
		// SHOW STATUS counts as Com_show_status, not as a select.
		db, err := sh.Primary().OpenAdmin("")
		if err != nil {
			t.Fatal(err)
		}
		var name string
		var n int
		err = db.QueryRow("SHOW GLOBAL STATUS LIKE 'Com_select'").Scan(&name, &n)
		db.Close()
		if err != nil {
			t.Fatal(err)
		}
		total += n
	}
	return total
}

func quantile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(int(float64(len(s))*q), len(s)-1)]
}

type writeRec struct {
	v     int64
	acked time.Time
	proxy bool
}

// TestProxyCacheRace: writers through the proxy and directly on the
// primaries, readers through the proxy, on the same few keys. Writes to a
// key are serialized (each a larger v) so that every read can be checked:
// no read may return a value older than a write acknowledged through the
// proxy before the read began; a value older than a direct write is
// allowed only within the binlog lag, and how long is measured.
func TestProxyCacheRace(t *testing.T) {
	topo, direct := setup(t, 2, 4)
	p := startProxy(t, proxyConfig(topo, time.Minute))
	db := openDB(t, p.srv.Addr(), "demo", 16)
	// Half the readers send text (the key in the statement), half execute
	// prepared statements: the fast lane answers hits of both.
	dbText := openDB(t, p.srv.Addr(), "demo", 8, "interpolateParams=true")
	const keys = 4
	rounds := 2000
	var (
		mu     [keys + 1]sync.Mutex
		logs   [keys + 1][]writeRec // per key, in commit order
		logMu  sync.Mutex
		nextV  atomic.Int64
		stale  atomic.Int64
		lagsMu sync.Mutex
		lags   []time.Duration // how long a direct write stayed invisible to a read
		reads  atomic.Int64
		done   atomic.Bool
	)
	write := func(viaProxy bool, r *rand.Rand) {
		k := 1 + r.IntN(keys)
		mu[k].Lock()
		defer mu[k].Unlock()
		v := nextV.Add(1)
		if viaProxy {
			mustExec(t, db, "UPDATE customers SET v = ? WHERE id = ?", v, k)
		} else {
			directUpdate(t, direct, k, v)
		}
		logMu.Lock()
		logs[k] = append(logs[k], writeRec{v: v, acked: time.Now(), proxy: viaProxy})
		logMu.Unlock()
	}
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 9))
			for range rounds / 2 {
				write(w == 0, r)
			}
		}()
	}
	var rwg sync.WaitGroup
	for rd := range 6 {
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			r := rand.New(rand.NewPCG(uint64(rd), 3))
			for !done.Load() {
				k := 1 + r.IntN(keys)
				start := time.Now()
				var got int64
				rdb := db
				if rd%2 == 0 {
					rdb = dbText
				}
				if err := rdb.QueryRow("SELECT v FROM customers WHERE id = ?", k).Scan(&got); err != nil {
					t.Errorf("read: %v", err)
					return
				}
				reads.Add(1)
				logMu.Lock()
				ws := logs[k]
				var firstNewer *writeRec
				for i := range ws {
					w := &ws[i]
					if !w.acked.Before(start) {
						break
					}
					if w.v > got {
						if w.proxy {
							stale.Add(1)
							t.Errorf("key %d: read began %v after v=%d was acknowledged through the proxy, returned %d", k, start.Sub(w.acked), w.v, got)
						}
						if firstNewer == nil {
							firstNewer = w
						}
					}
				}
				logMu.Unlock()
				if firstNewer != nil {
					lagsMu.Lock()
					lags = append(lags, start.Sub(firstNewer.acked))
					lagsMu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	done.Store(true)
	rwg.Wait()
	var lagP99, lagMax float64
	res := p.srv.RowCache().ShowBinlog()
	for _, row := range res.Rows {
		a, _ := strconv.ParseFloat(row[10].ToString(), 64)
		b, _ := strconv.ParseFloat(row[11].ToString(), 64)
		lagP99, lagMax = max(lagP99, a), max(lagMax, b)
	}
	cache := p.srv.RowCache().ShowCache().Rows[0]
	t.Logf("%d writes (half direct), %d reads; cache hit ratio %s, hits %s, misses %s, dropped fills %s",
		rounds, reads.Load(), cache[5].ToString(), cache[6].ToString(), cache[9].ToString(), cache[12].ToString())
	t.Logf("reads older than a direct write: %d; that write's age at the read: p50 %v, p99 %v, max %v; binlog lag measured by the proxy: p99 %.4fs, max %.4fs (2 shared cores, other helpers running)",
		len(lags), quantile(lags, 0.5), quantile(lags, 0.99), quantile(lags, 1), lagP99, lagMax)
	if stale.Load() > 0 {
		t.Fatalf("%d reads older than a write acknowledged through the proxy", stale.Load())
	}
	if q := quantile(lags, 1); q > 2*time.Second {
		t.Fatalf("a direct write stayed invisible for %v", q)
	}
}

// TestTwoProxies: a write through one proxy is visible through the other
// within the binlog lag, and at once through the first.
func TestTwoProxies(t *testing.T) {
	topo, _ := setup(t, 2, 8)
	a := startProxy(t, proxyConfig(topo, time.Minute))
	b := startProxy(t, proxyConfig(topo, time.Minute))
	da, dbb := openDB(t, a.srv.Addr(), "demo", 4), openDB(t, b.srv.Addr(), "demo", 4)
	var seen []time.Duration
	for i := range 200 {
		k := 1 + i%8
		var old int64
		// Warm both caches with the old value.
		if err := dbb.QueryRow("SELECT v FROM customers WHERE id = ?", k).Scan(&old); err != nil {
			t.Fatal(err)
		}
		mustExec(t, da, "UPDATE customers SET v = ? WHERE id = ?", i+1000, k)
		acked := time.Now()
		var got int64
		if err := da.QueryRow("SELECT v FROM customers WHERE id = ?", k).Scan(&got); err != nil || got != int64(i+1000) {
			t.Fatalf("read through the writing proxy: %d %v", got, err)
		}
		for {
			if err := dbb.QueryRow("SELECT v FROM customers WHERE id = ?", k).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got == int64(i+1000) {
				break
			}
			if time.Since(acked) > 5*time.Second {
				t.Fatalf("write through proxy A never visible through B")
			}
			time.Sleep(200 * time.Microsecond)
		}
		seen = append(seen, time.Since(acked))
	}
	t.Logf("a write through proxy A visible through proxy B after p50 %v, p99 %v, max %v", quantile(seen, 0.5), quantile(seen, 0.99), quantile(seen, 1))
}

// TestProxyPenetrationAndBreakdown: 100,000 lookups of missing keys send
// at most 1% to the shards; 64 sessions reading a hot key as it expires
// cause one shard query.
func TestProxyPenetrationAndBreakdown(t *testing.T) {
	topo, _ := setup(t, 2, 100)
	p := startProxy(t, proxyConfig(topo, time.Second))
	// Text protocol here (the race test uses prepared statements): one
	// round trip per lookup keeps the 100,000 lookups quick.
	db := openDB(t, p.srv.Addr(), "demo", 64, "interpolateParams=true")

	before := comSelect(t, topo)
	var wg sync.WaitGroup
	const lookups = 100_000
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 77))
			for range lookups / 8 {
				var v int64
				err := db.QueryRow("SELECT v FROM customers WHERE id = ?", 1_000_000+r.Int64N(1<<40)).Scan(&v)
				if err != sql.ErrNoRows {
					t.Errorf("missing key: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	reached := comSelect(t, topo) - before
	row := p.srv.RowCache().ShowCache().Rows[0]
	t.Logf("%d of %d lookups of missing keys reached the shards (Com_select); cache: bloom rejects %s, negative hits %s, misses %s",
		reached, lookups, row[8].ToString(), row[7].ToString(), row[9].ToString())
	if reached > lookups/100 {
		t.Fatalf("%d > 1%% of %d", reached, lookups)
	}

	// Breakdown: the key is filled at t0; TTL is 1s ±10%, so readers from
	// t0 to t0+1.5s see it expire exactly once.
	var v int64
	if err := db.QueryRow("SELECT v FROM customers WHERE id = 7").Scan(&v); err != nil {
		t.Fatal(err)
	}
	// Make sure this read was the fill (an earlier fill would shift t0).
	time.Sleep(1200 * time.Millisecond)
	if err := db.QueryRow("SELECT v FROM customers WHERE id = 7").Scan(&v); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	before = comSelect(t, topo)
	var errs atomic.Int64
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Since(t0) < 1500*time.Millisecond {
				var v int64
				if err := db.QueryRow("SELECT v FROM customers WHERE id = 7").Scan(&v); err != nil {
					errs.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	n := comSelect(t, topo) - before
	t.Logf("64 sessions over one expiry of the hot key: %d shard queries", n)
	if errs.Load() > 0 || n != 1 {
		t.Fatalf("%d shard queries (want 1), %d errors", n, errs.Load())
	}
}
