package cachetier

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a settable clock for expiry and hot-key windows.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *fakeClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func testCache(t *testing.T, cfg Config, clk *fakeClock) *Cache[string] {
	t.Helper()
	now := time.Now
	if clk != nil {
		now = clk.now
	}
	c, err := newCache(cfg, func(v string) int64 { return int64(len(v)) }, now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// store is a fake backing store: a map of versioned values with a load
// counter.
type store struct {
	mu    sync.Mutex
	rows  map[string]int
	loads atomic.Int64
	delay time.Duration
}

func newStore() *store { return &store{rows: map[string]int{}} }

func (s *store) load(_ context.Context, row, _ string) (string, bool, error) {
	s.loads.Add(1)
	s.mu.Lock()
	v, ok := s.rows[row]
	s.mu.Unlock()
	if s.delay > 0 {
		time.Sleep(s.delay)
	}
	if !ok {
		return "", false, nil
	}
	return strconv.Itoa(v), true, nil
}

func (s *store) set(row string, v int) {
	s.mu.Lock()
	s.rows[row] = v
	s.mu.Unlock()
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	c := DefaultConfig()
	c.MaxBytes, c.TTLJitter, c.VersionStripes, c.BloomFalsePositive = 0, 1, 3, 0
	err := c.Validate()
	for _, field := range []string{"MaxBytes", "TTLJitter", "VersionStripes", "BloomFalsePositive"} {
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("Validate: %v, want it to name %s", err, field)
		}
	}
	if _, err := New[string](c, nil); err == nil {
		t.Error("New accepted a bad config")
	}
}

func TestHitMissNegative(t *testing.T) {
	clk := newFakeClock()
	c := testCache(t, DefaultConfig(), clk)
	s := newStore()
	s.set("a", 1)
	ctx := context.Background()
	for range 3 {
		v, found, err := c.Get(ctx, "a", "", s.load)
		if err != nil || !found || v != "1" {
			t.Fatalf("Get a = %q %v %v", v, found, err)
		}
		if _, found, _ := c.Get(ctx, "missing", "", s.load); found {
			t.Fatal("missing row found")
		}
	}
	if n := s.loads.Load(); n != 2 {
		t.Fatalf("loads = %d, want 2 (one per key)", n)
	}
	st := c.Stats()
	if st.Hits != 2 || st.NegativeHits != 2 || st.Misses != 2 || st.Fills != 2 {
		t.Fatalf("stats %+v", st)
	}
	// The negative entry lives NegativeTTL, the value TTL·(1±jitter).
	clk.advance(c.cfg.NegativeTTL + time.Millisecond)
	c.Get(ctx, "missing", "", s.load)
	c.Get(ctx, "a", "", s.load)
	if n := s.loads.Load(); n != 3 {
		t.Fatalf("loads = %d, want 3 (negative entry expired)", n)
	}
	clk.advance(c.cfg.TTL * 2)
	c.Get(ctx, "a", "", s.load)
	if n := s.loads.Load(); n != 4 {
		t.Fatalf("loads = %d, want 4 (value expired)", n)
	}
}

func TestInvalidateAllVariants(t *testing.T) {
	c := testCache(t, DefaultConfig(), nil)
	s := newStore()
	s.set("r", 1)
	ctx := context.Background()
	for _, variant := range []string{"", "cols:a", "cols:a,b"} {
		c.Get(ctx, "r", variant, s.load)
	}
	s.set("r", 2)
	c.Invalidate("r", SourceLocal)
	for _, variant := range []string{"", "cols:a", "cols:a,b"} {
		if v, _, _ := c.Get(ctx, "r", variant, s.load); v != "2" {
			t.Fatalf("variant %q after invalidate = %q, want 2", variant, v)
		}
	}
	s.set("r", 3)
	c.InvalidateAll(SourceLocal, false)
	if v, _, _ := c.Get(ctx, "r", "cols:a", s.load); v != "3" {
		t.Fatalf("after InvalidateAll = %q, want 3", v)
	}
	st := c.Stats()
	if st.Invalidations[SourceLocal] != 2 || st.Generation != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// A fill that loaded before an invalidation and finishes after it must not
// be stored, and a Get that starts after the invalidation must not join it.
func TestFillRacingInvalidateIsDropped(t *testing.T) {
	c := testCache(t, DefaultConfig(), nil)
	s := newStore()
	s.set("k", 1)
	loading, release := make(chan struct{}), make(chan struct{})
	var first atomic.Bool
	slow := func(ctx context.Context, row, v string) (string, bool, error) {
		val, found, err := s.load(ctx, row, v)
		if first.CompareAndSwap(false, true) {
			close(loading)
			<-release
		}
		return val, found, err
	}
	ctx := context.Background()
	got := make(chan string)
	go func() {
		v, _, _ := c.Get(ctx, "k", "", slow)
		got <- v
	}()
	<-loading // the first load has read 1
	s.set("k", 2)
	c.Invalidate("k", SourceLocal) // the write is acknowledged after this
	// A reader that starts now must see 2, not join the load of 1.
	if v, _, _ := c.Get(ctx, "k", "", slow); v != "2" {
		t.Fatalf("Get after invalidate = %q, want 2", v)
	}
	close(release)
	if v := <-got; v != "1" {
		t.Fatalf("racing reader = %q, want 1 (it began before the write)", v)
	}
	if v, _, _ := c.Get(ctx, "k", "", slow); v != "2" {
		t.Fatalf("Get after the racing fill = %q, want 2: a stale fill was stored", v)
	}
	if st := c.Stats(); st.DroppedFills != 1 {
		t.Fatalf("DroppedFills = %d, want 1", st.DroppedFills)
	}
}

// Writers bump a row in the store, invalidate, then publish the value as
// acknowledged; readers note the acknowledged value before they Get and
// must never get less. Run with -race.
func TestRaceFillVersusInvalidate(t *testing.T) {
	cfg := DefaultConfig()
	cfg.VersionStripes = 4 // collisions on purpose: they must not break anything
	c := testCache(t, cfg, nil)
	s := newStore()
	const keys = 4
	var acked [keys]atomic.Int64
	for k := range keys {
		s.set(strconv.Itoa(k), 0)
	}
	ctx := context.Background()
	rounds := 3000
	if testing.Short() {
		rounds = 500
	}
	var wg, wwg sync.WaitGroup
	var stale atomic.Int64
	var writes atomic.Int64
	var done atomic.Bool
	// Loads yield mid-way so that writes land inside them.
	load := func(ctx context.Context, row, v string) (string, bool, error) {
		runtime.Gosched()
		return s.load(ctx, row, v)
	}
	for w := range 2 {
		wwg.Add(1)
		go func() {
			defer wwg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for !done.Load() {
				if r.IntN(4) == 0 {
					time.Sleep(50 * time.Microsecond)
				}
				k := r.IntN(keys)
				s.mu.Lock()
				v := s.rows[strconv.Itoa(k)] + 1
				s.rows[strconv.Itoa(k)] = v
				s.mu.Unlock()
				c.Invalidate(strconv.Itoa(k), SourceLocal)
				// Publish only increases (two writers may ack out of order).
				for {
					old := acked[k].Load()
					if int64(v) <= old || acked[k].CompareAndSwap(old, int64(v)) {
						break
					}
				}
				writes.Add(1)
			}
		}()
	}
	for rd := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(rd), 2))
			for range rounds * 2 {
				k := r.IntN(keys)
				floor := acked[k].Load()
				v, found, err := c.Get(ctx, strconv.Itoa(k), "", load)
				if err != nil || !found {
					t.Errorf("Get: %v %v", found, err)
					return
				}
				if n, _ := strconv.Atoi(v); int64(n) < floor {
					stale.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	done.Store(true)
	wwg.Wait()
	st := c.Stats()
	t.Logf("writes %d, hits %d, misses %d, fills %d, dropped fills %d", writes.Load(), st.Hits, st.Misses, st.Fills, st.DroppedFills)
	if n := stale.Load(); n > 0 {
		t.Fatalf("%d reads older than a write acknowledged before they began", n)
	}
	if st.Hits == 0 {
		t.Fatal("no hits: the test did not exercise the cache")
	}
}

// Penetration: 100,000 lookups of random missing keys with the bloom
// filter built from the existing ones reach the loader at most 1% of the
// time.
func TestPenetration(t *testing.T) {
	cfg := DefaultConfig()
	cfg.BloomExpectedKeys = 100_000
	c := testCache(t, cfg, nil)
	s := newStore()
	for i := range 10_000 {
		s.set("id:"+strconv.Itoa(i), i)
	}
	err := c.BuildBloom(10_000, func(add func(string)) error {
		for k := range s.rows {
			add(k)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r := rand.New(rand.NewPCG(7, 7))
	const lookups = 100_000
	for range lookups {
		k := "id:" + strconv.Itoa(1_000_000+r.IntN(1<<30))
		if _, found, err := c.Get(ctx, k, "", s.load); found || err != nil {
			t.Fatalf("missing key %s found (%v)", k, err)
		}
	}
	loads := s.loads.Load()
	t.Logf("%d of %d missing-key lookups reached the loader", loads, lookups)
	if loads > lookups/100 {
		t.Fatalf("%d loads > 1%% of %d", loads, lookups)
	}
	// Existing keys still load, and a key inserted later (and invalidated
	// by its writer) is not rejected by the filter.
	if _, found, _ := c.Get(ctx, "id:5", "", s.load); !found {
		t.Fatal("existing key rejected")
	}
	s.set("id:new", 1)
	c.Invalidate("id:new", SourceLocal)
	if _, found, _ := c.Get(ctx, "id:new", "", s.load); !found {
		t.Fatal("inserted key rejected by the bloom filter")
	}
}

// A build that raced a table-wide invalidation of a write that may have
// inserted rows is refused, and the filter stays off.
func TestBloomBuildRacesInvalidateAll(t *testing.T) {
	c := testCache(t, DefaultConfig(), nil)
	err := c.BuildBloom(10, func(add func(string)) error {
		add("a")
		c.InvalidateAll(SourceBinlog, true)
		return nil
	})
	if !errors.Is(err, ErrBloomRaced) {
		t.Fatalf("BuildBloom = %v, want ErrBloomRaced", err)
	}
	if c.Stats().BloomReady {
		t.Fatal("bloom filter in use after a raced build")
	}
	s := newStore()
	s.set("b", 1)
	if _, found, _ := c.Get(context.Background(), "b", "", s.load); !found {
		t.Fatal("row rejected with no filter")
	}
}

// Breakdown: 64 readers of one hot key as it expires cause one load.
func TestBreakdownOneLoad(t *testing.T) {
	clk := newFakeClock()
	c := testCache(t, DefaultConfig(), clk)
	s := newStore()
	s.set("hot", 1)
	ctx := context.Background()
	if _, _, err := c.Get(ctx, "hot", "", s.load); err != nil {
		t.Fatal(err)
	}
	s.delay = 20 * time.Millisecond // a slow query makes the herd pile up
	var start, wg sync.WaitGroup
	start.Add(1)
	var errs atomic.Int64
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start.Wait()
			for range 200 {
				if _, found, err := c.Get(ctx, "hot", "", s.load); err != nil || !found {
					errs.Add(1)
				}
			}
		}()
	}
	clk.advance(c.cfg.TTL * 2) // the key expires as the herd arrives
	start.Done()
	wg.Wait()
	if errs.Load() > 0 {
		t.Fatalf("%d failed reads", errs.Load())
	}
	if n := s.loads.Load() - 1; n != 1 {
		t.Fatalf("%d loads after expiry, want 1", n)
	}
}

// A reader that gives up does not cancel the load the others share.
func TestWaiterCancelKeepsLoad(t *testing.T) {
	c := testCache(t, DefaultConfig(), nil)
	s := newStore()
	s.set("k", 1)
	s.delay = 50 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { _, _, err := c.Get(ctx, "k", "", s.load); done <- err }()
	time.Sleep(10 * time.Millisecond)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Get = %v", err)
	}
	if v, found, err := c.Get(context.Background(), "k", "", s.load); v != "1" || !found || err != nil {
		t.Fatalf("Get = %q %v %v", v, found, err)
	}
}

func TestLoadErrorNotCached(t *testing.T) {
	c := testCache(t, DefaultConfig(), nil)
	boom := errors.New("boom")
	var n atomic.Int64
	failing := func(context.Context, string, string) (string, bool, error) { n.Add(1); return "", false, boom }
	for range 2 {
		if _, _, err := c.Get(context.Background(), "k", "", failing); !errors.Is(err, boom) {
			t.Fatalf("Get = %v, want boom", err)
		}
	}
	if n.Load() != 2 || c.Stats().LoadErrors != 2 {
		t.Fatalf("loads %d, stats %+v", n.Load(), c.Stats())
	}
}

func TestTTLJitterSpreads(t *testing.T) {
	clk := newFakeClock()
	c := testCache(t, DefaultConfig(), clk)
	s := newStore()
	ctx := context.Background()
	lo, hi := int64(1<<62), int64(0)
	for i := range 500 {
		k := strconv.Itoa(i)
		s.set(k, i)
		c.Get(ctx, k, "", s.load)
		c.rc.Wait()
		e, ok := c.rc.Get(k)
		if !ok {
			t.Fatalf("entry %s not stored", k)
		}
		lo, hi = min(lo, e.expires), max(hi, e.expires)
	}
	base := clk.now().UnixNano()
	ttl, j := float64(c.cfg.TTL), c.cfg.TTLJitter
	if float64(lo-base) < ttl*(1-j)-1 || float64(hi-base) > ttl*(1+j)+1 {
		t.Fatalf("expiries outside TTL±jitter: [%v, %v]", time.Duration(lo-base), time.Duration(hi-base))
	}
	if float64(hi-lo) < ttl*j {
		t.Fatalf("expiries spread over only %v", time.Duration(hi-lo))
	}
}

// The budget holds: filling far more than MaxBytes keeps Bytes at or under
// it.
func TestBudget(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxBytes = 1 << 20
	c := testCache(t, cfg, nil)
	val := strings.Repeat("x", 1000)
	ctx := context.Background()
	load := func(context.Context, string, string) (string, bool, error) { return val, true, nil }
	for i := range 5000 { // ~5.7 MB offered
		c.Get(ctx, strconv.Itoa(i), "", load)
	}
	c.rc.Wait()
	st := c.Stats()
	t.Logf("entries %d, bytes %d of %d", st.Entries, st.Bytes, st.MaxBytes)
	if st.Bytes > cfg.MaxBytes || st.Bytes < cfg.MaxBytes/2 {
		t.Fatalf("bytes %d, budget %d", st.Bytes, cfg.MaxBytes)
	}
	if per := st.Bytes / st.Entries; per < 1000+EntryOverhead {
		t.Fatalf("cost per entry %d < value + overhead", per)
	}
}

func TestNilAndClosed(t *testing.T) {
	var c *Cache[string]
	s := newStore()
	s.set("k", 1)
	if v, found, _ := c.Get(context.Background(), "k", "", s.load); v != "1" || !found {
		t.Fatal("nil cache does not pass through")
	}
	c.Invalidate("k", SourceLocal)
	c.InvalidateAll(SourceLocal, true)
	c.Close()
	_ = c.Stats()
	live := testCache(t, DefaultConfig(), nil)
	live.Close()
	live.Close()
	if _, _, err := live.Get(context.Background(), "k", "", s.load); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Close = %v", err)
	}
}

func ExampleCache() {
	users := map[string]string{"1": "ada", "2": "grace"}
	c, _ := New[string](DefaultConfig(), func(v string) int64 { return int64(len(v)) })
	defer c.Close()
	load := func(_ context.Context, row, _ string) (string, bool, error) {
		v, ok := users[row]
		return v, ok, nil
	}
	v, found, _ := c.Get(context.Background(), "1", "", load)
	fmt.Println(v, found)
	users["1"] = "ada lovelace"
	c.Invalidate("1", SourceLocal) // after the write, before acknowledging it
	v, _, _ = c.Get(context.Background(), "1", "", load)
	fmt.Println(v)
	// Output:
	// ada true
	// ada lovelace
}
