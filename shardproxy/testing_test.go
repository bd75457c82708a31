package shardproxy

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-db/strata/localdb"
	"github.com/strata-db/strata/shardproxy/config"
)

// testProxy is a proxy over a real localdb topology, on free ports.
type testProxy struct {
	srv  *Server
	topo *localdb.Topology
	cfg  *config.Config
	reg  *prometheus.Registry
	logs *syncLog // everything the proxy logged
}

// topoConfig is a proxy config for a topology: database demo sharded
// (customers by id, orders by customer_id, countries reference) and test
// unsharded on the first shard.
func topoConfig(topo *localdb.Topology) *config.Config {
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

func startProxy(t testing.TB, topo *localdb.Topology, mut func(*config.Config)) *testProxy {
	t.Helper()
	cfg := topoConfig(topo)
	if mut != nil {
		mut(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncLog{}
	log := slog.New(slog.NewTextHandler(io.MultiWriter(logs, testLogWriter(t)), &slog.HandlerOptions{Level: slog.LevelInfo}))
	srv, err := New(ctx, Options{Config: cfg, Registry: reg, Logger: log})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return &testProxy{srv: srv, topo: topo, cfg: cfg, reg: reg, logs: logs}
}

// dsn is a go-sql-driver DSN for the proxy.
func (p *testProxy) dsn(db string, params ...string) string {
	q := strings.Join(append([]string{"timeout=5s"}, params...), "&")
	return fmt.Sprintf("root@tcp(%s)/%s?%s", p.srv.Addr(), db, q)
}

func (p *testProxy) open(t testing.TB, db string, params ...string) *sql.DB {
	t.Helper()
	d, err := sql.Open("mysql", p.dsn(db, params...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func mustExec(t testing.TB, db interface {
	Exec(string, ...any) (sql.Result, error)
}, q string, args ...any) sql.Result {
	t.Helper()
	r, err := db.Exec(q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return r
}

// testLogWriter writes to the test's log while the test runs, and drops
// what comes after (testing panics on a late Log).
func testLogWriter(t testing.TB) io.Writer {
	w := &tlog{t: t}
	t.Cleanup(func() { w.done.Store(true) })
	return w
}

type tlog struct {
	t    testing.TB
	done atomic.Bool
}

func (w *tlog) Write(p []byte) (int, error) {
	if !w.done.Load() {
		w.t.Logf("%s", p)
	}
	return len(p), nil
}

// sqlErr returns the MySQL error number of err, 0 if none.
func sqlErr(err error) uint16 {
	if me, ok := err.(*mysql.MySQLError); ok {
		return me.Number
	}
	return 0
}

// metric is the value of a counter or gauge of the proxy's registry, summed
// over the series whose labels include labels (name, value pairs).
func (p *testProxy) metric(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := p.reg.Gather()
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
