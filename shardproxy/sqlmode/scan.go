package sqlmode

import "strings"

// Kind is the kind of a token.
type Kind uint8

// Token kinds. Comments and spaces are not tokens, except the text of an
// executable comment (/*! … */), which MariaDB reads as SQL.
const (
	Word   Kind = iota // keyword or unquoted identifier (or a number)
	Ident              // quoted identifier: `x`, or "x" under ANSI_QUOTES
	String             // string literal, with its prefix (N, _utf8mb4) a Word before it
	Punct              // one operator or punctuation mark; := and || are one
)

// Token is one token of a statement: sql[Pos:End].
type Token struct {
	Kind     Kind
	Pos, End int
}

// Text returns the token's text in sql.
func (t Token) Text(sql string) string { return sql[t.Pos:t.End] }

// Name returns an identifier's name: a Word as written, an Ident without
// its quotes (doubled quotes made single).
func (t Token) Name(sql string) string {
	s := sql[t.Pos:t.End]
	if t.Kind != Ident || len(s) < 2 {
		return s
	}
	q := s[:1]
	return strings.ReplaceAll(s[1:len(s)-1], q+q, q)
}

// Tokens splits a statement into tokens as MariaDB reads it under m.
// An unterminated literal, identifier or comment ends the list.
func Tokens(sql string, m Mode) []Token {
	nbe, ansi := m&NoBackslashEscapes != 0, m&AnsiQuotes != 0
	var out []Token
	n := len(sql)
	for i := 0; i < n; {
		c := sql[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '\'' || (c == '"' && !ansi):
			end, closed, _ := scanString(sql, i, c, nbe)
			if !closed {
				return out
			}
			out = append(out, Token{String, i, end})
			i = end
		case c == '"' || c == '`':
			end, closed := scanQuoted(sql, i, c)
			if !closed {
				return out
			}
			out = append(out, Token{Ident, i, end})
			i = end
		case c == '#':
			i = lineEnd(sql, i)
		case c == '-' && i+1 < n && sql[i+1] == '-' && (i+2 == n || isDashSpace(sql[i+2])):
			i = lineEnd(sql, i)
		case c == '/' && i+1 < n && sql[i+1] == '*':
			switch {
			case i+2 < n && sql[i+2] == '!':
				i += 3
				for i < n && sql[i] >= '0' && sql[i] <= '9' {
					i++ // the version
				}
			case i+3 < n && (sql[i+2] == 'M' || sql[i+2] == 'm') && sql[i+3] == '!':
				i += 4
				for i < n && sql[i] >= '0' && sql[i] <= '9' {
					i++
				}
			default:
				j := strings.Index(sql[i+2:], "*/")
				if j < 0 {
					return out
				}
				i += 2 + j + 2
			}
		case c == '*' && i+1 < n && sql[i+1] == '/':
			i += 2 // the end of an executable comment
		case isIdent(c):
			j := i
			for j < n && isIdent(sql[j]) {
				j++
			}
			out = append(out, Token{Word, i, j})
			i = j
		case c == '@':
			// @var, @@var, @'quoted': a Word up to the name's end.
			j := i + 1
			if j < n && sql[j] == '@' {
				j++
			}
			if j < n && (sql[j] == '\'' || sql[j] == '"' || sql[j] == '`') {
				end, closed := scanQuoted(sql, j, sql[j])
				if !closed {
					return out
				}
				j = end
			} else {
				for j < n && (isIdent(sql[j]) || sql[j] == '.') {
					j++
				}
			}
			out = append(out, Token{Word, i, j})
			i = j
		default:
			j := i + 1
			if j < n {
				switch sql[i : j+1] {
				case ":=", "||", "&&", "<=", ">=", "<>", "!=", "<<", ">>", "->":
					j++
					if sql[i:j] == "<=" && j < n && sql[j] == '>' {
						j++ // <=>
					}
				}
			}
			out = append(out, Token{Punct, i, j})
			i = j
		}
	}
	return out
}

// Verb returns the statement's first word in upper case ("" when it has
// none: an empty or comment-only statement, or one that starts with a
// parenthesis).
func Verb(sql string, m Mode) string {
	toks := Tokens(sql, m)
	if len(toks) == 0 || toks[0].Kind != Word {
		return ""
	}
	return strings.ToUpper(toks[0].Text(sql))
}

// Empty reports whether a statement has no token: only spaces and comments
// (MariaDB answers 1065, Query was empty, or OK for a comment).
func Empty(sql string, m Mode) bool { return len(Tokens(sql, m)) == 0 }

// SplitReturning splits an INSERT, REPLACE or DELETE with MariaDB's
// RETURNING clause into the statement without it and the clause
// (" RETURNING …", as written). ok is false when the statement has none.
// The clause is the last RETURNING word outside parentheses, literals and
// comments that is not a column of the statement (not after a dot and not
// before =).
func SplitReturning(sql string, m Mode) (base, clause string, ok bool) {
	toks := Tokens(sql, m)
	if len(toks) == 0 || toks[0].Kind != Word {
		return sql, "", false
	}
	switch strings.ToUpper(toks[0].Text(sql)) {
	case "INSERT", "REPLACE", "DELETE":
	default:
		return sql, "", false
	}
	depth, at := 0, -1
	for i, t := range toks {
		if t.Kind == Punct {
			switch sql[t.Pos] {
			case '(':
				depth++
			case ')':
				depth--
			}
			continue
		}
		if depth != 0 || t.Kind != Word || !strings.EqualFold(t.Text(sql), "RETURNING") {
			continue
		}
		if i > 0 && toks[i-1].Kind == Punct && toks[i-1].Text(sql) == "." {
			continue
		}
		if i+1 < len(toks) && toks[i+1].Kind == Punct && (toks[i+1].Text(sql) == "=" || toks[i+1].Text(sql) == ":=" || toks[i+1].Text(sql) == ".") {
			continue
		}
		if i+1 == len(toks) {
			continue // RETURNING with nothing after it: leave it to the parser
		}
		at = i
	}
	if at < 0 {
		return sql, "", false
	}
	pos := toks[at].Pos
	return strings.TrimRight(sql[:pos], " \t\r\n"), " " + strings.TrimRight(sql[pos:], " \t\r\n;"), true
}

// SetAssignments rewrites a SET statement whose assignments use := (SET
// @a := 1, @b := 2) into the = form vitess's parser reads; := inside an
// expression (SET @a = @b := 5) is kept, as vitess reads it there. ok is
// false when nothing changed.
func SetAssignments(sql string, m Mode) (out string, ok bool) {
	toks := Tokens(sql, m)
	if len(toks) < 2 || toks[0].Kind != Word || !strings.EqualFold(toks[0].Text(sql), "SET") {
		return sql, false
	}
	var b strings.Builder
	last, depth, seenAssign := 0, 0, false
	for _, t := range toks[1:] {
		if t.Kind != Punct {
			continue
		}
		switch txt := t.Text(sql); txt {
		case "(":
			depth++
		case ")":
			depth--
		case ",":
			if depth == 0 {
				seenAssign = false
			}
		case "=":
			if depth == 0 {
				seenAssign = true
			}
		case ":=":
			if depth == 0 && !seenAssign {
				b.WriteString(sql[last:t.Pos])
				b.WriteString("=")
				last = t.End
				seenAssign, ok = true, true
			}
		}
	}
	if !ok {
		return sql, false
	}
	b.WriteString(sql[last:])
	return b.String(), true
}

// Qualifiers returns the names that qualify another name (x in x.y, x.y.z),
// as possible database names: a statement that names no database but its
// own touches only its own.
func Qualifiers(sql string, m Mode) []string {
	toks := Tokens(sql, m)
	var out []string
	for i := 0; i+1 < len(toks); i++ {
		t := toks[i]
		if (t.Kind == Word || t.Kind == Ident) && toks[i+1].Kind == Punct && toks[i+1].Text(sql) == "." && toks[i+1].Pos == t.End {
			if i > 0 && toks[i-1].Kind == Punct && toks[i-1].Text(sql) == "." && toks[i-1].End == t.Pos {
				continue // y in x.y.z
			}
			out = append(out, t.Name(sql))
		}
	}
	return out
}

// Split splits a text of several statements at the semicolons that end
// them, as MariaDB does: a semicolon inside a compound statement's body
// (CREATE PROCEDURE … BEGIN …; …; END, BEGIN NOT ATOMIC … END) does not
// end it. The pieces are trimmed of spaces and of their semicolon; empty
// ones are dropped.
func Split(sql string, m Mode) []string {
	toks := Tokens(sql, m)
	var out []string
	start, depth := 0, 0
	compound := false // the statement so far may hold a compound body
	stmtStart := true
	for i, t := range toks {
		txt := t.Text(sql)
		if stmtStart {
			stmtStart = false
			compound = t.Kind == Word && (strings.EqualFold(txt, "CREATE") || strings.EqualFold(txt, "BEGIN") && i+1 < len(toks) && strings.EqualFold(toks[i+1].Text(sql), "NOT"))
		}
		if t.Kind == Word && compound {
			up := strings.ToUpper(txt)
			prevEnd := i > 0 && strings.EqualFold(toks[i-1].Text(sql), "END")
			switch up {
			case "BEGIN", "LOOP", "REPEAT", "WHILE", "CASE":
				if !prevEnd {
					depth++
				}
			case "IF":
				// IF … THEN … END IF, not IF(…) or IF [NOT] EXISTS.
				next := ""
				if i+1 < len(toks) {
					next = strings.ToUpper(toks[i+1].Text(sql))
				}
				if !prevEnd && depth > 0 && next != "(" && next != "EXISTS" && next != "NOT" {
					depth++
				}
			case "END":
				if depth > 0 {
					depth--
				}
			}
		}
		if t.Kind == Punct && txt == ";" && depth == 0 {
			if p := strings.TrimSpace(sql[start:t.Pos]); p != "" {
				out = append(out, p)
			}
			start, stmtStart, compound = t.End, true, false
		}
	}
	if p := strings.TrimSpace(sql[start:]); p != "" && len(Tokens(p, m)) > 0 {
		out = append(out, p)
	}
	return out
}

// HasCompound reports whether a text holds a statement with a compound
// body (BEGIN … END) whose semicolons a splitter that does not know them
// would cut at.
func HasCompound(sql string, m Mode) bool {
	toks := Tokens(sql, m)
	for i, t := range toks {
		if t.Kind == Word && strings.EqualFold(t.Text(sql), "BEGIN") {
			if i+1 < len(toks) && toks[i+1].Text(sql) == ";" || i+1 == len(toks) {
				continue // BEGIN; starts a transaction
			}
			next := ""
			if i+1 < len(toks) {
				next = strings.ToUpper(toks[i+1].Text(sql))
			}
			if next == "WORK" {
				continue
			}
			return true
		}
	}
	return false
}
