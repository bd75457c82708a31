package shardproxy

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-db/strata/shardproxy/backend"
)

// stmtKind classifies statements for metrics and transaction handling.
type stmtKind uint8

const (
	kindSelect stmtKind = iota
	kindInsert
	kindUpdate
	kindDelete
	kindDDL
	kindSet
	kindShow
	kindTx
	kindOther
	numKinds
)

var kindNames = [numKinds]string{"select", "insert", "update", "delete", "ddl", "set", "show", "transaction", "other"}

// shardMetrics are one shard's children of the per-shard metrics, looked up
// once at start so that a query pays two atomic adds and a histogram
// observation.
type shardMetrics struct {
	queries prometheus.Counter
	errors  prometheus.Counter
	latency prometheus.Observer
}

func (m *shardMetrics) observe(start time.Time, err error) {
	m.queries.Inc()
	if err != nil {
		m.errors.Inc()
	}
	m.latency.Observe(time.Since(start).Seconds())
}

type metrics struct {
	shards     map[string]*shardMetrics
	statements [numKinds]prometheus.Counter
	stmtErrors [numKinds]prometheus.Counter
	slow       prometheus.Counter
	// reserved counts the backend connections sessions hold now
	// (reserve.go); reservations, by reason, how many were ever reserved.
	Reserved     prometheus.Gauge
	reservations *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, srv *Server) (*metrics, error) {
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
	}, func() float64 { return float64(srv.clients.Load()) })
	hits := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "strata_proxy_plan_cache_hits_total", Help: "Statements whose plan came from the plan cache.",
	}, func() float64 { return float64(srv.plans.hits.Load() + srv.fastHits.Load()) })
	misses := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "strata_proxy_plan_cache_misses_total", Help: "Statements that had to be planned.",
	}, func() float64 { return float64(srv.plans.misses.Load()) })
	entries := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "strata_proxy_plan_cache_entries", Help: "Plans in the plan cache.",
	}, func() float64 { return float64(srv.plans.len()) })
	lane := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "strata_proxy_fast_lane_statements_total", Help: "Statements the fast lane answered: one shard's response passed to the client as the shard sent it.",
	}, func() float64 { return float64(srv.laneHits.Load()) })
	reserved := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "strata_proxy_reserved_connections", Help: "Backend connections reserved to one client session (a temporary table, a named lock): out of the pools until the session ends.",
	})
	reservations := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "strata_proxy_reservations_total", Help: "Backend connections that became reserved to a client session, by the statement that reserved them.",
	}, []string{"reason"})
	for _, c := range []prometheus.Collector{queries, errs, lat, stmts, stmtErrs, slow, clients, hits, misses, entries, lane, reserved, reservations, backend.NewCollector(srv.cluster)} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	m := &metrics{shards: map[string]*shardMetrics{}, slow: slow, Reserved: reserved, reservations: reservations}
	for _, sh := range srv.vs.Shards {
		m.shards[sh] = &shardMetrics{
			queries: queries.WithLabelValues(sh),
			errors:  errs.WithLabelValues(sh),
			latency: lat.WithLabelValues(sh),
		}
	}
	for k := stmtKind(0); k < numKinds; k++ {
		m.statements[k] = stmts.WithLabelValues(kindNames[k])
		m.stmtErrors[k] = stmtErrs.WithLabelValues(kindNames[k])
	}
	return m, nil
}

func (m *metrics) shard(name string) *shardMetrics { return m.shards[name] }
