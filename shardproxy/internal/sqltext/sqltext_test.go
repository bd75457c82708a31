package sqltext

import "testing"

func TestStripComments(t *testing.T) {
	for in, want := range map[string]string{
		"SELECT 1":                         "SELECT 1",
		"  /* a */ SELECT 1":               "SELECT 1",
		"/* a */ /* b */\nSELECT 1":        "SELECT 1",
		"-- a\nSELECT 1":                   "SELECT 1",
		"--\tx\nSELECT 1":                  "SELECT 1",
		"# a\n  SELECT 1":                  "SELECT 1",
		"/*! SELECT 1 */":                  "/*! SELECT 1 */",
		"/*M!100100 SELECT 1 */":           "/*M!100100 SELECT 1 */",
		"--1":                              "--1",
		"/* unterminated":                  "",
		"-- only a comment":                "",
		"/*/ SELECT 1":                     "",
		"/**/SELECT 1":                     "SELECT 1",
		"/* strata:primary */ SHOW STRATA": "SHOW STRATA",
	} {
		if got := StripComments(in); got != want {
			t.Errorf("StripComments(%q) = %q, want %q", in, got, want)
		}
	}
}
