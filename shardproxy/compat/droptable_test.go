package compat

import (
	"strings"
	"testing"
)

// TestDropTableIfExistsUndeclared: DROP TABLE IF EXISTS of a table the
// proxy's config does not declare answers as MariaDB does for a table that
// does not exist, OK with note 1051 (it got 1146); DROP TABLE without IF
// EXISTS still gets the error, and a declared table dropped beside an
// undeclared one goes, with the note for the other.
func TestDropTableIfExistsUndeclared(t *testing.T) {
	p := connect(t, "direct_demo", "demo")
	warnings := func() {
		t.Helper()
		// The notes name the database: each side's own.
		d := strings.ReplaceAll(ask(t, p.direct, "SHOW WARNINGS").String(), "direct_demo.", "demo.")
		if x := ask(t, p.proxied, "SHOW WARNINGS").String(); d != x {
			t.Errorf("SHOW WARNINGS\n  MariaDB:         %s\n  through proxy:   %s", d, x)
		}
	}
	p.same(t, "direct_demo", "demo", "DROP TABLE IF EXISTS nosuch_undeclared")
	warnings()
	p.same(t, "direct_demo", "demo", "DROP TABLE IF EXISTS nosuch_undeclared, nosuch_other")
	warnings()
	p.same(t, "direct_demo", "demo",
		"DROP TABLE IF EXISTS refs",
		"CREATE TABLE refs (id BIGINT PRIMARY KEY, name VARCHAR(20))",
		"DROP TABLE IF EXISTS refs, nosuch_undeclared",
	)
	warnings()
	p.same(t, "direct_demo", "demo",
		"SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'refs'")
	if a := ask(t, p.proxied, "DROP TABLE nosuch_undeclared"); a.Err != 1146 {
		t.Errorf("DROP TABLE (no IF EXISTS) of an undeclared table through the proxy: %v, want 1146", a)
	}
}
