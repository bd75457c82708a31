package sqlmode

import "strings"

// Denormalize rewrites a statement in the default mode's text (as the
// proxy writes the statements it sends to shards) into the same statement
// for a server whose session has mode m. Only NO_BACKSLASH_ESCAPES needs
// it: every string literal is rewritten without backslash escapes ('it\'s'
// becomes 'it”s', '\n' a newline itself, '\\' one backslash). Backtick
// identifiers and single-quoted strings read alike under ANSI_QUOTES, and
// the proxy writes no "…" strings of its own; one the client wrote is
// rewritten as a '…' string here too.
func Denormalize(sql string, m Mode) string {
	if m&NoBackslashEscapes == 0 || strings.IndexByte(sql, '\\') < 0 && strings.IndexByte(sql, '"') < 0 {
		return sql
	}
	var b strings.Builder
	b.Grow(len(sql) + 8)
	last := 0
	for _, t := range Tokens(sql, 0) {
		if t.Kind != String {
			continue
		}
		lit := sql[t.Pos:t.End]
		if strings.IndexByte(lit, '\\') < 0 && lit[0] == '\'' {
			continue
		}
		b.WriteString(sql[last:t.Pos])
		if t.Pos > 0 && sql[t.Pos-1] == '\'' {
			// Right after another literal ('a'"b"): adjacent literals are
			// concatenated, but 'a''b' would be one literal with a quote.
			b.WriteByte(' ')
		}
		b.WriteByte('\'')
		v, _ := Unquote(lit)
		b.WriteString(strings.ReplaceAll(v, "'", "''"))
		b.WriteByte('\'')
		last = t.End
	}
	if last == 0 {
		return sql
	}
	b.WriteString(sql[last:])
	return b.String()
}

// Unquote returns the value of a default-mode string literal (with its
// quotes), as MariaDB reads it: \0 \b \n \r \t \Z \' \" \\ are escapes, \%
// and \_ keep their backslash (for LIKE), any other \x is x; a doubled
// quote is one. ok is false when lit is not a quoted literal.
func Unquote(lit string) (v string, ok bool) {
	if len(lit) < 2 || (lit[0] != '\'' && lit[0] != '"') || lit[len(lit)-1] != lit[0] {
		return "", false
	}
	q := lit[0]
	body := lit[1 : len(lit)-1]
	var b strings.Builder
	b.Grow(len(body))
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case c == '\\' && i+1 < len(body):
			i++
			switch e := body[i]; e {
			case '0':
				b.WriteByte(0)
			case 'b':
				b.WriteByte('\b')
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'Z':
				b.WriteByte(26)
			case '%', '_':
				b.WriteByte('\\')
				b.WriteByte(e)
			default:
				b.WriteByte(e)
			}
		case c == q && i+1 < len(body) && body[i+1] == q:
			b.WriteByte(q)
			i++
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), true
}
