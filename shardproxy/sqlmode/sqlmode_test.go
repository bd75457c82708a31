package sqlmode

import "testing"

func TestParse(t *testing.T) {
	cases := map[string]Mode{
		"": 0,
		"STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO": 0,
		"no_backslash_escapes":                           NoBackslashEscapes,
		"ANSI":                                           AnsiQuotes | PipesAsConcat,
		" ansi_quotes , NO_BACKSLASH_ESCAPES":            AnsiQuotes | NoBackslashEscapes,
		"ORACLE":                                         AnsiQuotes | PipesAsConcat,
		"PIPES_AS_CONCAT":                                PipesAsConcat,
	}
	for in, want := range cases {
		if got := Parse(in); got != want {
			t.Errorf("Parse(%q) = %v, want %v", in, got, want)
		}
	}
	if Parse("ANSI").Rewrites() != true || Parse("PIPES_AS_CONCAT").Rewrites() {
		t.Error("Rewrites")
	}
}

func TestNormalize(t *testing.T) {
	cases := []struct {
		mode    Mode
		in, out string
		pipes   bool
	}{
		{0, `SELECT 'a\'b', "c\"d"`, `SELECT 'a\'b', "c\"d"`, false},
		{NoBackslashEscapes, `SELECT 'a\'`, `SELECT 'a\\'`, false},
		{NoBackslashEscapes, `SELECT 'a\', "b\\c", 'it''s'`, `SELECT 'a\\', "b\\\\c", 'it''s'`, false},
		{NoBackslashEscapes, "SELECT `a\\b` FROM t # it\\'s\n", "SELECT `a\\b` FROM t # it\\'s\n", false},
		{NoBackslashEscapes, `SELECT 1 /* 'x\' */, '\' -- '\'`, `SELECT 1 /* 'x\' */, '\\' -- '\'`, false},
		{NoBackslashEscapes, `SELECT /*!50100 'a\' */ 1`, `SELECT /*!50100 'a\\' */ 1`, false},
		{AnsiQuotes, `SELECT "a""b" FROM "t"`, "SELECT `a\"b` FROM `t`", false},
		{AnsiQuotes, "SELECT \"a`b\", 'x\"y\\'z'", "SELECT `a``b`, 'x\"y\\'z'", false},
		{AnsiQuotes | NoBackslashEscapes, `SELECT "a\b", 'c\'`, "SELECT `a\\b`, 'c\\\\'", false},
		{PipesAsConcat, `SELECT a || b, '||'`, `SELECT a || b, '||'`, true},
		{PipesAsConcat, `SELECT '||' -- ||`, `SELECT '||' -- ||`, false},
		{0, `SELECT a || b`, `SELECT a || b`, false},
		{NoBackslashEscapes, `SELECT 1--1`, `SELECT 1--1`, false},
		{0, `SELECT é, t.é2, 'é', 1 AS 漢字`, "SELECT `é`, t.`é2`, 'é', 1 AS `漢字`", false},
		{0, `SELECT 7b, 0b, 0b101, 0x1F, 0xZ, 1e5, 1e+5, 12, 1abc`, "SELECT `7b`, `0b`, 0b101, 0x1F, `0xZ`, 1e5, 1e+5, 12, `1abc`", false},
		{0, `SELECT N"a", n'b', X"c", x'41'`, `SELECT N "a", n'b', X "c", x'41'`, false},
		{AnsiQuotes, "SELECT \"a\"`b`\"c\"é", "SELECT `a` `b` `c` `é`", false},
	}
	for _, tc := range cases {
		r := Normalize(tc.in, tc.mode)
		if r.SQL != tc.out || r.Pipes != tc.pipes || r.Unterminated {
			t.Errorf("Normalize(%q, %v) = %+v, want %q pipes %v", tc.in, tc.mode, r, tc.out, tc.pipes)
		}
	}
	for _, in := range []string{`SELECT 'a`, `SELECT "a`, "SELECT `a", `SELECT /* a`} {
		if r := Normalize(in, AnsiQuotes|NoBackslashEscapes); !r.Unterminated {
			t.Errorf("%q: not reported unterminated", in)
		}
	}
}

func BenchmarkNormalizeDefault(b *testing.B) {
	q := "SELECT c FROM sbtest1 WHERE id = 'abc\\'d' AND k = \"x\""
	for i := 0; i < b.N; i++ {
		Normalize(q, NoBackslashEscapes)
	}
}

// FuzzNormalize: Normalize never panics, its output needs no further
// rewriting in the default mode, and Needed is false only when nothing
// would change.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{`SELECT 'a\'b'`, `SELECT "x""y"`, "SELECT `a``b`", `SELECT é, 7b, N"x"`, `SELECT /*! 'a\' */ 1 -- x`, `SELECT 'unterminated`} {
		f.Add(s, uint8(0))
		f.Add(s, uint8(NoBackslashEscapes|AnsiQuotes))
	}
	f.Fuzz(func(t *testing.T, sql string, mode uint8) {
		m := Mode(mode) & (NoBackslashEscapes | AnsiQuotes | PipesAsConcat)
		r := Normalize(sql, m)
		if !Needed(sql, m) && r.SQL != sql {
			t.Fatalf("Needed false but Normalize(%q) = %q", sql, r.SQL)
		}
		if r.Unterminated {
			return
		}
		if again := Normalize(r.SQL, 0); again.SQL != r.SQL {
			t.Fatalf("Normalize(%q, %v) = %q, which the default mode rewrites again to %q", sql, m, r.SQL, again.SQL)
		}
	})
}

// BenchmarkNeededPointSelect is the cost every statement pays in the
// default mode.
func BenchmarkNeededPointSelect(b *testing.B) {
	q := "SELECT c FROM sbtest1 WHERE id=5021"
	for i := 0; i < b.N; i++ {
		if Needed(q, 0) {
			b.Fatal("needed")
		}
	}
}
