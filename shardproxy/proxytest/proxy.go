package proxytest

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-db/strata/localdb"
	"github.com/strata-db/strata/shardproxy"
	"github.com/strata-db/strata/shardproxy/config"
)

// Proxy is a proxy over a real localdb topology, on free ports, stopped
// when the test ends.
type Proxy struct {
	Server   *shardproxy.Server
	Topo     *localdb.Topology
	Config   *config.Config
	Registry *prometheus.Registry
	// Logs is everything the proxy logged (it goes to the test's log too).
	Logs *Log
	// Demo and Test are the names of the proxy's two databases: Demo
	// sharded (customers by id, orders by customer_id, countries
	// reference, t1..t4 by id), Test unsharded on the first shard. They
	// are the test's own: other tests on the same topology have others.
	Demo, Test string

	stopOnce sync.Once
	stop     func()
}

// Stop stops the proxy and waits for it; the end of the test stops it too.
// Safe to call twice.
func (p *Proxy) Stop() { p.stopOnce.Do(p.stop) }

// Config is a proxy config for a topology, with the databases Demo and
// Test of Proxy under the keys "demo" and "test".
func Config(topo *localdb.Topology) *config.Config {
	c := config.DefaultConfig()
	c.Listen = "127.0.0.1:0"
	c.AdminListen = "127.0.0.1:0"
	c.Backend.User = localdb.AppUser
	c.Backend.HealthCheckInterval = 200 * time.Millisecond
	for _, sh := range topo.Shards() {
		s := config.Shard{Name: sh.Name, Primary: sh.Primary().Addr()}
		for _, r := range sh.Replicas() {
			s.Replicas = append(s.Replicas, r.Addr())
		}
		c.Shards = append(c.Shards, s)
	}
	c.Databases = map[string]*config.Database{
		"demo": {Sharded: true, Tables: map[string]*config.Table{
			"customers": {Kind: "sharded", Column: "id"},
			"orders":    {Kind: "sharded", Column: "customer_id"},
			"countries": {Kind: "reference"},
			"t{1..4}":   {Kind: "sharded", Column: "id"},
		}},
		"test": {Shard: topo.Shards()[0].Name},
	}
	return c
}

// Start starts a proxy over topo with Config(topo), changed by mut (nil:
// unchanged). The databases under the keys "demo" and "test" are then
// renamed to the test's own (Proxy.Demo, Proxy.Test; every proxy a test
// starts gets the same two), dropped and created afresh on the shards the
// first time the test asks, and dropped when it ends.
func Start(t testing.TB, topo *localdb.Topology, mut func(*config.Config)) *Proxy {
	t.Helper()
	cfg := Config(topo)
	if mut != nil {
		mut(cfg)
	}
	demo, test := dbNames(t)
	for key, name := range map[string]string{"demo": demo, "test": test} {
		if d, ok := cfg.Databases[key]; ok {
			delete(cfg.Databases, key)
			cfg.Databases[name] = d
		}
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	freshDatabases(t, topo, demo, test)
	p := StartConfig(t, cfg)
	p.Topo, p.Demo, p.Test = topo, demo, test
	return p
}

// StartConfig starts a proxy with cfg as it is, for a test that builds its
// own config (its own tables, some shards of a topology only): no database
// is renamed or made, and Topo, Demo and Test are left empty.
func StartConfig(t testing.TB, cfg *config.Config) *Proxy {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &Log{}
	log := slog.New(slog.NewTextHandler(io.MultiWriter(logs, localdb.TestWriter(t)), &slog.HandlerOptions{Level: slog.LevelInfo}))
	srv, err := shardproxy.New(ctx, shardproxy.Options{Config: cfg, Registry: reg, Logger: log})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ctx)
	}()
	p := &Proxy{Server: srv, Config: cfg, Registry: reg, Logs: logs, stop: func() {
		cancel()
		<-done
	}}
	t.Cleanup(p.Stop)
	return p
}

// dbNames are the test's databases: its name, made a database name, and a
// hash of it (subtests' names share a prefix).
func dbNames(t testing.TB) (demo, test string) {
	h := fnv.New32a()
	h.Write([]byte(t.Name()))
	var b strings.Builder
	for _, r := range strings.ToLower(t.Name()) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		}
	}
	name := b.String()
	if len(name) > 40 {
		name = name[:40]
	}
	suffix := fmt.Sprintf("%s_%08x", name, h.Sum32())
	return "demo_" + suffix, "test_" + suffix
}

// fresh notes the databases made afresh for the tests running now, so that
// a test's second proxy keeps what its first one wrote.
var fresh sync.Map

func freshDatabases(t testing.TB, topo *localdb.Topology, names ...string) {
	t.Helper()
	key := topo.Root() + "\x00" + names[0]
	if _, loaded := fresh.LoadOrStore(key, true); loaded {
		return
	}
	drop := func() error {
		for _, sh := range topo.Shards() {
			db, err := sh.Primary().OpenAdmin("")
			if err != nil {
				return err
			}
			for _, n := range names {
				if _, err := db.Exec("DROP DATABASE IF EXISTS `" + n + "`"); err != nil {
					db.Close()
					return fmt.Errorf("%s: %w", sh.Name, err)
				}
			}
			db.Close()
		}
		return nil
	}
	if err := drop(); err != nil {
		t.Fatalf("proxytest: drop the test's databases: %v", err)
	}
	t.Cleanup(func() {
		fresh.Delete(key)
		_ = drop() // a topology the test stopped has nothing to drop
	})
}

// DSN is a go-sql-driver DSN for the proxy (as root, no password).
func (p *Proxy) DSN(db string, params ...string) string {
	q := strings.Join(append([]string{"timeout=5s"}, params...), "&")
	return fmt.Sprintf("root@tcp(%s)/%s?%s", p.Server.Addr(), db, q)
}

// Open opens database db through the proxy; the handle closes when the
// test ends.
func (p *Proxy) Open(t testing.TB, db string, params ...string) *sql.DB {
	t.Helper()
	d, err := sql.Open("mysql", p.DSN(db, params...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// Metric is the value of a counter or gauge of the proxy's registry,
// summed over the series whose labels include labels (name, value pairs).
func (p *Proxy) Metric(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := p.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue series
				}
			}
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			}
		}
	}
	return sum
}

// Execer is a *sql.DB, *sql.Conn or *sql.Tx.
type Execer interface {
	Exec(string, ...any) (sql.Result, error)
}

// MustExec runs q, failing the test on an error.
func MustExec(t testing.TB, db Execer, q string, args ...any) sql.Result {
	t.Helper()
	r, err := db.Exec(q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return r
}

// SQLErr is the MySQL error number of err, 0 if none.
func SQLErr(err error) uint16 {
	if me, ok := err.(*mysql.MySQLError); ok {
		return me.Number
	}
	return 0
}

// Log keeps what a proxy logged.
type Log struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *Log) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// String is everything logged so far.
func (l *Log) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// shared is one two-shard topology that the tests which do not fault their
// servers share, so that a package's tests stay within a few minutes.
var shared struct {
	once sync.Once
	topo *localdb.Topology
	err  error
	dir  string
}

// SharedTopology is a two-shard topology (no replicas) shared by the
// package's tests, started by the first that asks; Main stops it. Tests
// that fault servers start their own (localdb.StartForTest).
func SharedTopology(t testing.TB) *localdb.Topology {
	t.Helper()
	shared.once.Do(func() {
		dir, err := os.MkdirTemp("", "proxytest-")
		if err != nil {
			shared.err = err
			return
		}
		shared.dir = dir
		cfg := localdb.TestConfig(2, 0)
		cfg.Root = dir
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		shared.topo, shared.err = localdb.Start(ctx, cfg)
	})
	if shared.err != nil {
		t.Fatalf("localdb: %v", shared.err)
	}
	return shared.topo
}

// Main runs a package's tests (call it from TestMain) and stops the shared
// topology after them.
func Main(m *testing.M) {
	code := m.Run()
	if shared.topo != nil {
		if err := shared.topo.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "localdb stop:", err)
		}
	}
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}
