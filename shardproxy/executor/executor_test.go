package executor

import (
	"context"
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"vitess.io/vitess/go/vt/vtenv"

	"github.com/strata-db/strata/shardproxy/backend"
	"github.com/strata-db/strata/shardproxy/config"
	"github.com/strata-db/strata/shardproxy/planner"
	"github.com/strata-db/strata/shardproxy/session"
)

// newTestExecutor builds an Executor for c the way shardproxy.New does,
// without a listener, metrics registry or read/write router: the
// executor's tests run statements through Sessions directly.
func newTestExecutor(t testing.TB, c *config.Config) *Executor {
	t.Helper()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	vs, err := c.VSchema()
	if err != nil {
		t.Fatal(err)
	}
	env, err := vtenv.New(vtenv.Options{MySQLServerVersion: "8.0.40", TruncateErrLen: 256})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	var specs []backend.ShardSpec
	for _, s := range c.Shards {
		specs = append(specs, backend.ShardSpec{Name: s.Name, Primary: s.Primary, Replicas: s.Replicas})
	}
	cluster, err := backend.NewCluster(specs, backend.Options{
		User: c.Backend.User, Password: c.Backend.Password,
		MaxOpen: c.Backend.MaxOpen, MaxIdle: c.Backend.MaxIdle,
		IdleTimeout: c.Backend.IdleTimeout, ConnectTimeout: c.Backend.ConnectTimeout,
		WaitTimeout: c.Backend.WaitTimeout, HealthCheckInterval: c.Backend.HealthCheckInterval,
		Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	sm := &session.Metrics{
		Shards:       map[string]*session.ShardMetrics{},
		Reserved:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "reserved"}),
		Reservations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "reservations"}, []string{"reason"}),
	}
	xm := &Metrics{Slow: prometheus.NewCounter(prometheus.CounterOpts{Name: "slow"})}
	for k := range NumKinds {
		xm.Statements[k] = prometheus.NewCounter(prometheus.CounterOpts{Name: "statements"})
		xm.StmtErrors[k] = prometheus.NewCounter(prometheus.CounterOpts{Name: "errors"})
	}
	shared := &session.Shared{
		Cluster: cluster, VSchema: vs, DBShards: session.DatabaseShards(vs), Metrics: sm, Log: log,
		QueryTimeout: c.QueryTimeout, MaxRows: 1 << 24, Collations: env.CollationEnv(),
	}
	return New(context.Background(), Options{
		Config: c, VSchema: vs, Env: env, Planner: planner.Plan, Shared: shared, Metrics: xm,
		Log: log, Version: c.ServerVersion,
	})
}
