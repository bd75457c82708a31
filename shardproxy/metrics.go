package shardproxy

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-db/strata/shardproxy/backend"
	"github.com/strata-db/strata/shardproxy/executor"
	"github.com/strata-db/strata/shardproxy/session"
)

// newMetrics registers the proxy's metrics: the sessions' (per shard,
// reserved connections), the executor's (statements by kind) and gauges
// over the executor's counters.
func newMetrics(reg prometheus.Registerer, srv *Server) (*session.Metrics, *executor.Metrics, error) {
	queries := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "strata_proxy_shard_queries_total", Help: "Queries sent to each shard.",
	}, []string{"shard"})
	errs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "strata_proxy_shard_query_errors_total", Help: "Queries to each shard that failed (server errors and connection errors).",
	}, []string{"shard"})
	lat := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "strata_proxy_shard_query_duration_seconds",
		Help:    "Time from taking a backend connection to having the shard's whole result, per shard.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"shard"})
	stmts := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "strata_proxy_statements_total", Help: "Client statements by kind.",
	}, []string{"kind"})
	stmtErrs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "strata_proxy_statement_errors_total", Help: "Client statements that returned an error, by kind.",
	}, []string{"kind"})
	slow := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "strata_proxy_slow_statements_total", Help: "Statements slower than slow_query_threshold.",
	})
	clients := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "strata_proxy_client_connections", Help: "Open client connections.",
	}, func() float64 { return float64(srv.x.Stats().Clients) })
	hits := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "strata_proxy_plan_cache_hits_total", Help: "Statements whose plan came from the plan cache.",
	}, func() float64 { return float64(srv.x.Stats().PlanHits) })
	misses := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "strata_proxy_plan_cache_misses_total", Help: "Statements that had to be planned.",
	}, func() float64 { return float64(srv.x.Stats().PlanMisses) })
	entries := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "strata_proxy_plan_cache_entries", Help: "Plans in the plan cache.",
	}, func() float64 { return float64(srv.x.Stats().PlanEntries) })
	lane := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "strata_proxy_fast_lane_statements_total", Help: "Statements the fast lane answered: one shard's response passed to the client as the shard sent it.",
	}, func() float64 { return float64(srv.x.Stats().FastLaneHits) })
	reserved := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "strata_proxy_reserved_connections", Help: "Backend connections reserved to one client session (a temporary table, a named lock): out of the pools until the session ends.",
	})
	reservations := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "strata_proxy_reservations_total", Help: "Backend connections that became reserved to a client session, by the statement that reserved them.",
	}, []string{"reason"})
	for _, c := range []prometheus.Collector{queries, errs, lat, stmts, stmtErrs, slow, clients, hits, misses, entries, lane, reserved, reservations, backend.NewCollector(srv.cluster)} {
		if err := reg.Register(c); err != nil {
			return nil, nil, err
		}
	}
	sm := &session.Metrics{Shards: map[string]*session.ShardMetrics{}, Reserved: reserved, Reservations: reservations}
	for _, sh := range srv.vs.Shards {
		sm.Shards[sh] = &session.ShardMetrics{
			Queries: queries.WithLabelValues(sh),
			Errors:  errs.WithLabelValues(sh),
			Latency: lat.WithLabelValues(sh),
		}
	}
	xm := &executor.Metrics{Slow: slow}
	for k := range executor.NumKinds {
		xm.Statements[k] = stmts.WithLabelValues(executor.KindName(k))
		xm.StmtErrors[k] = stmtErrs.WithLabelValues(executor.KindName(k))
	}
	return sm, xm, nil
}
