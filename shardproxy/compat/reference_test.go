package compat

import "testing"

// TestReferenceWriteFailsEverywhere: a write that fails on every copy of
// a reference table (a duplicate key) interrupts the other copies'
// connections; none of them may serve the next statement (it used to get
// 2006, i/o timeout, from a connection whose deadline the interruption
// had set after its statement ended).
func TestReferenceWriteFailsEverywhere(t *testing.T) {
	p := connect(t, "direct_demo", "demo")
	for i := 0; i < 10; i++ {
		p.same(t, "direct_demo", "demo",
			"DROP TABLE IF EXISTS refs",
			"CREATE TABLE refs (id BIGINT PRIMARY KEY, name VARCHAR(20))",
			"INSERT INTO refs (id, name) VALUES (1, 'a')",
			"INSERT INTO refs (id, name) VALUES (1, 'dup')",
			"DELETE FROM refs WHERE id IN (1, 2, 3)",
			"SELECT id, name FROM refs ORDER BY id",
		)
	}
	p.same(t, "direct_demo", "demo", "DROP TABLE refs")
}
