package sqlmode

import "testing"

// FuzzScan: the tokenizer and the helpers on top of it never panic, and
// tokens lie within the statement in order.
func FuzzScan(f *testing.F) {
	for _, s := range []string{"INSERT INTO t VALUES (1) RETURNING id", "SET @a := 1, b = 2", "SELECT db.t.c FROM `d`.`t`", `SELECT "a\"b" || 'c\'d'`, "/*!50000 SELECT */ 1 # x\n", "SELECT x'ff', b'01', 0x1g, 1e, @`x`, @@global.y", "DELETE FROM t RETURNING"} {
		f.Add(s, uint8(0))
		f.Add(s, uint8(NoBackslashEscapes|AnsiQuotes|PipesAsConcat))
	}
	f.Fuzz(func(t *testing.T, sql string, mode uint8) {
		m := Mode(mode) & (NoBackslashEscapes | AnsiQuotes | PipesAsConcat)
		prev := 0
		for _, tk := range Tokens(sql, m) {
			if tk.Pos < prev || tk.End < tk.Pos || tk.End > len(sql) {
				t.Fatalf("token %+v out of order or range in %q", tk, sql)
			}
			prev = tk.End
			_ = tk.Text(sql)
			_ = tk.Name(sql)
		}
		Verb(sql, m)
		Empty(sql, m)
		SplitReturning(sql, m)
		SetAssignments(sql, m)
		Qualifiers(sql, m)
		Denormalize(sql, m)
	})
}
