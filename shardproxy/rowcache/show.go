package rowcache

import (
	"sort"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"vitess.io/vitess/go/sqltypes"
	querypb "vitess.io/vitess/go/vt/proto/query"

	"github.com/strata-db/strata/cachetier"
)

func fields(names ...string) []*querypb.Field {
	out := make([]*querypb.Field, len(names))
	for i, n := range names {
		out[i] = &querypb.Field{Name: n, Type: querypb.Type_VARCHAR, Charset: 33}
	}
	return out
}

func str(s string) sqltypes.Value   { return sqltypes.NewVarChar(s) }
func u64(n uint64) sqltypes.Value   { return sqltypes.NewVarChar(strconv.FormatUint(n, 10)) }
func i64(n int64) sqltypes.Value    { return sqltypes.NewVarChar(strconv.FormatInt(n, 10)) }
func flt(f float64) sqltypes.Value  { return sqltypes.NewVarChar(strconv.FormatFloat(f, 'f', 4, 64)) }
func boolv(b bool) sqltypes.Value   { return str(strconv.FormatBool(b)) }
func secs(f float64) sqltypes.Value { return sqltypes.NewVarChar(strconv.FormatFloat(f, 'f', 6, 64)) }
func (m *Manager) sortedTables() []*table {
	out := make([]*table, 0, len(m.tables))
	for _, t := range m.tables {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name() < out[j].name() })
	return out
}

// ShowCache answers SHOW STRATA CACHE: one row per cached table and key.
func (m *Manager) ShowCache() *sqltypes.Result {
	r := &sqltypes.Result{Fields: fields("table", "key", "entries", "bytes", "max_bytes", "hit_ratio", "hits",
		"negative_hits", "bloom_rejects", "misses", "shared_loads", "fills", "dropped_fills", "rejected_sets",
		"invalidations_local", "invalidations_binlog", "generation", "bloom_ready", "bloom_keys")}
	if m == nil {
		return r
	}
	for _, t := range m.sortedTables() {
		if !t.ready.Load() {
			continue
		}
		for _, kc := range t.all() {
			s := kc.c.Stats()
			r.Rows = append(r.Rows, []sqltypes.Value{str(t.name()), str(kc.col), i64(s.Entries), i64(s.Bytes), i64(s.MaxBytes),
				flt(s.HitRatio()), u64(s.Hits), u64(s.NegativeHits), u64(s.BloomRejects), u64(s.Misses), u64(s.SharedLoads),
				u64(s.Fills), u64(s.DroppedFills), u64(s.RejectedSets), u64(s.Invalidations[cachetier.SourceLocal]),
				u64(s.Invalidations[cachetier.SourceBinlog]), u64(s.Generation), boolv(s.BloomReady), u64(s.BloomKeys)})
		}
	}
	return r
}

// ShowHotKeys answers SHOW STRATA HOTKEYS: per cached table, the keys read
// and written most in the last window, with approximate counts.
func (m *Manager) ShowHotKeys() *sqltypes.Result {
	r := &sqltypes.Result{Fields: fields("table", "key_column", "op", "rank", "key", "count")}
	if m == nil {
		return r
	}
	for _, t := range m.sortedTables() {
		if !t.ready.Load() {
			continue
		}
		for _, kc := range t.all() {
			reads, writes := kc.c.HotKeys(0)
			for _, x := range []struct {
				op   string
				keys []cachetier.HotKey
			}{{"read", reads}, {"write", writes}} {
				for i, hk := range x.keys {
					r.Rows = append(r.Rows, []sqltypes.Value{str(t.name()), str(kc.col), str(x.op), i64(int64(i + 1)), str(hk.Row), u64(hk.Count)})
				}
			}
		}
	}
	return r
}

// ShowBinlog answers SHOW STRATA BINLOG: per shard, the tailer's primary,
// position and measured lag.
func (m *Manager) ShowBinlog() *sqltypes.Result {
	r := &sqltypes.Result{Fields: fields("shard", "primary", "connected", "position", "txns", "rows", "switchovers",
		"reconnects", "lag_last_s", "lag_p50_s", "lag_p99_s", "lag_max_s", "behind_s")}
	if m == nil {
		return r
	}
	for _, tl := range m.tailers {
		s := tl.Stats()
		r.Rows = append(r.Rows, []sqltypes.Value{str(s.Shard), str(s.Primary), boolv(s.Connected), str(s.Position), u64(s.Txns), u64(s.Rows),
			u64(s.Switchovers), u64(s.Reconnects), secs(s.LastLag.Seconds()), secs(s.Lag50.Seconds()), secs(s.Lag99.Seconds()),
			secs(s.LagMax.Seconds()), secs(s.Behind.Seconds())})
	}
	return r
}

// Collector exports the caches' and tailers' figures to Prometheus (hot
// keys as strata_cache_hot_key_count with a rank label, top 10 only, so the
// series stay few).
func (m *Manager) Collector() prometheus.Collector { return collector{m} }

type collector struct{ m *Manager }

var (
	dCounter = func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	descLookups  = dCounter("strata_cache_lookups_total", "Point selects asked of the cache, by outcome (hit, negative_hit, bloom_reject, miss).", "table", "key", "outcome")
	descFills    = dCounter("strata_cache_fills_total", "Loads stored, by result (stored, dropped: raced an invalidation, rejected: by ristretto).", "table", "key", "result")
	descInval    = dCounter("strata_cache_invalidations_total", "Invalidations by source (local: writes through this proxy; binlog: seen in a shard's binlog).", "table", "key", "source")
	descEntries  = dCounter("strata_cache_entries", "Entries held.", "table", "key")
	descBytes    = dCounter("strata_cache_bytes", "Bytes held (values, keys and per-entry overhead).", "table", "key")
	descMax      = dCounter("strata_cache_max_bytes", "Memory budget.", "table", "key")
	descHot      = dCounter("strata_cache_hot_key_count", "Approximate accesses to the hottest keys in the last window.", "table", "key_column", "op", "rank", "key")
	descLag      = dCounter("strata_cache_binlog_lag_seconds", "Measured binlog invalidation lag (last sample, p50, p99 of recent samples).", "shard", "quantile")
	descBehind   = dCounter("strata_cache_binlog_behind_seconds", "How long the oldest unanswered lag probe has waited.", "shard")
	descTailConn = dCounter("strata_cache_binlog_connected", "1 while the shard's binlog is tailed.", "shard")
)

func (collector) Describe(chan<- *prometheus.Desc) {} // unchecked: hot-key series come and go

func (c collector) Collect(ch chan<- prometheus.Metric) {
	m := c.m
	if m == nil {
		return
	}
	cnt := func(d *prometheus.Desc, v uint64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), l...)
	}
	gauge := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l...)
	}
	for _, t := range m.sortedTables() {
		if !t.ready.Load() {
			continue
		}
		for _, kc := range t.all() {
			s := kc.c.Stats()
			n, k := t.name(), kc.col
			cnt(descLookups, s.Hits, n, k, "hit")
			cnt(descLookups, s.NegativeHits, n, k, "negative_hit")
			cnt(descLookups, s.BloomRejects, n, k, "bloom_reject")
			cnt(descLookups, s.Misses, n, k, "miss")
			cnt(descFills, s.Fills, n, k, "stored")
			cnt(descFills, s.DroppedFills, n, k, "dropped")
			cnt(descFills, s.RejectedSets, n, k, "rejected")
			for src, v := range s.Invalidations {
				cnt(descInval, v, n, k, src)
			}
			gauge(descEntries, float64(s.Entries), n, k)
			gauge(descBytes, float64(s.Bytes), n, k)
			gauge(descMax, float64(s.MaxBytes), n, k)
			reads, writes := kc.c.HotKeys(10)
			for i, hk := range reads {
				gauge(descHot, float64(hk.Count), n, k, "read", strconv.Itoa(i+1), hk.Row)
			}
			for i, hk := range writes {
				gauge(descHot, float64(hk.Count), n, k, "write", strconv.Itoa(i+1), hk.Row)
			}
		}
	}
	for _, tl := range m.tailers {
		s := tl.Stats()
		gauge(descLag, s.LastLag.Seconds(), s.Shard, "last")
		gauge(descLag, s.Lag50.Seconds(), s.Shard, "0.5")
		gauge(descLag, s.Lag99.Seconds(), s.Shard, "0.99")
		gauge(descBehind, s.Behind.Seconds(), s.Shard)
		c := 0.0
		if s.Connected {
			c = 1
		}
		gauge(descTailConn, c, s.Shard)
	}
}

// BinlogLag is the largest recent p99 of the tailers' measured lag, and
// whether every tailer is connected: the bound the README's guarantee for
// writes that bypass the proxy refers to.
func (m *Manager) BinlogLag() (p99 float64, connected bool) {
	if m == nil {
		return 0, false
	}
	connected = len(m.tailers) > 0
	for _, tl := range m.tailers {
		s := tl.Stats()
		p99 = max(p99, s.Lag99.Seconds())
		connected = connected && s.Connected
	}
	return p99, connected
}

// Bytes is what every cached table holds, as accounted against the
// budgets: the part of the live heap that stays.
func (m *Manager) Bytes() int64 {
	if m == nil {
		return 0
	}
	var n int64
	for _, t := range m.sortedTables() {
		if !t.ready.Load() {
			continue
		}
		for _, kc := range t.all() {
			n += kc.c.Stats().Bytes
		}
	}
	return n
}
