package fleet

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the fleet's Prometheus series, per server unless said.
type metrics struct {
	reg         prometheus.Registerer
	cs          []prometheus.Collector
	role        *prometheus.GaugeVec
	healthy     *prometheus.GaugeVec
	lag         *prometheus.GaugeVec
	outstanding *prometheus.GaugeVec
	reads       *prometheus.CounterVec
	writes      *prometheus.CounterVec
	ejections   *prometheus.CounterVec
	fallbacks   *prometheus.CounterVec
	switchovers *prometheus.CounterVec
	held        *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	sv := []string{"shard", "server"}
	m := &metrics{
		reg: reg,
		role: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "strata_fleet_server_primary",
			Help: "1 if the server is its shard's primary, 0 if a replica."}, sv),
		healthy: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "strata_fleet_server_healthy",
			Help: "1 if the server answers its health checks, 0 if ejected."}, sv),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "strata_fleet_replica_lag_seconds",
			Help: "Replica lag from the heartbeat (age of the oldest heartbeat not yet applied); -1 when unknown."}, sv),
		outstanding: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "strata_fleet_server_outstanding",
			Help: "Queries routed to the server and not finished, sampled at each check."}, sv),
		reads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "strata_fleet_reads_routed_total",
			Help: "Reads routed to the server."}, sv),
		writes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "strata_fleet_writes_routed_total",
			Help: "Writes (and transactions) routed to the server."}, sv),
		ejections: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "strata_fleet_ejections_total",
			Help: "Times the server was ejected for not answering."}, sv),
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "strata_fleet_read_primary_total",
			Help: "Reads sent to the primary although not strong, by reason: session (no replica had the session's last write), no_replica (none healthy within max lag)."}, []string{"shard", "reason"}),
		switchovers: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "strata_fleet_promotions_total",
			Help: "Primary changes by kind (switchover, failover, automatic) and result (ok, error)."}, []string{"shard", "kind", "result"}),
		held: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "strata_fleet_held_queries",
			Help: "Queries waiting at the shard's gate during a switchover."}, []string{"shard"}),
	}
	m.cs = []prometheus.Collector{m.role, m.healthy, m.lag, m.outstanding, m.reads, m.writes, m.ejections, m.fallbacks, m.switchovers, m.held}
	if reg == nil {
		return m, nil
	}
	for i, c := range m.cs {
		if err := reg.Register(c); err != nil {
			for _, r := range m.cs[:i] {
				reg.Unregister(r)
			}
			return nil, fmt.Errorf("fleet: register metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) unregister() {
	if m.reg == nil {
		return
	}
	for _, c := range m.cs {
		m.reg.Unregister(c)
	}
}
