package backend

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Collector exports every pool's counters to Prometheus when scraped, so
// that the pools pay nothing per query for their metrics.
type Collector struct {
	c                                        *Cluster
	inUse, idle, open, healthy               *prometheus.Desc
	waits, waitSecs, timeouts, dials, dialEr *prometheus.Desc
	interrupted, ejected, piped              *prometheus.Desc
}

// NewCollector returns the cluster's pool metrics; register it with a
// prometheus.Registerer.
func NewCollector(c *Cluster) *Collector {
	l := []string{"shard", "role", "server"}
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("strata_proxy_pool_"+name, help, l, nil)
	}
	return &Collector{
		c:        c,
		inUse:    d("in_use", "Backend connections in use."),
		idle:     d("idle", "Idle backend connections."),
		open:     d("open", "Open backend connections (in use, idle or dialing)."),
		healthy:  d("healthy", "1 if the last check or use of the server succeeded."),
		waits:    d("waits_total", "Times a statement waited for a free connection."),
		waitSecs: d("wait_seconds_total", "Total time statements waited for a free connection."),
		timeouts: d("wait_timeouts_total", "Waits for a free connection that timed out."),
		dials:    d("dials_total", "Connections dialed."),
		dialEr:   d("dial_errors_total", "Dials that failed."),
		interrupted: d("interrupted_total",
			"Connections in use closed because their server was ejected or demoted (InterruptInUse)."),
		ejected: d("ejected", "1 while the server is ejected: the pool hands out no connections."),
		piped:   d("pipelined_total", "Statements sent on the pool's pipelined connections (backend.pipelines)."),
	}
}

// Describe implements prometheus.Collector.
func (m *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.inUse, m.idle, m.open, m.healthy, m.waits, m.waitSecs, m.timeouts, m.dials, m.dialEr, m.interrupted, m.ejected, m.piped} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *Collector) Collect(ch chan<- prometheus.Metric) {
	for _, p := range m.c.Pools() {
		s := p.Stats()
		l := []string{p.Shard, string(p.Role), p.Addr}
		h, e := 0.0, 0.0
		if s.Healthy {
			h = 1
		}
		if s.Ejected {
			e = 1
		}
		ch <- prometheus.MustNewConstMetric(m.inUse, prometheus.GaugeValue, float64(s.InUse), l...)
		ch <- prometheus.MustNewConstMetric(m.idle, prometheus.GaugeValue, float64(s.Idle), l...)
		ch <- prometheus.MustNewConstMetric(m.open, prometheus.GaugeValue, float64(s.Open), l...)
		ch <- prometheus.MustNewConstMetric(m.healthy, prometheus.GaugeValue, h, l...)
		ch <- prometheus.MustNewConstMetric(m.waits, prometheus.CounterValue, float64(s.Waits), l...)
		ch <- prometheus.MustNewConstMetric(m.waitSecs, prometheus.CounterValue, s.WaitTime.Seconds(), l...)
		ch <- prometheus.MustNewConstMetric(m.timeouts, prometheus.CounterValue, float64(s.Timeouts), l...)
		ch <- prometheus.MustNewConstMetric(m.dials, prometheus.CounterValue, float64(s.Dials), l...)
		ch <- prometheus.MustNewConstMetric(m.dialEr, prometheus.CounterValue, float64(s.DialErrs), l...)
		ch <- prometheus.MustNewConstMetric(m.interrupted, prometheus.CounterValue, float64(s.Interrupted), l...)
		ch <- prometheus.MustNewConstMetric(m.ejected, prometheus.GaugeValue, e, l...)
		ch <- prometheus.MustNewConstMetric(m.piped, prometheus.CounterValue, float64(s.Piped), l...)
	}
}
