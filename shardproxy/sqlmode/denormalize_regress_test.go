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
