package sqlmode

import (
	"reflect"
	"testing"
)

func TestSplitReturning(t *testing.T) {
	cases := []struct {
		in, base, clause string
		ok               bool
	}{
		{"INSERT INTO t (a) VALUES (1) RETURNING id, a", "INSERT INTO t (a) VALUES (1)", " RETURNING id, a", true},
		{"insert into t values (1) returning *;", "insert into t values (1)", " returning *", true},
		{"REPLACE INTO t SET a = 1 RETURNING a + 1 AS b", "REPLACE INTO t SET a = 1", " RETURNING a + 1 AS b", true},
		{"DELETE FROM t WHERE a = 'x RETURNING y' RETURNING a", "DELETE FROM t WHERE a = 'x RETURNING y'", " RETURNING a", true},
		{"INSERT INTO t (returning) VALUES (1)", "", "", false},
		{"INSERT INTO t SET returning = 1", "", "", false},
		{"INSERT INTO t SELECT t2.returning FROM t2", "", "", false},
		{"SELECT 1 RETURNING", "", "", false},
		{"INSERT INTO t VALUES (1) /* RETURNING x */", "", "", false},
		{"INSERT INTO t VALUES (1) RETURNING `returning`", "INSERT INTO t VALUES (1)", " RETURNING `returning`", true},
	}
	for _, tc := range cases {
		base, clause, ok := SplitReturning(tc.in, 0)
		if ok != tc.ok || ok && (base != tc.base || clause != tc.clause) {
			t.Errorf("SplitReturning(%q) = %q, %q, %v", tc.in, base, clause, ok)
		}
	}
	// Under NO_BACKSLASH_ESCAPES the literal ends at the backslash.
	if _, clause, ok := SplitReturning(`INSERT INTO t VALUES ('a\') RETURNING a`, NoBackslashEscapes); !ok || clause != " RETURNING a" {
		t.Errorf("NO_BACKSLASH_ESCAPES: %q %v", clause, ok)
	}
	if _, _, ok := SplitReturning(`INSERT INTO t VALUES ('a\') RETURNING a`, 0); ok {
		t.Error("default mode: RETURNING inside the literal was found")
	}
}

func TestSetAssignments(t *testing.T) {
	cases := map[string]string{
		"SET @v := 5":                    "SET @v = 5",
		"SET @a := 1, @b := (SELECT 2)":  "SET @a = 1, @b = (SELECT 2)",
		"SET @a = @b := 5":               "",
		"SET @a := @b := 5":              "SET @a = @b := 5",
		"set session sql_mode := 'ANSI'": "set session sql_mode = 'ANSI'",
		"SET @s := ':=', @t := f(1, 2)":  "SET @s = ':=', @t = f(1, 2)",
		"SELECT @v := 5":                 "",
		"SET @v = 5":                     "",
		"SET @`a:=b` := 1":               "SET @`a:=b` = 1",
	}
	for in, want := range cases {
		got, ok := SetAssignments(in, 0)
		if ok != (want != "") || ok && got != want {
			t.Errorf("SetAssignments(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

func TestQualifiersAndVerb(t *testing.T) {
	q := Qualifiers("SELECT a.b, `x y`.c.d, 'e.f', \"g\".h FROM db.t JOIN u ON u.k = t.k", AnsiQuotes)
	want := []string{"a", "x y", "g", "db", "u", "t"}
	if !reflect.DeepEqual(q, want) {
		t.Errorf("Qualifiers = %q, want %q", q, want)
	}
	if v := Verb("/* c */ -- x\n  call p()", 0); v != "CALL" {
		t.Errorf("Verb %q", v)
	}
	if v := Verb("/*!40101 SET x = 1 */", 0); v != "SET" {
		t.Errorf("Verb of an executable comment %q", v)
	}
	for _, s := range []string{"", "  ", "-- c", "/* x */ # y\n", ";"} {
		if s != ";" && !Empty(s, 0) {
			t.Errorf("Empty(%q) false", s)
		}
	}
	if Empty("DO 1", 0) {
		t.Error("Empty(DO 1)")
	}
}

func TestSplit(t *testing.T) {
	cases := map[string][]string{
		"SELECT 1; SELECT 2;":  {"SELECT 1", "SELECT 2"},
		"SELECT ';'; SELECT 2": {"SELECT ';'", "SELECT 2"},
		"DROP PROCEDURE IF EXISTS p; CREATE PROCEDURE p(r INT) BEGIN SELECT r; IF r > 1 THEN SELECT 2; END IF; SIGNAL SQLSTATE '45001' SET MESSAGE_TEXT = 'x'; END; CALL p(1)": {
			"DROP PROCEDURE IF EXISTS p",
			"CREATE PROCEDURE p(r INT) BEGIN SELECT r; IF r > 1 THEN SELECT 2; END IF; SIGNAL SQLSTATE '45001' SET MESSAGE_TEXT = 'x'; END",
			"CALL p(1)"},
		"CREATE FUNCTION f() RETURNS INT BEGIN DECLARE x INT DEFAULT IF(1, 2, 3); WHILE x < 5 DO SET x = x + 1; END WHILE; RETURN CASE WHEN x THEN 1 END; END; SELECT f()": {
			"CREATE FUNCTION f() RETURNS INT BEGIN DECLARE x INT DEFAULT IF(1, 2, 3); WHILE x < 5 DO SET x = x + 1; END WHILE; RETURN CASE WHEN x THEN 1 END; END",
			"SELECT f()"},
		"BEGIN; SELECT 1; COMMIT":                            {"BEGIN", "SELECT 1", "COMMIT"},
		"BEGIN NOT ATOMIC SELECT 1; SELECT 2; END; SELECT 3": {"BEGIN NOT ATOMIC SELECT 1; SELECT 2; END", "SELECT 3"},
		"SELECT 1; -- c":                                     {"SELECT 1"},
	}
	for in, want := range cases {
		if got := Split(in, 0); !reflect.DeepEqual(got, want) {
			t.Errorf("Split(%q) =\n  %q\nwant\n  %q", in, got, want)
		}
	}
	if !HasCompound("CREATE PROCEDURE p() BEGIN SELECT 1; END", 0) || HasCompound("BEGIN; SELECT 1", 0) || HasCompound("BEGIN WORK", 0) {
		t.Error("HasCompound")
	}
}
