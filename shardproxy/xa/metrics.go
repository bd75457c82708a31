package xa

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the proxy's cross-shard transaction metrics, shared by its
// committer and resolver.
type Metrics struct {
	commits, onePhase, aborts, rollbacks, unknown, deadlocks prometheus.Counter
	resolved, upgrades, early                                *prometheus.CounterVec
	inDoubt                                                  prometheus.Gauge
	decision, commitLatency                                  prometheus.Histogram
}

// NewMetrics makes the metrics and registers them with reg (nil: none).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	}
	buckets := prometheus.ExponentialBuckets(0.0002, 2, 16)
	m := &Metrics{
		commits:   c("strata_xa_commits_total", "Cross-shard transactions committed in two phases (decision recorded)."),
		onePhase:  c("strata_xa_one_phase_commits_total", "Transactions with XA branches committed in one phase (at most one branch wrote)."),
		aborts:    c("strata_xa_aborts_total", "Two-phase commits that failed before the decision and were rolled back."),
		rollbacks: c("strata_xa_rollbacks_total", "Distributed transactions rolled back by the client (ROLLBACK or a disconnect)."),
		unknown:   c("strata_xa_unknown_outcomes_total", "Commits whose decision could not be confirmed; recovery finished them."),
		deadlocks: c("strata_xa_deadlocks_total", "Deadlocks across shards the proxy broke by rolling back one transaction (1213 to its client)."),
		resolved: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_xa_resolved_branches_total",
			Help: "Prepared branches the resolver finished, by action (commit, rollback, presumed_abort).",
		}, []string{"action"}),
		upgrades: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_xa_upgrades_total",
			Help: "Transactions whose first shard's writes ran again under XA when they spanned shards, by result (ok, changed: the rows had changed and the transaction was told to retry).",
		}, []string{"result"}),
		early: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_xa_early_branches_total",
			Help: "Transactions begun as an XA branch on their first shard because the session's previous transaction spanned shards, by result (spanned, one_shard: committed in one phase).",
		}, []string{"result"}),
		inDoubt: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "strata_xa_in_doubt_branches",
			Help: "Prepared branches of ours the last recovery pass found and could not finish yet.",
		}),
		decision: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "strata_xa_decision_seconds", Help: "Time to record a commit decision in the coordinator.", Buckets: buckets,
		}),
		commitLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "strata_xa_commit_seconds", Help: "Time of a two-phase commit, from the first PREPARE to the last COMMIT.", Buckets: buckets,
		}),
	}
	if reg != nil {
		reg.MustRegister(m.commits, m.onePhase, m.aborts, m.rollbacks, m.unknown, m.deadlocks, m.resolved, m.upgrades, m.early, m.inDoubt, m.decision, m.commitLatency)
	}
	return m
}

// Upgraded counts a transaction made distributed after its first shard
// wrote: ok false when that shard answered differently the second time.
func (m *Metrics) Upgraded(ok bool) {
	if m == nil {
		return
	}
	if ok {
		m.upgrades.WithLabelValues("ok").Inc()
	} else {
		m.upgrades.WithLabelValues("changed").Inc()
	}
}

// Early counts a transaction begun as an XA branch on its first shard:
// spanned says whether it went on to span shards.
func (m *Metrics) Early(spanned bool) {
	if m == nil {
		return
	}
	if spanned {
		m.early.WithLabelValues("spanned").Inc()
	} else {
		m.early.WithLabelValues("one_shard").Inc()
	}
}

// Deadlock counts a deadlock across shards broken by rolling back one
// transaction.
func (m *Metrics) Deadlock() {
	if m != nil {
		m.deadlocks.Inc()
	}
}
