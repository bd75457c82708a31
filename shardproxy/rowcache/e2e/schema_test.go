package e2e

import (
	"testing"
	"time"

	"github.com/strata-db/strata/shardproxy/config"
)

// TestSchemaChangeOnShard: after ALTER TABLE done directly on the shard
// (seen in the binlog), a point select of a missing key, which the cache
// answers without a query once the bloom filter is rebuilt, has the
// table's new columns, and a dropped column is MariaDB's error 1054, not
// an empty result with the old column list.
func TestSchemaChangeOnShard(t *testing.T) {
	topo, direct := freshDatabase(t, "st")
	mustExec(t, direct, "CREATE TABLE i (id BIGINT PRIMARY KEY, v INT, c VARCHAR(10))")
	mustExec(t, direct, "INSERT INTO i VALUES (1, 1, 'a')")
	c := proxyConfig(topo, 5*time.Minute)
	c.Databases = map[string]*config.Database{"st": {Shard: topo.Shards()[0].Name}}
	c.Cache.Tables = map[string]*config.CacheTable{"st.i": {TTL: 5 * time.Minute}}
	p := startProxy(t, c)
	text := oneConn(t, openDB(t, p.srv.Addr(), "st", 1, "interpolateParams=true"))
	prep := oneConn(t, openDB(t, p.srv.Addr(), "st", 1))
	queries := []string{"SELECT * FROM i WHERE id = 1", "SELECT * FROM i WHERE id = 12345", "SELECT c FROM i WHERE id = 12345", "SELECT id, c FROM i WHERE id = 12345"}
	check := func(when string) {
		t.Helper()
		for _, q := range queries {
			want := answerText(direct, q)
			for i := range 3 {
				if got := answerText(text, q); got != want {
					t.Errorf("%s, text %s #%d:\n proxy  %s\n direct %s", when, q, i, got, want)
				}
			}
		}
		want := answerText(direct, "SELECT * FROM i WHERE id = 12345")
		for i := range 3 {
			if got := answerText(prep, "SELECT * FROM i WHERE id = ?", 12345); got != want {
				t.Errorf("%s, prepared #%d:\n proxy  %s\n direct %s", when, i, got, want)
			}
		}
	}
	check("before ALTER")
	gen := bloomBuilds(t, p)
	mustExec(t, direct, "ALTER TABLE i ADD COLUMN z INT DEFAULT 7, DROP COLUMN c")
	// The binlog's DDL turns the bloom filter off until it is rebuilt from
	// the shard; wait for the rebuild, after which missing keys are
	// answered from memory again.
	deadline := time.Now().Add(10 * time.Second)
	for b := bloomBuilds(t, p); b == gen || b == "building"; b = bloomBuilds(t, p) {
		if time.Now().After(deadline) {
			t.Fatal("the bloom filter was not rebuilt after the ALTER")
		}
		time.Sleep(20 * time.Millisecond)
	}
	check("after ALTER")
}

// bloomBuilds changes whenever the table's bloom filter is dropped or
// rebuilt: the key cache's generation and whether its filter is ready.
func bloomBuilds(t *testing.T, p *proxy) string {
	t.Helper()
	r := p.srv.RowCache().ShowCache()
	gen, ready := -1, -1
	for i, f := range r.Fields {
		switch f.Name {
		case "generation":
			gen = i
		case "bloom_ready":
			ready = i
		}
	}
	if gen < 0 || ready < 0 || len(r.Rows) == 0 {
		t.Fatalf("SHOW STRATA CACHE: %v", r)
	}
	if r.Rows[0][ready].ToString() != "1" && r.Rows[0][ready].ToString() != "true" {
		return "building"
	}
	return r.Rows[0][gen].ToString()
}

// TestKeyChangedOnShard: when the key's collation becomes
// case-insensitive by an ALTER done directly on the shard, 'ABC' finds the
// row 'abc' as MariaDB does (the cache, made for a binary key, steps
// aside), and a direct write of the row is seen under either spelling.
func TestKeyChangedOnShard(t *testing.T) {
	topo, direct := freshDatabase(t, "kc")
	mustExec(t, direct, "CREATE TABLE k (k VARCHAR(10) COLLATE utf8mb4_bin PRIMARY KEY, v INT)")
	mustExec(t, direct, "INSERT INTO k VALUES ('abc', 1)")
	c := proxyConfig(topo, 5*time.Minute)
	c.Databases = map[string]*config.Database{"kc": {Shard: topo.Shards()[0].Name}}
	c.Cache.Tables = map[string]*config.CacheTable{"kc.k": {TTL: 5 * time.Minute}}
	p := startProxy(t, c)
	px := oneConn(t, openDB(t, p.srv.Addr(), "kc", 1, "interpolateParams=true"))
	queries := []string{"SELECT * FROM k WHERE k = 'abc'", "SELECT * FROM k WHERE k = 'ABC'"}
	for _, q := range queries {
		for range 2 {
			if got, want := answerText(px, q), answerText(direct, q); got != want {
				t.Fatalf("before: %s: proxy %s, direct %s", q, got, want)
			}
		}
	}
	mustExec(t, direct, "ALTER TABLE k MODIFY k VARCHAR(10) COLLATE utf8mb4_general_ci")
	// Seen within the binlog's lag; then every answer is MariaDB's.
	settle := func(when string) {
		t.Helper()
		for _, q := range queries {
			want := answerText(direct, q)
			deadline := time.Now().Add(4 * time.Second)
			for got := answerText(px, q); got != want; got = answerText(px, q) {
				if time.Now().After(deadline) {
					t.Fatalf("%s: %s: proxy %s, direct %s", when, q, got, want)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
	settle("after the ALTER")
	// Past the bloom rebuild (2 s after the DDL), answers stay MariaDB's.
	time.Sleep(2500 * time.Millisecond)
	for _, q := range queries {
		for range 2 {
			if got, want := answerText(px, q), answerText(direct, q); got != want {
				t.Errorf("after the rebuild: %s: proxy %s, direct %s", q, got, want)
			}
		}
	}
	mustExec(t, direct, "UPDATE k SET v = 2 WHERE k = 'abc'")
	settle("after a direct write")
}
