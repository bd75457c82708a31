package bench

import (
	"bufio"
	"context"
	"database/sql/driver"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/strata-db/strata/localdb"
)

// BenchmarkIdleConnMemory measures what an idle client connection costs
// the proxy: the RSS of a `strata proxy` process (a child, so that its
// descriptors and memory are its own) before and after N authenticated
// go-sql-driver connections are opened through it and left idle, divided
// by N. The goal is at most 12 KB per connection. Run it with
//
//	go test -run '^$' -bench IdleConnMemory -benchtime 1x ./bench/
//
// It raises the descriptor limit (the client side here and the proxy each
// need one per connection) and skips when it cannot.
func BenchmarkIdleConnMemory(b *testing.B) {
	if testing.Short() {
		b.Skip("starts MariaDB and opens up to 10,000 connections")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cfg := localdb.DefaultConfig()
	cfg.Root, cfg.Shards, cfg.Replicas, cfg.Logger = b.TempDir(), 1, 0, localdb.TestLogger(b)
	topo, err := localdb.Start(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer topo.Stop()
	s0 := topo.Shards()[0].Primary()
	for _, n := range []int{1000, 10000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			if err := raiseFDLimit(uint64(n + 2000)); err != nil {
				b.Skipf("%d connections need more descriptors: %v", n, err)
			}
			// One measurement however large b.N: it takes seconds.
			per, st := idleConnCost(ctx, b, s0.Addr(), n)
			b.ReportMetric(per, "B/idle-conn")
			b.ReportMetric(st.heap, "heap-B/idle-conn")
			b.ReportMetric(st.stack, "stack-B/idle-conn")
			b.ReportMetric(st.goroutines, "goroutines/idle-conn")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// raiseFDLimit makes the soft descriptor limit at least need (raising the
// hard one too where the process may). The proxy, a child, inherits it.
func raiseFDLimit(need uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	if lim.Cur >= need {
		return nil
	}
	want := syscall.Rlimit{Cur: need, Max: max(lim.Max, need)}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err == nil {
		return nil
	}
	if lim.Max < need {
		return fmt.Errorf("hard limit %d < %d and it cannot be raised", lim.Max, need)
	}
	return syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: need, Max: lim.Max})
}

// idleStats are the proxy's own figures per idle connection, from its
// metrics: they say where the RSS went.
type idleStats struct{ heap, stack, goroutines float64 }

// idleConnCost starts a proxy over backend, opens n idle connections
// through it and returns the RSS it grew by per connection.
func idleConnCost(ctx context.Context, b *testing.B, backend string, n int) (float64, idleStats) {
	dir := b.TempDir()
	listen, _ := freeAddr()
	admin, _ := freeAddr()
	conf := filepath.Join(dir, "proxy.yaml")
	yml := fmt.Sprintf("listen: %s\nadmin_listen: %s\nslow_query_threshold: 0s\nmax_client_connections: %d\nmax_unauthenticated: %d\nmax_unauthenticated_per_host: %d\n"+
		"users: [{name: root, password: \"\"}]\nbackend: {user: %s, password: \"\"}\nshards:\n  - {name: s0, primary: %q}\ndatabases:\n  app: {shard: s0}\n",
		listen, admin, n+100, n+100, n+100, localdb.AppUser, backend)
	if err := os.WriteFile(conf, []byte(yml), 0o644); err != nil {
		b.Fatal(err)
	}
	p, err := startProc(dir, "proxy", nil, strataBin, "proxy", "--log-level", "warn", "--config", conf)
	if err != nil {
		b.Fatal(err)
	}
	defer p.stop()
	if err := waitDialable(ctx, listen, 30*time.Second); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "proxy.log"))
		b.Fatalf("%v\n%s", err, log)
	}
	mc := mysql.NewConfig()
	mc.User, mc.Net, mc.Addr, mc.DBName = "root", "tcp", listen, "app"
	connector, err := mysql.NewConnector(mc)
	if err != nil {
		b.Fatal(err)
	}
	open := func(k int) ([]driver.Conn, error) {
		conns := make([]driver.Conn, k)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var first error
		next := make(chan int)
		for range 16 {
			wg.Go(func() {
				for i := range next {
					c, err := connector.Connect(ctx)
					if err == nil {
						err = c.(driver.Pinger).Ping(ctx)
					}
					mu.Lock()
					conns[i] = c
					if err != nil && first == nil {
						first = err
					}
					mu.Unlock()
				}
			})
		}
		for i := range k {
			next <- i
		}
		close(next)
		wg.Wait()
		return conns, first
	}
	closeAll := func(cs []driver.Conn) {
		for _, c := range cs {
			if c != nil {
				_ = c.Close()
			}
		}
	}
	// A few connections first, so that what every connection shares (the
	// backend pool, the plan caches, the runtime's first spans) is in the
	// baseline.
	warm, err := open(32)
	closeAll(warm)
	if err != nil {
		b.Fatal(err)
	}
	time.Sleep(time.Second)
	rss0, m0 := vmRSS(p.pid()), scrape(admin)
	conns, err := open(n)
	defer closeAll(conns)
	if err != nil {
		b.Fatalf("opening %d connections: %v", n, err)
	}
	// Let the connections' goroutines park and a collection or two run.
	time.Sleep(3 * time.Second)
	rss1, m1 := vmRSS(p.pid()), scrape(admin)
	if rss0 == 0 || rss1 == 0 {
		b.Fatal("cannot read the proxy's RSS")
	}
	per := func(k string) float64 { return (m1[k] - m0[k]) / float64(n) }
	st := idleStats{heap: per("go_memstats_heap_inuse_bytes"), stack: per("go_memstats_stack_inuse_bytes"), goroutines: per("go_goroutines")}
	b.Logf("%d idle connections: RSS %d → %d KiB, %.0f B each (heap %.0f, stacks %.0f, %.2f goroutines each)",
		n, rss0>>10, rss1>>10, float64(rss1-rss0)/float64(n), st.heap, st.stack, st.goroutines)
	runtime.KeepAlive(conns)
	return float64(rss1-rss0) / float64(n), st
}

// vmRSS is a process's resident set in bytes, 0 if unknown.
func vmRSS(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// scrape reads the gauges of a Prometheus text page (no labels).
func scrape(addr string) map[string]float64 {
	m := map[string]float64{}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return m
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, " ")
		if !ok || strings.Contains(k, "{") {
			continue
		}
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			m[k] = f
		}
	}
	return m
}
