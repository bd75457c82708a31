package executor

import "testing"

// TestTrimTerminator: a final ';' and the comments and spaces after it are
// dropped before parsing, as MariaDB reads them; anything else is kept.
func TestTrimTerminator(t *testing.T) {
	for in, want := range map[string]string{
		"INSERT INTO t VALUES (?) ;--":     "INSERT INTO t VALUES (?)",
		"SELECT 1;":                        "SELECT 1",
		"SELECT 1 ; ; -- done\n":           "SELECT 1",
		"SELECT 1; /* c */ # d":            "SELECT 1",
		"SELECT ';'":                       "SELECT ';'",
		"SELECT 1; SELECT 2":               "SELECT 1; SELECT 2",
		"SELECT 1;--x":                     "SELECT 1;--x", // --x is minus minus x
		";":                                ";",
		"SELECT 1 /* ; */":                 "SELECT 1 /* ; */",
		"CREATE PROCEDURE p() BEGIN END ;": "CREATE PROCEDURE p() BEGIN END",
	} {
		if got := trimTerminator(in); got != want {
			t.Errorf("trimTerminator(%q) = %q, want %q", in, got, want)
		}
	}
}
