package compat

import "testing"

// TestSetColonAssign: SET with := assigns as with =, directly and through
// the proxy; := inside an expression (SET @a = @v := 9, SELECT @v := …)
// works in an unsharded database, where the server evaluates it.
func TestSetColonAssign(t *testing.T) {
	p := connect(t, "direct", "test")
	p.same(t, "direct", "test",
		"SET @a = @v := 9",
		"SELECT @a, @v",
		"SELECT @v := @v + 1",
		"SELECT @v",
		"SET @w = NULL",
		"SELECT @w := 'x''y'",
		"SELECT @w, @a",
	)
	for _, tc := range []struct{ directDB, proxyDB string }{{"direct", "test"}, {"direct_demo", "demo"}} {
		t.Run(tc.proxyDB, func(t *testing.T) {
			p := connect(t, tc.directDB, tc.proxyDB)
			p.same(t, tc.directDB, tc.proxyDB,
				"SET @v := 5",
				"SELECT @v",
				"SET @a := 1, @b := @v + 1",
				"SELECT @a, @b",
				"SET @s := 'x:=y'",
				"SELECT @s",
				"SET SESSION sql_select_limit := 3",
				"SELECT @@sql_select_limit",
				"SET SESSION sql_select_limit := DEFAULT",
				"SET @bad := ",
			)
		})
	}
}
