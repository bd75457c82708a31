package sqlmode

import "testing"

// A rewritten literal right after another one stays a literal of its own:
// 'a' then "" is two literals (the second empty), not one literal whose
// doubled quote reads as a quote inside it.
// Found by TestDenormalizeMatchesMariaDB with seed 1796638790385790538.
func TestDenormalizeAdjacentLiterals(t *testing.T) {
	if got, want := Denormalize(`SELECT 'a'""#'`, NoBackslashEscapes), `SELECT 'a' ''#'`; got != want {
		t.Fatalf("Denormalize = %q, want %q", got, want)
	}
}

// TestPipesLeftToServer: under PIPES_AS_CONCAT, || after a national
// literal is reported (Pipes), so that the proxy leaves the statement to
// the server rather than read OR; found by TestMatchesMariaDB's seed
// 1796638956091622345 (N'a ' || an empty string is 'a ' under ANSI, 0 as OR).
func TestPipesLeftToServer(t *testing.T) {
	for _, q := range []string{"SELECT N'a '||''", "SELECT 'a'||'b'", "SELECT x||y FROM t", "SELECT 1 /*! || 2 */"} {
		if r := Normalize(q, Parse("ANSI")); !r.Pipes {
			t.Errorf("%s under ANSI: Pipes false", q)
		}
		if r := Normalize(q, 0); r.Pipes {
			t.Errorf("%s under the default mode: Pipes true", q)
		}
	}
	for _, q := range []string{"SELECT '||'", "SELECT `a||b`", "SELECT 1 /* || */", "SELECT 1 -- ||"} {
		if r := Normalize(q, Parse("ANSI")); r.Pipes {
			t.Errorf("%s under ANSI: Pipes true (|| is not an operator there)", q)
		}
	}
}
