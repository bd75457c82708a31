package compat

import "testing"

// TestSQLMode: under each sql_mode that changes how text is read, the same
// statements get the same answers directly and through the proxy, on an
// unsharded and on a sharded table (where the proxy routes by what it
// read). Without the proxy's sqlmode rewriting, the backslash statements
// get 1064 through the proxy, or different rows.
func TestSQLMode(t *testing.T) {
	for _, tc := range []struct{ directDB, proxyDB string }{{"direct", "test"}, {"direct_demo", "demo"}} {
		t.Run(tc.proxyDB, func(t *testing.T) {
			p := connect(t, tc.directDB, tc.proxyDB)
			p.same(t, tc.directDB, tc.proxyDB,
				"DROP TABLE IF EXISTS items",
				"CREATE TABLE items (id BIGINT PRIMARY KEY, s VARCHAR(100))",
				"SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES'",
				`INSERT INTO items (id, s) VALUES (1, 'a\b'), (2, 'it''s'), (3, '\'), (4, 'x\n'), (5, "q\")`,
				`SELECT id, s, LENGTH(s) FROM items ORDER BY id`,
				`SELECT id FROM items WHERE s = 'a\b'`,
				`SELECT id FROM items WHERE s = '\' AND id = 3`,
				`SELECT 'x\' AS v`,
				`SELECT * FROM items WHERE id = 3 OR s = ' OR ''1''=''1'`,
				`UPDATE items SET s = 'new\' WHERE id = 2`,
				`SELECT s FROM items WHERE id = 2`,
				`DELETE FROM items WHERE s = 'x\n'`,
				`SELECT COUNT(*) FROM items`,
				"SET SESSION sql_mode = 'ANSI_QUOTES'",
				`SELECT "id", "s" FROM "items" WHERE "id" = 1`,
				`SELECT 'it''s' AS "a""b"`,
				`INSERT INTO "items" ("id", "s") VALUES (10, 'a\'')`,
				`SELECT "s" FROM items WHERE id = 10`,
				"SET SESSION sql_mode = 'ANSI'",
				`SELECT "id" FROM "items" WHERE id = 1`,
				"SET SESSION sql_mode = 'ANSI_QUOTES,NO_BACKSLASH_ESCAPES'",
				`SELECT "s" FROM "items" WHERE "s" = 'a\b'`,
				"SET SESSION sql_mode = DEFAULT",
				`SELECT s FROM items WHERE s = 'a\\b'`,
				`SELECT 'x\'y' AS v`,
				"SET sql_mode = CONCAT('NO_BACKSLASH', '_ESCAPES')",
				`SELECT '\' AS v`,
				"SET sql_mode = ''",
				`SELECT é FROM (SELECT 1 AS é) t`,
				"DROP TABLE items",
			)
		})
	}
}

// TestSQLModePipes: under ANSI (PIPES_AS_CONCAT) || concatenates, also
// after a national literal (TestMatchesMariaDB's seed 1796638956091622345
// found N'a ' then || then an empty string), in the unsharded database, where the statement
// goes to the server as the client's sql_mode reads it.
func TestSQLModePipes(t *testing.T) {
	p := connect(t, "direct", "test")
	p.same(t, "direct", "test",
		"SET SESSION sql_mode = 'ANSI'",
		`SELECT N'a '||'' AS v`,
		`SELECT N'a '||''`,
		`SELECT 'x'||'y'||N'z' AS v, 1||0 AS w`,
		"SET SESSION sql_mode = 'PIPES_AS_CONCAT'",
		`SELECT N'a '||'b' AS v`,
		"SET SESSION sql_mode = DEFAULT",
		`SELECT N'a '||'' AS v`,
	)
}
