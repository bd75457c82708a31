package edge

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the edge's Prometheus series. app is a configured key name
// or "-" (unauthenticated), so label values stay bounded.
type metrics struct {
	requests *prometheus.CounterVec   // route, app, code, variant
	latency  *prometheus.HistogramVec // route, variant
	authFail *prometheus.CounterVec   // reason
	limited  *prometheus.CounterVec   // route, scope (app, ip)
	inflight *prometheus.GaugeVec     // backend
	busy     *prometheus.CounterVec   // backend
	breaker  *prometheus.GaugeVec     // backend: 0 closed, 1 half-open, 2 open
	leases   *prometheus.CounterVec   // result
	ids      *prometheus.CounterVec   // tag: IDs handed out
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "strata_edge_requests_total", Help: "Requests by route, app key, HTTP status and gray-release variant (stable, canary)."}, []string{"route", "app", "code", "variant"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "strata_edge_request_seconds", Help: "Request latency at the edge by route and variant.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}}, []string{"route", "variant"}),
		authFail: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "strata_edge_auth_failures_total", Help: "Requests refused by the signature check, by reason."}, []string{"reason"}),
		limited:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "strata_edge_rate_limited_total", Help: "Requests refused with 429, by route and bucket scope (app, ip)."}, []string{"route", "scope"}),
		inflight: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "strata_edge_backend_inflight", Help: "Calls in flight to each backend."}, []string{"backend"}),
		busy:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "strata_edge_backend_busy_total", Help: "Calls refused because the backend's concurrency limit stayed full for the timeout."}, []string{"backend"}),
		breaker:  prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "strata_edge_breaker_state", Help: "Circuit breaker per backend: 0 closed, 1 half-open, 2 open."}, []string{"backend"}),
		leases:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "strata_edge_fleet_leases_total", Help: "Token leases this edge served as the fleet's quota server, by result."}, []string{"result"}),
		ids:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "strata_edge_ids_total", Help: "IDs handed out through the edge, by tag."}, []string{"tag"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.authFail, m.limited, m.inflight, m.busy, m.breaker, m.leases, m.ids} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
