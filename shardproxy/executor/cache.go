package executor

import "sync"

// boundedCache maps strings to values that every session shares (plans,
// statement shapes: immutable once stored), holding at most max of them.
// When full it drops about a tenth of its entries at random, which keeps
// the hot ones (they come straight back) without an LRU's bookkeeping on
// the hot path.
type boundedCache[V any] struct {
	mu  sync.RWMutex
	m   map[string]V
	max int
}

func newBoundedCache[V any](max int) *boundedCache[V] {
	return &boundedCache[V]{m: make(map[string]V), max: max}
}

func (c *boundedCache[V]) get(key string) V {
	c.mu.RLock()
	v := c.m[key]
	c.mu.RUnlock()
	return v
}

// getBytes is get for a key in a scratch buffer: the map lookup does not
// copy it.
func (c *boundedCache[V]) getBytes(key []byte) V {
	c.mu.RLock()
	v := c.m[string(key)]
	c.mu.RUnlock()
	return v
}

func (c *boundedCache[V]) put(key string, v V) {
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
	c.m[key] = v
}

func (c *boundedCache[V]) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
