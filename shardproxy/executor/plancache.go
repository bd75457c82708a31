package executor

import (
	"sync"
	"sync/atomic"

	querypb "vitess.io/vitess/go/vt/proto/query"
	"vitess.io/vitess/go/vt/sqlparser"

	"github.com/strata-db/strata/shardproxy/engine"
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
}

// planCache maps "db\x00normalized statement" to its plan. Plans are
// immutable and shared by every session. When full, it drops about a tenth
// of its entries at random, which keeps hot plans (they come straight back)
// without the bookkeeping of an LRU on the hot path.
type planCache struct {
	mu     sync.RWMutex
	m      map[string]*cachedPlan
	max    int
	hits   atomic.Uint64
	misses atomic.Uint64
}

func newPlanCache(max int) *planCache {
	return &planCache{m: make(map[string]*cachedPlan), max: max}
}

func (c *planCache) get(key string) *cachedPlan {
	c.mu.RLock()
	p := c.m[key]
	c.mu.RUnlock()
	if p != nil {
		c.hits.Add(1)
	} else {
		c.misses.Add(1)
	}
	return p
}

func (c *planCache) put(key string, p *cachedPlan) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		drop := c.max/10 + 1
		for k := range c.m {
			delete(c.m, k)
			if drop--; drop == 0 {
				break
			}
		}
	}
	c.m[key] = p
}

func (c *planCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
