package seata

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/seata/seata-go/pkg/protocol/message"
)

// Metrics are the TC's Prometheus series. Each node counts what its own
// replica applies, so every node of a group shows the same figures.
type Metrics struct {
	open   *prometheus.GaugeVec   // open global transactions per status
	ended  *prometheus.CounterVec // finished global transactions per final status
	sends  *prometheus.CounterVec // phase-two requests sent to RMs, per kind
	conns  prometheus.Gauge
	leader prometheus.Gauge
}

// NewMetrics registers the series with reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		open: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "strata_seata_global_transactions",
			Help: "Open Seata global transactions per status.",
		}, []string{"status"}),
		ended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_seata_global_transactions_ended_total",
			Help: "Seata global transactions that ended, per final status.",
		}, []string{"status"}),
		sends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_seata_branch_requests_total",
			Help: "Phase-two requests (commit, rollback) this node sent to RMs.",
		}, []string{"kind"}),
		conns: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "strata_seata_connections",
			Help: "Seata client connections open on this node.",
		}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "strata_seata_phase_two_driver",
			Help: "1 while this node leads the group and drives phase two and timeouts.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.open, m.ended, m.sends, m.conns, m.leader)
	}
	return m
}

func (m *Metrics) observe(before message.GlobalStatus, g *Global, r Result) {
	var after message.GlobalStatus
	if g != nil {
		after = g.Status
	}
	if before != after {
		if before != 0 {
			m.open.WithLabelValues(StatusName(before)).Dec()
		}
		if after != 0 {
			m.open.WithLabelValues(StatusName(after)).Inc()
		}
	}
	if before != 0 && g == nil && final(r.Status) {
		m.ended.WithLabelValues(StatusName(r.Status)).Inc()
	}
}

func (m *Metrics) reset(st *State) {
	m.open.Reset()
	for _, g := range st.Globals {
		m.open.WithLabelValues(StatusName(g.Status)).Inc()
	}
}
