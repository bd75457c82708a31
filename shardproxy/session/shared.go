package session

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/strata-db/strata/shardproxy/backend"
	"github.com/strata-db/strata/shardproxy/engine"
	"github.com/strata-db/strata/shardproxy/fleet"
	"github.com/strata-db/strata/shardproxy/vschema"
	"vitess.io/vitess/go/mysql/collations"
)

// ShardMetrics are one shard's children of the per-shard metrics, looked up
// once at start so that a query pays two atomic adds and a histogram
// observation.
type ShardMetrics struct {
	Queries prometheus.Counter
	Errors  prometheus.Counter
	Latency prometheus.Observer
}

func (m *ShardMetrics) Observe(start time.Time, err error) {
	m.Queries.Inc()
	if err != nil {
		m.Errors.Inc()
	}
	m.Latency.Observe(time.Since(start).Seconds())
}

// Shared is what every session of a proxy shares: the backend pools and
// what the sessions need to know of the configuration. The server builds it
// once.
type Shared struct {
	Cluster *backend.Cluster
	VSchema *vschema.VSchema
	// DBShards: database -> shards that hold it.
	DBShards map[string]map[string]bool
	Metrics  *Metrics
	Log      *slog.Logger
	// QueryTimeout bounds each statement on a backend; MaxRows each result.
	QueryTimeout time.Duration
	MaxRows      int
	// Keys generates shard keys from the ID service; nil without id_service.
	Keys *KeyGen
	// Hot combines hot-row writes (hottables.go); nil when no table does.
	Hot *engine.HotCombiner
	// RW is the read/write router, nil when splitting is off.
	RW Consistencies
	// Collations names the collation ids of character_set_* assignments.
	Collations *collations.Environment
	// TxMode returns a database's transaction_mode (config.TxMode); nil:
	// single everywhere.
	TxMode func(db string) string
	// XA runs cross-shard transactions (xa.go); nil without a coordinator.
	XA *XA
}

// Consistencies is the read/write router as a session sees it.
type Consistencies interface {
	DefaultConsistency() fleet.Consistency
}

// Metrics are the session side's metrics: per shard, and the reserved
// connections.
type Metrics struct {
	Shards map[string]*ShardMetrics
	// Reserved counts the backend connections sessions hold now
	// (reserve.go); Reservations, by reason, how many were ever reserved.
	Reserved     prometheus.Gauge
	Reservations *prometheus.CounterVec
}

// Shard is a shard's metrics, nil for a shard the proxy does not know.
func (m *Metrics) Shard(name string) *ShardMetrics { return m.Shards[name] }

// DatabaseShards maps each database of vs to the shards that hold it: all
// of them for a sharded database, its one shard otherwise.
func DatabaseShards(vs *vschema.VSchema) map[string]map[string]bool {
	out := map[string]map[string]bool{}
	for name, d := range vs.Databases {
		set := map[string]bool{}
		if d.Sharded {
			for _, sh := range vs.Shards {
				set[sh] = true
			}
		} else {
			set[d.Shard] = true
		}
		out[name] = set
	}
	return out
}
