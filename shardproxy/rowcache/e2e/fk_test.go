package e2e

import (
	"testing"
	"time"

	"github.com/strata-db/strata/shardproxy/config"
)

// TestForeignKeyCascade: rows of a cached table changed by a foreign key's
// ON DELETE / ON UPDATE CASCADE or SET NULL, which neither the statement
// (it names the parent) nor the binlog (InnoDB does not log cascaded rows)
// attributes to them, are not served stale: a write of the parent through
// the proxy is seen at once, a direct one within the binlog's lag. A
// self-referencing table's cascade too.
func TestForeignKeyCascade(t *testing.T) {
	topo, direct := freshDatabase(t, "fk")
	mustExec(t, direct, "CREATE TABLE p (id INT PRIMARY KEY)")
	mustExec(t, direct, `CREATE TABLE ch (id INT PRIMARY KEY, pid INT, qid INT,
		FOREIGN KEY (pid) REFERENCES p (id) ON DELETE CASCADE ON UPDATE CASCADE,
		FOREIGN KEY (qid) REFERENCES p (id) ON DELETE SET NULL)`)
	mustExec(t, direct, "CREATE TABLE tree (id INT PRIMARY KEY, parent INT, FOREIGN KEY (parent) REFERENCES tree (id) ON DELETE CASCADE)")
	mustExec(t, direct, "INSERT INTO p VALUES (1), (2), (3), (4), (5), (6)")
	mustExec(t, direct, "INSERT INTO ch VALUES (10, 1, NULL), (20, 2, NULL), (30, 3, NULL), (40, 4, NULL), (50, 6, 5)")
	mustExec(t, direct, "INSERT INTO tree VALUES (1, NULL), (2, 1)")
	c := proxyConfig(topo, 5*time.Minute)
	c.Databases = map[string]*config.Database{"fk": {Shard: topo.Shards()[0].Name}}
	c.Cache.Tables = map[string]*config.CacheTable{"fk.ch": {TTL: 5 * time.Minute}, "fk.tree": {TTL: 5 * time.Minute}}
	p := startProxy(t, c)
	px := oneConn(t, openDB(t, p.srv.Addr(), "fk", 1, "interpolateParams=true"))
	queries := []string{
		"SELECT * FROM ch WHERE id = 10", "SELECT * FROM ch WHERE id = 20", "SELECT * FROM ch WHERE id = 30",
		"SELECT * FROM ch WHERE id = 40", "SELECT * FROM ch WHERE id = 50", "SELECT * FROM tree WHERE id = 2",
	}
	for _, q := range queries {
		for range 2 {
			if got, want := answerText(px, q), answerText(direct, q); got != want {
				t.Fatalf("before: %s: proxy %s, direct %s", q, got, want)
			}
		}
	}
	// Through the proxy: seen as soon as the write is acknowledged.
	mustExec(t, px, "DELETE FROM p WHERE id = 1")
	mustExec(t, px, "UPDATE p SET id = 22 WHERE id = 2")
	mustExec(t, px, "DELETE FROM p WHERE id = 5")
	mustExec(t, px, "DELETE FROM tree WHERE id = 1")
	for _, q := range []string{queries[0], queries[1], queries[4], queries[5]} {
		if got, want := answerText(px, q), answerText(direct, q); got != want {
			t.Errorf("after a write through the proxy: %s: proxy %s, direct %s", q, got, want)
		}
	}
	// Directly on the primary: seen within the binlog's lag.
	mustExec(t, direct, "DELETE FROM p WHERE id = 3")
	mustExec(t, direct, "UPDATE p SET id = 44 WHERE id = 4")
	for _, q := range []string{queries[2], queries[3]} {
		want := answerText(direct, q)
		deadline := time.Now().Add(4 * time.Second)
		for got := answerText(px, q); got != want; got = answerText(px, q) {
			if time.Now().After(deadline) {
				t.Errorf("after a direct write: %s: proxy %s, direct %s", q, got, want)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// TestTriggersAndViews: a write through the proxy that reaches a cached
// table through a trigger of another table, or through an updatable view
// of it, is seen as soon as it is acknowledged (the binlog is off here,
// so only the proxy's own invalidation can show it), inserted rows too.
func TestTriggersAndViews(t *testing.T) {
	topo, direct := freshDatabase(t, "tv")
	mustExec(t, direct, "CREATE TABLE posts (id INT PRIMARY KEY, comments INT NOT NULL DEFAULT 0)")
	mustExec(t, direct, "CREATE TABLE comments (id INT PRIMARY KEY, post INT)")
	mustExec(t, direct, "CREATE TRIGGER comment_added AFTER INSERT ON comments FOR EACH ROW UPDATE posts SET comments = comments + 1 WHERE id = NEW.post")
	mustExec(t, direct, "CREATE TRIGGER post_made AFTER INSERT ON comments FOR EACH ROW INSERT IGNORE INTO posts (id) VALUES (NEW.post + 1000)")
	mustExec(t, direct, "CREATE VIEW recent AS SELECT id, comments FROM posts WHERE id > 0")
	mustExec(t, direct, "INSERT INTO posts (id) VALUES (1), (2)")
	c := proxyConfig(topo, 5*time.Minute)
	c.Cache.Binlog = false
	c.Databases = map[string]*config.Database{"tv": {Shard: topo.Shards()[0].Name}}
	c.Cache.Tables = map[string]*config.CacheTable{"tv.posts": {TTL: 5 * time.Minute, NegativeTTL: 5 * time.Minute}}
	p := startProxy(t, c)
	px := oneConn(t, openDB(t, p.srv.Addr(), "tv", 1, "interpolateParams=true"))
	queries := []string{"SELECT * FROM posts WHERE id = 1", "SELECT * FROM posts WHERE id = 2", "SELECT * FROM posts WHERE id = 1001", "SELECT * FROM posts WHERE id = 3"}
	check := func(when string) {
		t.Helper()
		for _, q := range queries {
			for range 2 {
				if got, want := answerText(px, q), answerText(direct, q); got != want {
					t.Errorf("%s: %s: proxy %s, direct %s", when, q, got, want)
				}
			}
		}
	}
	check("before")
	mustExec(t, px, "INSERT INTO comments VALUES (1, 1)")
	check("after a trigger's update and insert")
	mustExec(t, px, "UPDATE recent SET comments = 7 WHERE id = 2")
	check("after an update through a view")
	mustExec(t, px, "INSERT INTO recent (id, comments) VALUES (3, 1)")
	check("after an insert through a view")
}
