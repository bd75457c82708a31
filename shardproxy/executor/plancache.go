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
	// normalized is the statement after normalization, for logs.
	normalized string
	// needsText: the plan names columns after the client's text.
	needsText bool
	// lane: a read that one shard answers whole, whose response the fast
	// lane passes to the client as the shard sent it (lane.go).
	lane bool
	// reserve names what in the statement leaves state on its backend
	// connection, which the session then keeps (reserve.go); lockFn: it
	// calls named-lock functions, which run outside the transaction.
	reserve string
	lockFn  bool
	// calcFound: a SELECT SQL_CALC_FOUND_ROWS; lastIDCol: the select-list
	// item LAST_INSERT_ID(expr) sets the session's value (1-based, 0: none);
	// hasLimit: a LIMIT of its own, which sql_select_limit yields to
	// (sessionvars.go).
	calcFound bool
	lastIDCol int
	hasLimit  bool
	// fields are the result columns a SELECT returns, for the prepare
	// response (clients size their result buffers from it); found on first
	// prepare.
	fields atomic.Pointer[[]*querypb.Field]
	// point: a point select the row cache may answer (rowcache.go); ast: the
	// normalized statement of a write, for what it invalidates.
	point *rowcache.PointPlan
	ast   sqlparser.Statement
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
