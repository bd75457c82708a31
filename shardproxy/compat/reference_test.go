package compat

import (
	"database/sql"
	"testing"
)

// TestReferenceWriteFailsEverywhere: a write that fails on every copy of
// a reference table (a duplicate key) returns once every copy answered,
// and the copies stay equal. It used to interrupt the other copies'
// connections: the next statement then got 2006 (i/o timeout) from a
// connection whose deadline the interruption had set after its statement
// ended, and a copy whose INSERT was cut in flight still ran it, after the
// session's DELETE, so one copy kept the row (about 1 run in 15).
func TestReferenceWriteFailsEverywhere(t *testing.T) {
	p := connect(t, "direct_demo", "demo")
	for i := 0; i < 25; i++ {
		p.same(t, "direct_demo", "demo",
			"DROP TABLE IF EXISTS refs",
			"CREATE TABLE refs (id BIGINT PRIMARY KEY, name VARCHAR(20))",
			"INSERT INTO refs (id, name) VALUES (1, 'a')",
			"INSERT INTO refs (id, name) VALUES (1, 'dup')",
			"DELETE FROM refs WHERE id IN (1, 2, 3)",
			"SELECT id, name FROM refs ORDER BY id",
		)
		for _, sh := range env.topo.Shards() {
			db, err := sql.Open("mysql", sh.Primary().DSN("demo"))
			if err != nil {
				t.Fatal(err)
			}
			var n int
			err = db.QueryRow("SELECT COUNT(*) FROM refs").Scan(&n)
			db.Close()
			if err != nil || n != 0 {
				t.Fatalf("round %d: %s's copy of refs holds %d rows after the DELETE (%v)", i, sh.Name, n, err)
			}
		}
		if t.Failed() {
			return
		}
	}
	p.same(t, "direct_demo", "demo", "DROP TABLE refs")
}
