package cachetier

import (
	"container/list"
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/strata-db/strata/internal/zipf"
)

// lru is a plain byte-budgeted LRU, the baseline for the hit ratio.
type lru struct {
	max, used int64
	l         *list.List
	m         map[string]*list.Element
}

type lruItem struct {
	k    string
	cost int64
}

func (c *lru) get(k string) bool {
	if e, ok := c.m[k]; ok {
		c.l.MoveToFront(e)
		return true
	}
	return false
}

func (c *lru) add(k string, cost int64) {
	c.m[k] = c.l.PushFront(&lruItem{k, cost})
	c.used += cost
	for c.used > c.max {
		e := c.l.Back()
		it := e.Value.(*lruItem)
		c.l.Remove(e)
		delete(c.m, it.k)
		c.used -= it.cost
	}
}

// TestHitRatioVersusLRU replays one Zipf (s = 1.01) stream over 1M keys
// (400,000 lookups; STRATA_LONG_RATIO=1 for 4M)
// through the cache and through an LRU of the same byte budget (10% of the
// key space), and reports both hit ratios. Ristretto's TinyLFU admission
// should do at least as well as LRU on a skewed stream.
func TestHitRatioVersusLRU(t *testing.T) {
	if raceEnabled {
		t.Skip("measures the admission policy, not concurrency; too slow under -race")
	}
	const (
		keys    = 1_000_000
		valSize = 200
	)
	lookups := 400_000
	if os.Getenv("STRATA_LONG_RATIO") != "" {
		lookups = 4_000_000
	}
	val := strings.Repeat("v", valSize)
	cost := int64(valSize) + EntryOverhead + 7
	budget := cost * keys / 10
	cfg := DefaultConfig()
	cfg.MaxBytes, cfg.AvgEntryBytes, cfg.HotKeys = budget, cost, 0
	c := testCache(t, cfg, nil)
	base := &lru{max: budget, l: list.New(), m: map[string]*list.Element{}}
	z := zipf.New(1.01, keys, 42)
	ctx := context.Background()
	load := func(context.Context, string, string) (string, bool, error) { return val, true, nil }
	lruHits := 0
	for range lookups {
		k := strconv.Itoa(z.Next() - 1)
		before := c.misses.Load()
		c.Get(ctx, k, "", load)
		if c.misses.Load() != before {
			// Let ristretto apply the fill (a busy machine would drop Sets
			// from its buffer, which is not what this test measures).
			c.rc.Wait()
		}
		if base.get(k) {
			lruHits++
		} else {
			base.add(k, cost)
		}
	}
	st := c.Stats()
	ours := float64(st.Hits) / float64(lookups)
	theirs := float64(lruHits) / float64(lookups)
	t.Logf("Zipf s=1.01 over %d keys, %d lookups, budget %d bytes (10%% of keys): cachetier hit ratio %.3f, LRU %.3f", keys, lookups, budget, ours, theirs)
	if ours < theirs-0.02 {
		t.Fatalf("hit ratio %.3f below LRU's %.3f", ours, theirs)
	}
}

// TestHeapWithinBudget offers ten times the budget and measures the heap
// the cache keeps: the budget plus a stated overhead (ristretto's
// admission counters, the version stripes, the bloom filter). Run it alone
// (STRATA_MEM_TEST=1): heap figures are process-wide.
func TestHeapWithinBudget(t *testing.T) {
	if os.Getenv("STRATA_MEM_TEST") == "" {
		t.Skip("STRATA_MEM_TEST=1 to measure the heap")
	}
	const budget = 32 << 20
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := heap()
	cfg := DefaultConfig()
	cfg.MaxBytes = budget
	c, err := New(cfg, func(v []byte) int64 { return int64(len(v)) })
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	empty := heap() - before
	ctx := context.Background()
	for i := range 10 * budget / 512 {
		k := strconv.Itoa(i)
		c.Get(ctx, k, "", func(context.Context, string, string) ([]byte, bool, error) { return make([]byte, 512), true, nil })
	}
	full := heap() - before
	st := c.Stats()
	t.Logf("budget %d MiB: empty cache %.1f MiB (counters, stripes, bloom), full %.1f MiB, %d entries, accounted %.1f MiB",
		budget>>20, float64(empty)/(1<<20), float64(full)/(1<<20), st.Entries, float64(st.Bytes)/(1<<20))
	if full > budget+empty+budget/4 {
		t.Fatalf("heap %d > budget %d + fixed %d + 25%%", full, budget, empty)
	}
}
