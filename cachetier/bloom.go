package cachetier

import (
	"errors"
	"sync"

	"github.com/bits-and-blooms/bloom/v3"
)

// keyFilter is the bloom filter of existing rows. Until the caller has
// built it once, it answers "may exist" for every key: an unbuilt filter
// must not turn lookups of real keys into "absent".
type keyFilter struct {
	mu       sync.RWMutex
	cur      *bloom.BloomFilter // nil until the first build completes
	building *bloom.BloomFilter // non-nil while a build runs
}

// mayExist is false only when the key is certainly absent.
func (f *keyFilter) mayExist(row string) bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.cur == nil {
		return true
	}
	return f.cur.TestString(row)
}

// add records that row exists (or may, after a write) in the filter in use
// and in one being built, so a build that started before the write cannot
// lose it.
func (f *keyFilter) add(row string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cur != nil {
		f.cur.AddString(row)
	}
	if f.building != nil {
		f.building.AddString(row)
	}
}

func (f *keyFilter) ready() bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.cur != nil
}

// ErrBloomRaced is returned by BuildBloom when InvalidateAll with mayInsert
// ran during the scan; the filter stays off and the caller should build again.
var ErrBloomRaced = errors.New("cachetier: bloom build raced a table-wide invalidation")

// BuildBloom (re)builds the filter of existing rows: scan must call add for
// every row in the store, and may return an error to abandon the build (the
// filter in use, if any, stays). Rows invalidated while the scan runs are
// added too, so a row the scan's snapshot missed because it was written
// after it is not lost, provided its writer invalidates it. Until the first
// build succeeds, every key may exist.
func (c *Cache[V]) BuildBloom(expectedKeys uint, scan func(add func(row string)) error) error {
	if expectedKeys < c.cfg.BloomExpectedKeys {
		expectedKeys = c.cfg.BloomExpectedKeys
	}
	c.buildMu.Lock()
	defer c.buildMu.Unlock()
	nb := bloom.NewWithEstimates(expectedKeys, c.cfg.BloomFalsePositive)
	f := &c.filter
	f.mu.Lock()
	f.building = nb
	f.mu.Unlock()
	var n uint64
	err := scan(func(row string) {
		f.mu.Lock()
		nb.AddString(row)
		f.mu.Unlock()
		n++
	})
	f.mu.Lock()
	defer f.mu.Unlock()
	if err != nil {
		if f.building == nb {
			f.building = nil
		}
		return err
	}
	if f.building != nb {
		// InvalidateAll(mayInsert) ran meanwhile: rows it inserted may be
		// missing from the scan.
		return ErrBloomRaced
	}
	f.building = nil
	f.cur = nb
	c.bloomKeys.Store(n)
	return nil
}

// NoteExists tells the filter that row exists, e.g. after an insert the
// caller made itself. Invalidate does this too.
func (c *Cache[V]) NoteExists(row string) { c.filter.add(row) }
