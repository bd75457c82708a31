package config

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Cache configures the hot-row cache (package shardproxy/rowcache over
// cachetier): point selects by a cached table's primary key (or a declared
// unique key) outside transactions are answered from memory, writes through
// the proxy invalidate before the client's OK, and the shards' binlogs are
// tailed for writes that bypass this proxy.
type Cache struct {
	// Binlog tails every shard primary's binlog so that writes from other
	// proxies and direct connections invalidate too. Default true; turning
	// it off leaves such writes visible only after the TTL.
	Binlog bool `yaml:"binlog"`
	// User and Password read the tables' keys at start and tail the
	// binlogs (REPLICATION SLAVE). Default: the backend account.
	User     string `yaml:"user"`
	Password string `yaml:"password"`
	// MaxLag: while a shard's binlog is tailed further behind than this
	// (measured, see the README), point selects skip the cache, so a
	// write that bypasses the proxy is never hidden longer than about
	// this. Default 5s.
	MaxLag time.Duration `yaml:"max_lag"`
	// Tables to cache, by "db.table".
	Tables map[string]*CacheTable `yaml:"tables"`
}

// CacheTable caches one table.
type CacheTable struct {
	// TTL of a cached row, before ±10% jitter. Default 30s.
	TTL time.Duration `yaml:"ttl"`
	// NegativeTTL of "no such row". Default 2s.
	NegativeTTL time.Duration `yaml:"negative_ttl"`
	// Memory is the table's budget, e.g. 64MiB (B, KiB, MiB, GiB, or KB,
	// MB, GB as powers of 1000). Default 64MiB.
	Memory string `yaml:"memory"`
	// Unique lists one-column unique keys that point selects may use too.
	Unique []string `yaml:"unique"`
}

// DefaultCache has the binlog on and no tables.
func DefaultCache() Cache { return Cache{Binlog: true, MaxLag: 5 * time.Second} }

// MemoryBytes is Memory in bytes (64 MiB when empty).
func (t *CacheTable) MemoryBytes() (int64, error) {
	if t.Memory == "" {
		return 64 << 20, nil
	}
	return ParseBytes(t.Memory)
}

// ParseBytes reads a size such as 512MiB, 2GB or 1048576.
func ParseBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	units := []struct {
		suf string
		mul int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	mul := int64(1)
	for _, u := range units {
		if strings.HasSuffix(t, u.suf) {
			t, mul = strings.TrimSpace(strings.TrimSuffix(t, u.suf)), u.mul
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a positive size (e.g. 64MiB)", s)
	}
	return n * mul, nil
}

// CacheTableNames is the cached tables in order.
func (c *Cache) CacheTableNames() []string {
	out := make([]string, 0, len(c.Tables))
	for n := range c.Tables {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func (c *Config) validateCache() error {
	if c.Cache.MaxLag <= 0 {
		return fieldErr("cache.max_lag", "must be positive, e.g. 5s")
	}
	for _, name := range c.Cache.CacheTableNames() {
		t := c.Cache.Tables[name]
		p := "cache.tables." + name
		db, tbl, ok := strings.Cut(name, ".")
		if !ok || db == "" || tbl == "" || strings.Contains(tbl, ".") {
			return fieldErr(p, "name the table as db.table")
		}
		d := c.Databases[db]
		if d == nil {
			return fieldErr(p, "database %q is not in databases", db)
		}
		if d.Sharded {
			if _, declared := d.Tables[tbl]; !declared {
				return fieldErr(p, "table %q is not declared in databases.%s.tables", tbl, db)
			}
		}
		if t == nil {
			t = &CacheTable{}
			c.Cache.Tables[name] = t
		}
		if t.TTL == 0 {
			t.TTL = 30 * time.Second
		}
		if t.NegativeTTL == 0 {
			t.NegativeTTL = 2 * time.Second
		}
		switch {
		case t.TTL < 0:
			return fieldErr(p+".ttl", "must be positive, e.g. 30s")
		case t.NegativeTTL < 0:
			return fieldErr(p+".negative_ttl", "must not be negative")
		}
		if _, err := t.MemoryBytes(); err != nil {
			return fieldErr(p+".memory", "%v", err)
		}
		for i, u := range t.Unique {
			if u == "" {
				return fieldErr(fmt.Sprintf("%s.unique[%d]", p, i), "empty column name")
			}
		}
	}
	return nil
}
