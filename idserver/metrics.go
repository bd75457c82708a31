package idserver

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the service's Prometheus metrics, on the registry the
// caller gives (never the global one).
type metrics struct {
	idsServed      *prometheus.CounterVec   // tag, mode
	raftApplies    *prometheus.CounterVec   // op, result
	raftLatency    *prometheus.HistogramVec // op
	refills        *prometheus.CounterVec   // tag
	segmentStep    *prometheus.GaugeVec     // tag
	leaderChanges  prometheus.Counter
	isLeader       prometheus.Gauge
	requests       *prometheus.HistogramVec // api, method
	requestErrors  *prometheus.CounterVec   // api, method, code
	forwarded      prometheus.Counter
	clockBackwards prometheus.Counter
	worker         prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "strata", "idserver"
	m := &metrics{
		idsServed: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "ids_served_total",
			Help: "IDs handed out by this node, by tag (\"snowflake\" for snowflake mode) and mode."}, []string{"tag", "mode"}),
		raftApplies: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "raft_round_trips_total",
			Help: "Raft round trips (Apply, Barrier, VerifyLeader) by operation and result."}, []string{"op", "result"}),
		raftLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "raft_round_trip_seconds",
			Help: "Latency of Raft round trips.", Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}, []string{"op"}),
		refills: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "segment_refills_total",
			Help: "Ranges reserved through Raft for a tag's buffer."}, []string{"tag"}),
		segmentStep: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "segment_step",
			Help: "Current dynamic step of a tag on the leader."}, []string{"tag"}),
		leaderChanges: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "leader_changes_total",
			Help: "Times this node gained or lost leadership."}),
		isLeader: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "is_leader",
			Help: "1 while this node is the leader and serving segment IDs."}),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "request_duration_seconds",
			Help: "Latency of API requests by API (http, grpc) and method.", Buckets: prometheus.ExponentialBuckets(0.00002, 2, 18)}, []string{"api", "method"}),
		requestErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "request_errors_total",
			Help: "API requests that failed, by API, method and status."}, []string{"api", "method", "status"}),
		forwarded: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "forwarded_total",
			Help: "Segment requests this follower forwarded to the leader."}),
		clockBackwards: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "snowflake_clock_backwards_total",
			Help: "Snowflake requests that found the clock behind the last issued timestamp."}),
		worker: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "snowflake_worker",
			Help: "The snowflake worker ID this node holds."}),
	}
	for _, c := range []prometheus.Collector{m.idsServed, m.raftApplies, m.raftLatency, m.refills, m.segmentStep, m.leaderChanges,
		m.isLeader, m.requests, m.requestErrors, m.forwarded, m.clockBackwards, m.worker} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
