package compat

import (
	"testing"
)

// TestReturning: INSERT, REPLACE and DELETE with MariaDB's RETURNING clause
// answer through the proxy as MariaDB answers directly, on an unsharded
// table, a sharded one (rows of both shards merged) and a reference table
// (one copy's rows), as text and as prepared statements.
func TestReturning(t *testing.T) {
	for _, tc := range []struct{ directDB, proxyDB, table string }{
		{"direct", "test", "items"},
		{"direct_demo", "demo", "items"},
		{"direct_demo", "demo", "refs"},
	} {
		for _, prep := range []bool{false, true} {
			name := tc.proxyDB + "/" + tc.table + "/text"
			params := []string{"interpolateParams=true"}
			if prep {
				name, params = tc.proxyDB+"/"+tc.table+"/prepared", nil
			}
			t.Run(name, func(t *testing.T) {
				p := connect(t, tc.directDB, tc.proxyDB, params...)
				tb := tc.table
				p.same(t, tc.directDB, tc.proxyDB,
					"DROP TABLE IF EXISTS "+tb,
					"CREATE TABLE "+tb+" (id BIGINT PRIMARY KEY, name VARCHAR(20), n INT DEFAULT 7)",
					"INSERT INTO "+tb+" (id, name) VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd') RETURNING id, name, n",
					"INSERT INTO "+tb+" (id, name) VALUES (5, 'e') RETURNING *",
					"INSERT INTO "+tb+" (id, name) VALUES (6, 'f') RETURNING id * 10 AS x, UPPER(name)",
					"REPLACE INTO "+tb+" (id, name) VALUES (2, 'B'), (7, 'g') RETURNING id, name",
					"INSERT INTO "+tb+" (id, name) VALUES (1, 'dup') RETURNING id",
					"SELECT id, name, n FROM "+tb+" ORDER BY id",
					"DELETE FROM "+tb+" WHERE id IN (1, 2, 3) RETURNING id, name",
					"DELETE FROM "+tb+" WHERE id = 4 RETURNING name",
					"DELETE FROM "+tb+" WHERE id = 99 RETURNING name",
					"SELECT id, name FROM "+tb+" ORDER BY id",
					"DROP TABLE "+tb,
				)
				// With parameters (a prepared statement without interpolateParams).
				p.same(t, tc.directDB, tc.proxyDB, "CREATE TABLE "+tb+" (id BIGINT PRIMARY KEY, name VARCHAR(20))")
				d := ask(t, p.direct, "INSERT INTO "+tb+" (id, name) VALUES (?, ?), (?, ?) RETURNING id, name", 11, "x", 12, "y")
				x := ask(t, p.proxied, "INSERT INTO "+tb+" (id, name) VALUES (?, ?), (?, ?) RETURNING id, name", 11, "x", 12, "y")
				if d.String() != x.String() {
					t.Errorf("INSERT ... RETURNING with parameters:\n  MariaDB: %v %s\n  proxy:   %v %s", d, d.Msg, x, x.Msg)
				}
				p.same(t, tc.directDB, tc.proxyDB, "DROP TABLE "+tb)
			})
		}
	}
}
