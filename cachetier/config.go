package cachetier

import (
	"errors"
	"fmt"
	"time"
)

// Config sizes one cache. The zero value is not usable; start from
// DefaultConfig.
type Config struct {
	// MaxBytes is the memory budget: the sum of the values' costs (as the
	// caller's cost function reports them, in bytes) plus EntryOverhead per
	// entry. Ristretto evicts by TinyLFU admission and sampled LFU to keep
	// the total under it.
	MaxBytes int64
	// AvgEntryBytes is the expected size of an entry; with MaxBytes it sizes
	// ristretto's admission counters (ten per expected entry). Too small
	// wastes a little memory; too large makes admission less accurate.
	AvgEntryBytes int64
	// TTL is how long a found value is kept, before jitter.
	TTL time.Duration
	// TTLJitter spreads TTLs uniformly over TTL·(1±TTLJitter), so that keys
	// filled together do not expire together (avalanche). In [0, 1).
	TTLJitter float64
	// NegativeTTL is how long a load that found nothing is remembered. Keep
	// it short: a key inserted by a writer this cache does not hear about is
	// reported absent for up to NegativeTTL. 0 disables negative entries.
	NegativeTTL time.Duration
	// LoadTimeout bounds one load. The load is shared by every reader of the
	// key, so it does not run under any one reader's context.
	LoadTimeout time.Duration

	// BloomExpectedKeys and BloomFalsePositive size the bloom filter of
	// existing keys (about 1.8 MB per million keys at 0.001). A false
	// positive costs one load; the rate grows if the store outgrows the
	// expected count, so rebuild with a larger count when it does.
	BloomExpectedKeys  uint
	BloomFalsePositive float64

	// VersionStripes is the number of version counters keys are hashed
	// onto (a power of two). An invalidation also hides entries of the other
	// keys on its stripe until they are reloaded, so more stripes mean fewer
	// needless misses under writes, at 8 bytes each.
	VersionStripes int

	// HotKeys is how many keys HotKeys reports at most; HotWindow is the
	// sliding window the counts cover (counts age out between one and one
	// and a half windows after the access). HotKeys 0 disables tracking.
	HotKeys   int
	HotWindow time.Duration
}

// EntryOverhead is the memory an entry costs besides its value:
// ristretto's item and policy records and this package's entry header.
// It is counted against MaxBytes.
const EntryOverhead = 256

// DefaultConfig is a 64 MiB cache with 30 s TTLs (±10%), 2 s negative
// entries and a bloom filter for a million keys.
func DefaultConfig() Config {
	return Config{
		MaxBytes:           64 << 20,
		AvgEntryBytes:      512,
		TTL:                30 * time.Second,
		TTLJitter:          0.1,
		NegativeTTL:        2 * time.Second,
		LoadTimeout:        5 * time.Second,
		BloomExpectedKeys:  1_000_000,
		BloomFalsePositive: 0.001,
		VersionStripes:     1 << 16,
		HotKeys:            20,
		HotWindow:          10 * time.Second,
	}
}

// Validate reports every field that is wrong, each named.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("cachetier: config: %s: %s", field, fmt.Sprintf(format, args...)))
	}
	if c.MaxBytes <= 0 {
		bad("MaxBytes", "must be positive, got %d", c.MaxBytes)
	}
	if c.AvgEntryBytes <= 0 {
		bad("AvgEntryBytes", "must be positive, got %d", c.AvgEntryBytes)
	}
	if c.TTL <= 0 {
		bad("TTL", "must be positive, got %v", c.TTL)
	}
	if c.TTLJitter < 0 || c.TTLJitter >= 1 {
		bad("TTLJitter", "must be in [0, 1), got %v", c.TTLJitter)
	}
	if c.NegativeTTL < 0 {
		bad("NegativeTTL", "must not be negative, got %v", c.NegativeTTL)
	}
	if c.LoadTimeout <= 0 {
		bad("LoadTimeout", "must be positive, got %v", c.LoadTimeout)
	}
	if c.BloomExpectedKeys == 0 {
		bad("BloomExpectedKeys", "must be positive")
	}
	if c.BloomFalsePositive <= 0 || c.BloomFalsePositive >= 1 {
		bad("BloomFalsePositive", "must be in (0, 1), got %v", c.BloomFalsePositive)
	}
	if c.VersionStripes <= 0 || c.VersionStripes&(c.VersionStripes-1) != 0 {
		bad("VersionStripes", "must be a positive power of two, got %d", c.VersionStripes)
	}
	if c.HotKeys < 0 {
		bad("HotKeys", "must not be negative, got %d", c.HotKeys)
	}
	if c.HotKeys > 0 && c.HotWindow <= 0 {
		bad("HotWindow", "must be positive when HotKeys is set, got %v", c.HotWindow)
	}
	return errors.Join(errs...)
}
