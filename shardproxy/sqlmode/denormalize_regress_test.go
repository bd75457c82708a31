package sqlmode

import "testing"

// A rewritten literal right after another one stays a literal of its own:
// 'a'"" is 'a' followed by an empty string, not 'a”' (a quote inside 'a').
// Found by TestDenormalizeMatchesMariaDB with seed 1796638790385790538.
func TestDenormalizeAdjacentLiterals(t *testing.T) {
	if got, want := Denormalize(`SELECT 'a'""#'`, NoBackslashEscapes), `SELECT 'a' ''#'`; got != want {
		t.Fatalf("Denormalize = %q, want %q", got, want)
	}
}
