package cachetier

import "sync/atomic"

// Stats is a snapshot of a cache's counters (since New) and sizes (now).
type Stats struct {
	Hits         uint64 // found values answered from memory
	NegativeHits uint64 // "absent" answered from a negative entry
	BloomRejects uint64 // "absent" answered by the bloom filter
	Misses       uint64 // lookups that went to a load (shared or not)
	SharedLoads  uint64 // lookups that shared another's load
	Fills        uint64 // loads whose result was stored
	DroppedFills uint64 // loads not stored: their row was invalidated meanwhile
	RejectedSets uint64 // loads ristretto refused (buffer full or admission)
	LoadErrors   uint64
	// Invalidations counts Invalidate and InvalidateAll calls by source.
	Invalidations map[string]uint64
	Generation    uint64 // InvalidateAll calls so far
	Entries       int64  // entries held (including ones hidden by a later invalidation)
	Bytes         int64  // cost held, in bytes
	MaxBytes      int64
	BloomReady    bool
	BloomKeys     uint64 // rows the last bloom build scanned
}

// HitRatio is the share of lookups answered without a load.
func (s Stats) HitRatio() float64 {
	ans := s.Hits + s.NegativeHits + s.BloomRejects
	if ans+s.Misses == 0 {
		return 0
	}
	return float64(ans) / float64(ans+s.Misses)
}

// Stats returns the cache's counters and sizes.
func (c *Cache[V]) Stats() Stats {
	if c == nil {
		return Stats{}
	}
	s := Stats{
		Hits:          c.hits.Load(),
		NegativeHits:  c.negHits.Load(),
		BloomRejects:  c.bloomRejects.Load(),
		Misses:        c.misses.Load(),
		SharedLoads:   c.sharedLoads.Load(),
		Fills:         c.fills.Load(),
		DroppedFills:  c.droppedFills.Load(),
		RejectedSets:  c.rejectedFills.Load() + c.rejected.Load(),
		LoadErrors:    c.loadErrors.Load(),
		Invalidations: map[string]uint64{},
		Generation:    c.gen.Load(),
		MaxBytes:      c.cfg.MaxBytes,
		BloomReady:    c.filter.ready(),
		BloomKeys:     c.bloomKeys.Load(),
	}
	c.invals.Range(func(k, v any) bool {
		s.Invalidations[k.(string)] = v.(*atomic.Uint64).Load()
		return true
	})
	if m := c.rc.Metrics; m != nil {
		s.Entries = int64(m.KeysAdded()) - int64(m.KeysEvicted())
	}
	s.Bytes = c.rc.MaxCost() - c.rc.RemainingCost()
	return s
}
