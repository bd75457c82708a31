package config

import (
	"strings"
	"testing"
	"time"
)

func TestCacheSection(t *testing.T) {
	src := good + `cache:
  tables:
    demo.customers: {ttl: 10s, memory: 16MiB, unique: [email]}
    test.kv: {}
`
	c, err := Parse("cache.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Cache.Binlog {
		t.Error("binlog should default to on")
	}
	ct := c.Cache.Tables["demo.customers"]
	if n, _ := ct.MemoryBytes(); ct.TTL != 10*time.Second || n != 16<<20 || ct.NegativeTTL != 2*time.Second || ct.Unique[0] != "email" {
		t.Errorf("demo.customers: %+v", ct)
	}
	if kv := c.Cache.Tables["test.kv"]; kv == nil || kv.TTL != 30*time.Second {
		t.Errorf("test.kv defaults: %+v", kv)
	}
	for _, bad := range []struct{ yaml, want string }{
		{"cache:\n  tables:\n    demo.customers: {memory: lots}\n", "cache.tables.demo.customers.memory"},
		{"cache:\n  tables:\n    demo.nosuch: {}\n", "not declared"},
		{"cache:\n  tables:\n    customers: {}\n", "db.table"},
		{"cache:\n  tables:\n    demo.customers: {ttl: -1s}\n", "ttl"},
	} {
		_, err := Parse("bad.yaml", []byte(good+bad.yaml))
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: %v, want %q", bad.yaml, err, bad.want)
		}
	}
	if n, err := ParseBytes("2GB"); err != nil || n != 2e9 {
		t.Errorf("2GB = %d %v", n, err)
	}
}
