package executor

import (
	"sync/atomic"

	querypb "vitess.io/vitess/go/vt/proto/query"
	"vitess.io/vitess/go/vt/sqlparser"

	"github.com/strata-db/strata/shardproxy/engine"
	"github.com/strata-db/strata/shardproxy/rowcache"
)

// cachedPlan is everything a normalized statement needs to run again
// without parsing or planning: the plan, the bind variables the session
// must supply, and how the statement relates to transactions.
type cachedPlan struct {
	plan  engine.Primitive
	needs *sqlparser.BindVarNeeds
	kind  stmtKind
	// facts are the plan's (engine.Facts, computed by the planner): what
	// the statement asks of the protocol, the connection and the session.
	facts engine.Facts
	// normalized is the statement after normalization, for logs.
	normalized string
	// lane: a read that one shard answers whole, whose response the fast
	// lane passes to the client as the shard sent it (lane.go).
	lane bool
	// pipe: a lane read the lane may send on a pipeline (pipeable);
	// pipeOff is set when one of its runs held a pipeline up (too large
	// an answer), or pipeMissMax in a row were no use there (too slow, or
	// with warnings, so run again); pipeMiss counts those.
	pipe     bool
	pipeOff  atomic.Bool
	pipeMiss atomic.Int32
	// fields are the result columns a SELECT returns, for the prepare
	// response (clients size their result buffers from it); found on first
	// prepare.
	fields atomic.Pointer[[]*querypb.Field]
	// point: a point select the row cache may answer (rowcache.go); ast: the
	// normalized statement of a write, for what it invalidates.
	point *rowcache.PointPlan
	ast   sqlparser.Statement
	// refRead: a SELECT that reads reference tables only (or no table),
	// which any shard answers alike (session.RefRead).
	refRead bool
}

// planCache maps "db\x00normalized statement" to its plan, counting hits
// and misses for the metrics.
type planCache struct {
	*boundedCache[*cachedPlan]
	hits   atomic.Uint64
	misses atomic.Uint64
}

func newPlanCache(max int) *planCache {
	return &planCache{boundedCache: newBoundedCache[*cachedPlan](max)}
}

func (c *planCache) get(key string) *cachedPlan {
	p := c.boundedCache.get(key)
	if p != nil {
		c.hits.Add(1)
	} else {
		c.misses.Add(1)
	}
	return p
}
