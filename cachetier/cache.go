package cachetier

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/ristretto/v2"
	"golang.org/x/sync/singleflight"
)

// Loader loads the value of key (row and variant, as passed to Get) from
// the store. Its context carries the values of the Get that started the
// load, not its cancellation, and LoadTimeout. found false means the store has no such row; it is remembered
// for NegativeTTL. An error is returned to every reader sharing the load
// and nothing is cached.
type Loader[V any] func(ctx context.Context, row, variant string) (v V, found bool, err error)

// Source names where an invalidation came from, for the metrics.
const (
	SourceLocal  = "local"  // a write made through the caller itself
	SourceBinlog = "binlog" // a write seen in a store's change stream
)

// ErrClosed is returned by Get after Close.
var ErrClosed = errors.New("cachetier: cache closed")

// recentSlots is the size of the table of fills ristretto may not have
// applied yet (a power of two).
const recentSlots = 4096

type recentFill[V any] struct {
	key string
	e   *entry[V]
}

// recent finds a fill of key in the direct-mapped table; the caller checks
// that it is still current.
func (c *Cache[V]) recent(key string) (*entry[V], bool) {
	r := c.justFilled[maphash.String(c.seed, key)&(recentSlots-1)].Load()
	if r == nil || r.key != key {
		return nil, false
	}
	return r.e, true
}

// entry is what ristretto holds: the value or the fact that there is none,
// and the version and generation the fill took before it loaded.
type entry[V any] struct {
	val     V
	found   bool
	gen     uint64
	ver     uint64
	expires int64 // unix nanos
}

// Cache is one read-through cache (e.g. one table's rows). It is safe for
// concurrent use; its methods are nil-safe no-ops on a nil *Cache.
type Cache[V any] struct {
	cfg        Config
	cost       func(V) int64
	rc         *ristretto.Cache[string, *entry[V]]
	sf         singleflight.Group
	seed       maphash.Seed
	now        func() time.Time
	gen        atomic.Uint64
	vers       []atomic.Uint64
	mask       uint64
	justFilled [recentSlots]atomic.Pointer[recentFill[V]]
	hotR       *hotTracker
	hotW       *hotTracker
	close      sync.Once
	done       atomic.Bool

	filter    keyFilter
	buildMu   sync.Mutex
	bloomKeys atomic.Uint64

	hits, misses, negHits, bloomRejects atomic.Uint64
	fills, droppedFills, rejectedFills  atomic.Uint64
	rejected                            *atomic.Uint64 // by ristretto's admission policy
	loadErrors, sharedLoads             atomic.Uint64
	invals                              sync.Map // source → *atomic.Uint64
}

// New makes a cache. cost reports a value's size in bytes (what it costs
// against MaxBytes, besides EntryOverhead and the key); nil counts values
// as 0 bytes.
func New[V any](cfg Config, cost func(V) int64) (*Cache[V], error) {
	return newCache(cfg, cost, time.Now)
}

func newCache[V any](cfg Config, cost func(V) int64, now func() time.Time) (*Cache[V], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cost == nil {
		cost = func(V) int64 { return 0 }
	}
	counters := max(10*cfg.MaxBytes/cfg.AvgEntryBytes, 1000)
	var rejected atomic.Uint64
	rc, err := ristretto.NewCache(&ristretto.Config[string, *entry[V]]{
		NumCounters: counters,
		MaxCost:     cfg.MaxBytes,
		BufferItems: 64,
		Metrics:     true,
		// Costs are what the caller says plus EntryOverhead: ristretto's own
		// estimate of its item would be counted twice.
		IgnoreInternalCost: true,
		OnReject:           func(*ristretto.Item[*entry[V]]) { rejected.Add(1) },
	})
	if err != nil {
		return nil, fmt.Errorf("cachetier: ristretto: %w", err)
	}
	c := &Cache[V]{
		rejected: &rejected,
		cfg:      cfg,
		cost:     cost,
		rc:       rc,
		seed:     maphash.MakeSeed(),
		now:      now,
		vers:     make([]atomic.Uint64, cfg.VersionStripes),
		mask:     uint64(cfg.VersionStripes - 1),
	}
	if cfg.HotKeys > 0 {
		c.hotR = newHotTracker(cfg.HotKeys, cfg.HotWindow, now)
		c.hotW = newHotTracker(cfg.HotKeys, cfg.HotWindow, now)
	}
	return c, nil
}

// Config returns the configuration the cache was made with.
func (c *Cache[V]) Config() Config { return c.cfg }

// Close releases ristretto's goroutines. Get after Close returns ErrClosed.
func (c *Cache[V]) Close() {
	if c == nil {
		return
	}
	c.close.Do(func() {
		c.done.Store(true)
		c.rc.Close()
	})
}

func (c *Cache[V]) stripe(row string) *atomic.Uint64 {
	return &c.vers[maphash.String(c.seed, row)&c.mask]
}

func fullKey(row, variant string) string {
	if variant == "" {
		return row
	}
	return row + "\x00" + variant
}

// Get returns the value of (row, variant): from memory if a current entry
// is there, else through load, shared with every concurrent Get of the same
// key and version. found is false if the row does not exist (the bloom
// filter, a negative entry or the loader said so).
func (c *Cache[V]) Get(ctx context.Context, row, variant string, load Loader[V]) (v V, found bool, err error) {
	if c == nil {
		return load(ctx, row, variant)
	}
	if c.done.Load() {
		return v, false, ErrClosed
	}
	c.hotR.record(row)
	key := fullKey(row, variant)
	st := c.stripe(row)
	e, ok := c.lookup(key, st)
	if ok {
		if e.found {
			c.hits.Add(1)
		} else {
			c.negHits.Add(1)
		}
		return e.val, e.found, nil
	}
	// The version is taken before the bloom filter is asked and before the
	// load starts: an invalidation after this point makes the fill stale.
	gen, ver := c.gen.Load(), st.Load()
	if !c.filter.mayExist(row) {
		c.bloomRejects.Add(1)
		return v, false, nil
	}
	c.misses.Add(1)
	flight := strconv.FormatUint(gen, 36) + ":" + strconv.FormatUint(ver, 36) + ":" + key
	ch := c.sf.DoChan(flight, func() (any, error) {
		// A fill of this key that ended between the look above and this
		// flight: as good as a hit, and no second load.
		if e, ok := c.lookup(key, st); ok {
			return e, nil
		}
		return c.fill(ctx, row, variant, key, st, gen, ver, load)
	})
	select {
	case r := <-ch:
		if r.Shared {
			c.sharedLoads.Add(1)
		}
		if r.Err != nil {
			return v, false, r.Err
		}
		e := r.Val.(*entry[V])
		return e.val, e.found, nil
	case <-ctx.Done():
		return v, false, ctx.Err()
	}
}

// Peek answers (row, variant) from memory only: ok is true when a current
// entry holds it, or when the bloom filter says the row does not exist
// (found false); those count as Get's hits would. It never loads: on ok
// false nothing is counted, and the caller is expected to call Get, which
// counts the miss and loads. It is the cheap first look of a caller that
// has a faster way to answer from memory than through Get.
func (c *Cache[V]) Peek(row, variant string) (v V, found, ok bool) {
	if c == nil || c.done.Load() {
		return v, false, false
	}
	key := fullKey(row, variant)
	if e, hit := c.lookup(key, c.stripe(row)); hit {
		c.hotR.record(row)
		if e.found {
			c.hits.Add(1)
		} else {
			c.negHits.Add(1)
		}
		return e.val, e.found, true
	}
	if !c.filter.mayExist(row) {
		c.hotR.record(row)
		c.bloomRejects.Add(1)
		return v, false, true
	}
	return v, false, false
}

// lookup finds a current entry of key: in ristretto, or among the fills
// ristretto may not have applied yet. The second look is also needed when
// ristretto holds an expired or invalidated entry of the key (it keeps
// entries a little past their expiry): its replacement may be waiting in
// ristretto's buffers, and a reader that missed it would load the key a
// second time.
func (c *Cache[V]) lookup(key string, st *atomic.Uint64) (*entry[V], bool) {
	if e, ok := c.rc.Get(key); ok && c.current(e, st) {
		return e, true
	}
	if e, ok := c.recent(key); ok && c.current(e, st) {
		return e, true
	}
	return nil, false
}

// current reports whether e may be returned: it is not expired, and no
// invalidation of its row or of the whole cache happened since its fill
// took its version.
func (c *Cache[V]) current(e *entry[V], st *atomic.Uint64) bool {
	return e.gen == c.gen.Load() && e.ver == st.Load() && c.now().UnixNano() < e.expires
}

func (c *Cache[V]) fill(ctx context.Context, row, variant, key string, st *atomic.Uint64, gen, ver uint64, load Loader[V]) (*entry[V], error) {
	// The load carries the values of the Get that started it but not its
	// cancellation: other readers share it.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.LoadTimeout)
	defer cancel()
	val, found, err := load(ctx, row, variant)
	if err != nil {
		c.loadErrors.Add(1)
		return nil, err
	}
	e := &entry[V]{val: val, found: found, gen: gen, ver: ver}
	ttl := c.cfg.TTL
	if !found {
		ttl = c.cfg.NegativeTTL
	} else {
		c.filter.add(row)
		if j := c.cfg.TTLJitter; j > 0 {
			ttl = time.Duration(float64(ttl) * (1 + j*(2*rand.Float64()-1)))
		}
	}
	if ttl <= 0 {
		return e, nil
	}
	if c.gen.Load() != gen || st.Load() != ver {
		// Facebook's lease rule: the row was invalidated while we loaded,
		// so what we loaded may predate that write. Readers that joined this
		// load began before the invalidation and may still see it.
		c.droppedFills.Add(1)
		return e, nil
	}
	e.expires = c.now().Add(ttl).UnixNano()
	// Ristretto keeps hashes of keys, not the keys: an entry costs its value
	// and the overhead.
	cost := int64(EntryOverhead)
	if found {
		cost += c.cost(val)
	}
	// Ristretto keeps an entry a little past our own expiry check, which is
	// the one that counts.
	if !c.rc.SetWithTTL(key, e, cost, ttl+time.Second) {
		c.rejectedFills.Add(1)
		return e, nil
	}
	// Sets are applied asynchronously: the entry also goes to a small
	// direct-mapped table that Get looks in when ristretto misses, so that
	// a reader arriving after this load's waiters were answered finds it
	// and does not start a second load of a hot key (waiting for the Set
	// instead costs a trip through ristretto's goroutine on every fill).
	c.justFilled[maphash.String(c.seed, key)&(recentSlots-1)].Store(&recentFill[V]{key: key, e: e})
	c.fills.Add(1)
	return e, nil
}

// Invalidate hides every entry of row (all variants) from later Gets and
// makes loads in flight for it not store what they load. Call it after the
// write is durable and before acknowledging it. It also marks row as
// possibly existing in the bloom filter (the write may have inserted it).
func (c *Cache[V]) Invalidate(row, source string) {
	if c == nil {
		return
	}
	c.stripe(row).Add(1)
	c.filter.add(row)
	c.rc.Del(fullKey(row, ""))
	c.hotW.record(row)
	c.countInval(source)
}

// InvalidateAll hides every entry from later Gets, for a write whose rows
// are unknown. Entries are reclaimed as they are replaced or evicted. Rows
// such a write inserted are not in the bloom filter: the caller must
// rebuild it (BuildBloom) if the write may have inserted rows; until then
// the filter is bypassed.
func (c *Cache[V]) InvalidateAll(source string, mayInsert bool) {
	if c == nil {
		return
	}
	if mayInsert {
		c.filter.mu.Lock()
		c.filter.cur, c.filter.building = nil, nil
		c.filter.mu.Unlock()
	}
	c.gen.Add(1)
	c.countInval(source)
}

func (c *Cache[V]) countInval(source string) {
	n, ok := c.invals.Load(source)
	if !ok {
		n, _ = c.invals.LoadOrStore(source, new(atomic.Uint64))
	}
	n.(*atomic.Uint64).Add(1)
}

// HotKeys returns at most n of the rows read most and written most in the
// last window (approximate counts, most first). n ≤ 0 means Config.HotKeys.
func (c *Cache[V]) HotKeys(n int) (reads, writes []HotKey) {
	if c == nil {
		return nil, nil
	}
	if n <= 0 {
		n = c.cfg.HotKeys
	}
	return c.hotR.top(n), c.hotW.top(n)
}
