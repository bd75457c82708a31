package sqlmode

import (
	"strings"
)

// Mode is the part of a sql_mode that changes how statements are read.
type Mode uint8

// The modes that change reading.
const (
	NoBackslashEscapes Mode = 1 << iota
	AnsiQuotes
	PipesAsConcat
)

// combos are MariaDB 10.11's combination modes, by the reading modes they
// set (the others they set do not change reading).
var combos = map[string]Mode{
	"ANSI":       PipesAsConcat | AnsiQuotes,
	"DB2":        PipesAsConcat | AnsiQuotes,
	"MAXDB":      PipesAsConcat | AnsiQuotes,
	"MSSQL":      PipesAsConcat | AnsiQuotes,
	"ORACLE":     PipesAsConcat | AnsiQuotes,
	"POSTGRESQL": PipesAsConcat | AnsiQuotes,
}

// Parse reads a sql_mode value (comma-separated names, any case, as SET
// sql_mode or @@sql_mode give it) and returns its reading modes. Names it
// does not know do not change reading.
func Parse(sqlMode string) Mode {
	var m Mode
	for _, name := range strings.Split(sqlMode, ",") {
		switch name = strings.ToUpper(strings.TrimSpace(name)); name {
		case "NO_BACKSLASH_ESCAPES":
			m |= NoBackslashEscapes
		case "ANSI_QUOTES":
			m |= AnsiQuotes
		case "PIPES_AS_CONCAT":
			m |= PipesAsConcat
		default:
			m |= combos[name]
		}
	}
	return m
}

// Rewrites reports whether statements read under m may need rewriting
// before vitess's parser reads them. False for the default mode: callers
// skip Normalize and pay nothing.
func (m Mode) Rewrites() bool { return m&(NoBackslashEscapes|AnsiQuotes) != 0 }

func (m Mode) String() string {
	var names []string
	if m&NoBackslashEscapes != 0 {
		names = append(names, "NO_BACKSLASH_ESCAPES")
	}
	if m&AnsiQuotes != 0 {
		names = append(names, "ANSI_QUOTES")
	}
	if m&PipesAsConcat != 0 {
		names = append(names, "PIPES_AS_CONCAT")
	}
	return strings.Join(names, ",")
}

// Needed reports whether Normalize may change sql under m. It is false,
// after one pass over the bytes, for the common case: the default mode and
// a statement of ASCII without double quotes or words like 7b. Callers check it first and
// pay nothing more when it is false.
func Needed(sql string, m Mode) bool {
	if m.Rewrites() {
		return true
	}
	prev := byte(0) // class of the byte before
	for i := 0; i < len(sql); i++ {
		cl := class[sql[i]]
		switch {
		case cl == clNeeds:
			return true
		case cl == clLetter && prev == clDigit:
			// A letter after a digit: the word may be an identifier
			// (7b) or a number (0x1F, 1e5). Let Normalize decide.
			return true
		}
		if cl == clDigit && prev == clLetter {
			cl = clLetter // a digit inside a word (t1) stays part of it
		}
		prev = cl
	}
	return false
}

// Byte classes for Needed.
const (
	clOther = iota
	clDigit
	clLetter // letters, _ and $
	clNeeds  // ", and bytes of multibyte characters
)

var class = func() (t [256]byte) {
	for c := 0; c < 256; c++ {
		switch {
		case c >= 0x80 || c == '"':
			t[c] = clNeeds
		case c >= '0' && c <= '9':
			t[c] = clDigit
		case isIdent(byte(c)):
			t[c] = clLetter
		}
	}
	return t
}()

// digitIdent reports whether a word that begins with a digit is, to
// MariaDB, an identifier (7b, 0b, 1abc) rather than a number (123, 0x1F,
// 0b101, 1e5, and 1e before a sign: 1e+5).
func digitIdent(w string) bool {
	if len(w) > 2 && w[0] == '0' && (w[1] == 'x' && allIn(w[2:], "0123456789abcdefABCDEF") || w[1] == 'b' && allIn(w[2:], "01")) {
		return false
	}
	i := 0
	for i < len(w) && w[i] >= '0' && w[i] <= '9' {
		i++
	}
	if i == len(w) {
		return false
	}
	if w[i] == 'e' || w[i] == 'E' {
		return !allIn(w[i+1:], "0123456789")
	}
	return true
}

func allIn(s, set string) bool {
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(set, s[i]) < 0 {
			return false
		}
	}
	return true
}

// isIdent: a byte that may be part of an unquoted identifier (or a number:
// MariaDB's identifiers may begin with digits). Bytes of multibyte
// characters are all at or above 0x80.
func isIdent(c byte) bool {
	return c >= 0x80 || c == '_' || c == '$' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// Result is what Normalize found besides the rewritten text.
type Result struct {
	// SQL is the statement as the default sql_mode reads it.
	SQL string
	// Pipes is true when the mode has PIPES_AS_CONCAT and the statement
	// has || outside literals, identifiers and comments: vitess would read
	// it as OR. The caller must not plan such a statement from SQL.
	Pipes bool
	// Unterminated is true when a literal, quoted identifier or comment
	// runs to the end: MariaDB answers 1064, and so will the parser.
	Unterminated bool
}

// Normalize rewrites a statement written under m into the text the
// default sql_mode reads as the same statement:
//
//   - under NO_BACKSLASH_ESCAPES every backslash inside a '…' or "…"
//     string literal is doubled;
//
//   - under ANSI_QUOTES a "…" identifier becomes `…` ("" inside becomes ",
//     and a backtick is doubled).
//
//   - an unquoted identifier holding a non-ASCII character is quoted
//     (`é`), and N"…", X"…" and B"…" get a space after the letter: in
//     both, vitess's parser reads differently from MariaDB's in every mode.
//
// Comments are kept as they are, except that the text of executable
// comments (/*! … */, /*M! … */), which MariaDB reads as SQL, is rewritten
// too. When nothing needs rewriting SQL is sql itself.
func Normalize(sql string, m Mode) Result {
	nbe, ansi := m&NoBackslashEscapes != 0, m&AnsiQuotes != 0
	var b *strings.Builder // nil until the first change
	last := 0              // sql[last:] is not yet copied into b
	flush := func(upto int) {
		if b == nil {
			b = &strings.Builder{}
			b.Grow(len(sql) + 16)
		}
		b.WriteString(sql[last:upto])
		last = upto
	}
	res := Result{}
	inExec := false // inside /*! … */
	n := len(sql)
	for i := 0; i < n; {
		c := sql[i]
		switch {
		case c == '\'' || (c == '"' && !ansi):
			end, closed, hasBS := scanString(sql, i, c, nbe)
			if !closed {
				res.Unterminated = true
			}
			if nbe && hasBS {
				flush(i)
				b.WriteString(strings.ReplaceAll(sql[i:end], `\`, `\\`))
				last = end
			}
			i = end
		case c == '"': // ANSI_QUOTES: an identifier
			end, closed := scanQuoted(sql, i, '"')
			if !closed {
				res.Unterminated = true
				i = end
				continue
			}
			flush(i)
			inner := strings.ReplaceAll(sql[i+1:end-1], `""`, `"`)
			writeIdent(b, sql, inner, end, ansi)
			last = end
			i = end
		case c == '`':
			end, closed := scanQuoted(sql, i, '`')
			if !closed {
				res.Unterminated = true
			}
			i = end
		case c == '#':
			i = lineEnd(sql, i)
		case c == '-' && i+1 < n && sql[i+1] == '-' && (i+2 == n || isDashSpace(sql[i+2])):
			i = lineEnd(sql, i)
		case c == '/' && i+1 < n && sql[i+1] == '*':
			switch {
			case i+2 < n && sql[i+2] == '!':
				inExec, i = true, i+3
			case i+3 < n && (sql[i+2] == 'M' || sql[i+2] == 'm') && sql[i+3] == '!':
				inExec, i = true, i+4
			default:
				j := strings.Index(sql[i+2:], "*/")
				if j < 0 {
					res.Unterminated = true
					i = n
				} else {
					i += 2 + j + 2
				}
			}
		case c == '*' && inExec && i+1 < n && sql[i+1] == '/':
			inExec, i = false, i+2
		case c == '|' && i+1 < n && sql[i+1] == '|':
			if m&PipesAsConcat != 0 {
				res.Pipes = true
			}
			i += 2
		case isIdent(c):
			j := i
			wide := false
			for j < n && isIdent(sql[j]) {
				wide = wide || sql[j] >= 0x80
				j++
			}
			switch {
			case wide || c >= '0' && c <= '9' && digitIdent(sql[i:j]):
				// vitess reads only ASCII in unquoted identifiers, and
				// none that begins with a digit; MariaDB reads both. Such
				// a word is never a keyword: quoting it is exact.
				flush(i)
				writeIdent(b, sql, sql[i:j], j, ansi)
				last = j
			case j == i+1 && j < n && sql[j] == '"' && !ansi && strings.IndexByte("NnXxBb", c) >= 0:
				// N"…", X"…", B"…": MariaDB reads a column N, X or B
				// aliased by the string; vitess would read one literal.
				flush(j)
				b.WriteByte(' ')
			}
			i = j
		default:
			i++
		}
	}
	if b == nil {
		res.SQL = sql
		return res
	}
	flush(n)
	res.SQL = b.String()
	return res
}

// writeIdent writes name as a backtick-quoted identifier. Two quoted
// identifiers side by side would read as one (`a“b` is a`b), so a space
// separates it from a backtick before it in the output or after it in the
// input (next is where the input goes on).
func writeIdent(b *strings.Builder, sql, name string, next int, ansi bool) {
	if s := b.String(); len(s) > 0 && s[len(s)-1] == '`' {
		b.WriteByte(' ')
	}
	b.WriteByte('`')
	b.WriteString(strings.ReplaceAll(name, "`", "``"))
	b.WriteByte('`')
	if next < len(sql) && (sql[next] == '`' || ansi && sql[next] == '"' || sql[next] >= 0x80) {
		b.WriteByte(' ')
	}
}

// scanString returns the end (one past the closing quote) of the string
// literal opened by q at sql[start], whether it was closed, and whether it
// holds a backslash. A doubled quote stays inside; without nbe a backslash
// escapes the byte after it (the bytes of a multibyte character are all
// at or above 0x80 in utf8mb4, so escaping its first byte keeps it whole).
func scanString(sql string, start int, q byte, nbe bool) (end int, closed, hasBS bool) {
	for i := start + 1; i < len(sql); i++ {
		switch sql[i] {
		case '\\':
			hasBS = true
			if !nbe {
				i++
			}
		case q:
			if i+1 < len(sql) && sql[i+1] == q {
				i++
				continue
			}
			return i + 1, true, hasBS
		}
	}
	return len(sql), false, hasBS
}

// scanQuoted is scanString for quoted identifiers: no escapes.
func scanQuoted(sql string, start int, q byte) (end int, closed bool) {
	for i := start + 1; i < len(sql); i++ {
		if sql[i] == q {
			if i+1 < len(sql) && sql[i+1] == q {
				i++
				continue
			}
			return i + 1, true
		}
	}
	return len(sql), false
}

func lineEnd(sql string, i int) int {
	if j := strings.IndexByte(sql[i:], '\n'); j >= 0 {
		return i + j + 1
	}
	return len(sql)
}

// isDashSpace: "--" starts a comment only when followed by a space or a
// control character, as in MariaDB.
func isDashSpace(c byte) bool { return c <= ' ' }
