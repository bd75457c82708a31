package e2e

import (
	"testing"
	"time"

	"github.com/strata-db/strata/shardproxy/config"
)

// TestOnDuplicateKeyMovesKey: an INSERT … ON DUPLICATE KEY UPDATE through
// the proxy that changes the existing row's primary key is seen at once
// under both keys (the binlog is off here, so only the proxy's own
// invalidation can show it): the new key was remembered as missing (a
// negative entry, the bloom filter) before the write.
func TestOnDuplicateKeyMovesKey(t *testing.T) {
	topo, direct := freshDatabase(t, "od")
	mustExec(t, direct, "CREATE TABLE t (id BIGINT PRIMARY KEY, v INT)")
	mustExec(t, direct, "INSERT INTO t VALUES (1, 1), (2, 2), (3, 3), (4, 4), (5, 5)")
	c := proxyConfig(topo, 5*time.Minute)
	c.Cache.Binlog = false
	c.Databases = map[string]*config.Database{"od": {Shard: topo.Shards()[0].Name}}
	c.Cache.Tables = map[string]*config.CacheTable{"od.t": {TTL: 5 * time.Minute, NegativeTTL: 5 * time.Minute}}
	p := startProxy(t, c)
	px := oneConn(t, openDB(t, p.srv.Addr(), "od", 1, "interpolateParams=true"))
	prep := oneConn(t, openDB(t, p.srv.Addr(), "od", 1))
	for _, w := range []struct {
		from, to int
		sql      string
	}{
		{1, 101, "INSERT INTO t (id, v) VALUES (1, 0) ON DUPLICATE KEY UPDATE id = 101"},
		{2, 102, "INSERT INTO t (id, v) VALUES (2, 0) ON DUPLICATE KEY UPDATE id = id + 100"},
		{3, 203, "INSERT INTO t (id, v) VALUES (3, 0) ON DUPLICATE KEY UPDATE id = VALUES(id) + 200"},
		{4, 104, "INSERT INTO t (id, v) VALUES (4, 0) ON DUPLICATE KEY UPDATE v = 9, id = 104"},
	} {
		// Fill both keys (the new one as missing), text and prepared.
		for range 2 {
			for _, k := range []int{w.from, w.to} {
				q := "SELECT * FROM t WHERE id = ?"
				if got, want := answerText(px, q, k), answerText(direct, q, k); got != want {
					t.Fatalf("before %s: id %d: proxy %s, direct %s", w.sql, k, got, want)
				}
				answerText(prep, q, k)
			}
		}
		mustExec(t, px, w.sql)
		for _, k := range []int{w.from, w.to} {
			q := "SELECT * FROM t WHERE id = ?"
			want := answerText(direct, q, k)
			if got := answerText(px, q, k); got != want {
				t.Errorf("after %s: text, id %d: proxy %s, direct %s", w.sql, k, got, want)
			}
			if got := answerText(prep, q, k); got != want {
				t.Errorf("after %s: prepared, id %d: proxy %s, direct %s", w.sql, k, got, want)
			}
		}
	}
	// id = id (or LAST_INSERT_ID(id)), the ORMs' idiom, leaves the key:
	// the row stays cached under it.
	mustExec(t, px, "INSERT INTO t (id, v) VALUES (5, 0) ON DUPLICATE KEY UPDATE id = LAST_INSERT_ID(id), v = 55")
	if got, want := answerText(px, "SELECT * FROM t WHERE id = 5"), answerText(direct, "SELECT * FROM t WHERE id = 5"); got != want {
		t.Errorf("after id = LAST_INSERT_ID(id): proxy %s, direct %s", got, want)
	}
}
