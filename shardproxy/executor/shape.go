package executor

// scanShape reads a statement's shape without parsing it (see fastpath.go):
// it appends "db NUL shape" to key and the literals it replaced to lits.
// ok is false for statements the fast path does not take (anything but
// SELECT, INSERT, REPLACE, UPDATE, DELETE; text it cannot tokenize).
//
// Tokens are copied to the shape as they are, except runs of white space
// (one space) and literals:
//   - 'string' and "string" become ?s, unless an introducer (_utf8mb4, N, X,
//     B), DATE/TIME/TIMESTAMP or @ precedes them, which keeps them verbatim;
//   - integers become ?i, decimals ?d<int digits>.<scale>, numbers with an
//     exponent ?f; a minus sign in front of a number where it can only be a
//     sign (after an operator, a comma, an opening parenthesis, or a keyword)
//     is part of the literal, as the slow path folds it;
//   - numbers in ORDER BY and GROUP BY stay verbatim (they may be column
//     positions), as do hex and bit literals.
//
// Misreading is safe: a shape is used only after verification.
func scanShape(sql, db string, key []byte, lits []lit) ([]byte, []lit, stmtKind, bool) {
	i := skipSpaceComments(sql, 0)
	kind, ok := leadingKind(sql[i:])
	if !ok {
		return key, lits, 0, false
	}
	key = append(key, db...)
	key = append(key, 0)
	const (
		prevNone = iota
		prevOp   // operator, comma, '(' : a '-' after it is a sign
		prevWord // identifier or keyword
		prevValue
	)
	prev := prevNone
	var prevWordStart, prevWordEnd int
	depth := 0
	orderDepth := -1 // depth of an ORDER BY / GROUP BY clause we are in
	space := false
	for i < len(sql) {
		c := sql[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			space = true
			i++
			continue
		case c == '/' && i+1 < len(sql) && sql[i+1] == '*':
			end := indexFrom(sql, i+2, "*/")
			if end < 0 {
				return key, lits, 0, false
			}
			key = appendSpace(key, space)
			key = append(key, sql[i:end+2]...)
			space = false
			i = end + 2
			continue
		case c == '#' || (c == '-' && i+2 < len(sql) && sql[i+1] == '-' && (sql[i+2] == ' ' || sql[i+2] == '\t')):
			end := indexFrom(sql, i, "\n")
			if end < 0 {
				end = len(sql)
			}
			key = appendSpace(key, space)
			key = append(key, sql[i:end]...)
			key = append(key, '\n')
			space = false
			i = end
			continue
		}
		key = appendSpace(key, space)
		space = false
		switch {
		case c == '\'' || c == '"':
			end, escaped, ok := stringEnd(sql, i)
			if !ok {
				return key, lits, 0, false
			}
			verbatim := prev == prevWord && (isIntroducer(sql[prevWordStart:prevWordEnd]) && prevWordEnd == i ||
				isTypedLiteralWord(sql[prevWordStart:prevWordEnd])) || i > 0 && sql[i-1] == '@'
			if verbatim {
				key = append(key, sql[i:end]...)
			} else {
				key = append(key, '?', 's')
				lits = append(lits, lit{class: litString, start: i, end: end, escaped: escaped})
			}
			prev = prevValue
			i = end
		case c == '`':
			end := indexFrom(sql, i+1, "`")
			for end >= 0 && end+1 < len(sql) && sql[end+1] == '`' {
				end = indexFrom(sql, end+2, "`")
			}
			if end < 0 {
				return key, lits, 0, false
			}
			key = append(key, sql[i:end+1]...)
			prev, prevWordStart, prevWordEnd = prevWord, i, i
			i = end + 1
		case isDigit(c) || (c == '-' && i+1 < len(sql) && isDigit(sql[i+1]) && (prev == prevOp || prev == prevNone || prev == prevWord && isKeyword(sql[prevWordStart:prevWordEnd]))):
			start := i
			if c == '-' {
				i++
			}
			end, class := numberEnd(sql, i)
			if class == 0 || orderDepth == depth && orderDepth >= 0 {
				// A word that starts with digits, a hex or bit literal, or a
				// column position: verbatim.
				if class == 0 {
					end = wordEnd(sql, i)
				}
				key = append(key, sql[start:end]...)
				prev = prevValue
				if class == 0 {
					prev, prevWordStart, prevWordEnd = prevWord, start, end
				}
				i = end
				break
			}
			switch class {
			case litInt:
				key = append(key, '?', 'i')
			case litFloat:
				key = append(key, '?', 'f')
			case litDecimal:
				dot := indexFrom(sql[:end], i, ".")
				key = append(key, '?', 'd')
				key = appendInt(key, dot-i)
				key = append(key, '.')
				key = appendInt(key, end-dot-1)
			}
			lits = append(lits, lit{class: class, start: start, end: end})
			prev = prevValue
			i = end
		case isWordStart(c):
			end := wordEnd(sql, i)
			w := sql[i:end]
			key = append(key, w...)
			switch {
			case equalFold(w, "BY") && prev == prevWord && (equalFold(sql[prevWordStart:prevWordEnd], "ORDER") || equalFold(sql[prevWordStart:prevWordEnd], "GROUP")):
				orderDepth = depth
			case orderDepth == depth && isClauseEnd(w):
				orderDepth = -1
			}
			prev, prevWordStart, prevWordEnd = prevWord, i, end
			i = end
		case c == '(':
			depth++
			key = append(key, c)
			prev = prevOp
			i++
		case c == ')':
			if orderDepth == depth {
				orderDepth = -1
			}
			depth--
			key = append(key, c)
			prev = prevValue
			i++
		case c == ';':
			// One statement per call: a trailing ; and space end it.
			if skipSpaceComments(sql, i+1) != len(sql) {
				return key, lits, 0, false
			}
			i = len(sql)
		case c == '?' || c == ':' || c == '@' || c == '.':
			key = append(key, c)
			prev = prevWord
			prevWordStart, prevWordEnd = i, i
			i++
		default:
			if c >= 0x80 {
				end := wordEnd(sql, i)
				key = append(key, sql[i:end]...)
				prev, prevWordStart, prevWordEnd = prevWord, i, end
				i = end
				break
			}
			key = append(key, c)
			prev = prevOp
			i++
		}
	}
	return key, lits, kind, true
}

func appendSpace(key []byte, space bool) []byte {
	if space && len(key) > 0 && key[len(key)-1] != 0 {
		key = append(key, ' ')
	}
	return key
}

func appendInt(b []byte, n int) []byte {
	if n >= 10 {
		b = appendInt(b, n/10)
	}
	return append(b, byte('0'+n%10))
}

func indexFrom(s string, from int, sub string) int {
	if from > len(s) {
		return -1
	}
	for i := from; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

func skipSpaceComments(sql string, i int) int {
	for i < len(sql) {
		switch c := sql[i]; {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			i++
		case c == '/' && i+1 < len(sql) && sql[i+1] == '*' && !(i+2 < len(sql) && (sql[i+2] == '!' || sql[i+2] == '+')):
			end := indexFrom(sql, i+2, "*/")
			if end < 0 {
				return i
			}
			i = end + 2
		default:
			return i
		}
	}
	return i
}

// leadingKind is the statement kind from its first word, for the kinds the
// fast path takes.
func leadingKind(s string) (stmtKind, bool) {
	end := 0
	for end < len(s) && isWordByte(s[end]) {
		end++
	}
	switch w := s[:end]; {
	case equalFold(w, "SELECT"):
		return kindSelect, true
	case equalFold(w, "INSERT"), equalFold(w, "REPLACE"):
		return kindInsert, true
	case equalFold(w, "UPDATE"):
		return kindUpdate, true
	case equalFold(w, "DELETE"):
		return kindDelete, true
	}
	return 0, false
}

// stringEnd finds the end (one past the closing quote) of the quoted string
// at i, and whether it holds escapes.
func stringEnd(sql string, i int) (int, bool, bool) {
	q := sql[i]
	escaped := false
	for j := i + 1; j < len(sql); j++ {
		switch sql[j] {
		case '\\':
			escaped = true
			j++
		case q:
			if j+1 < len(sql) && sql[j+1] == q {
				escaped = true
				j++
				continue
			}
			return j + 1, escaped, true
		}
	}
	return 0, false, false
}

// numberEnd scans a number at i: its end and class, or class 0 for text
// that is not a plain decimal number (0x1F, 0b101, 12abc).
func numberEnd(sql string, i int) (int, litClass) {
	if sql[i] == '0' && i+1 < len(sql) && (sql[i+1] == 'x' || sql[i+1] == 'X' || sql[i+1] == 'b' || sql[i+1] == 'B') {
		return i, 0
	}
	j := i
	for j < len(sql) && isDigit(sql[j]) {
		j++
	}
	class := litInt
	if j < len(sql) && sql[j] == '.' {
		j++
		for j < len(sql) && isDigit(sql[j]) {
			j++
		}
		class = litDecimal
	}
	if j < len(sql) && (sql[j] == 'e' || sql[j] == 'E') {
		k := j + 1
		if k < len(sql) && (sql[k] == '+' || sql[k] == '-') {
			k++
		}
		if k < len(sql) && isDigit(sql[k]) {
			for k < len(sql) && isDigit(sql[k]) {
				k++
			}
			j, class = k, litFloat
		}
	}
	if j < len(sql) && (isWordByte(sql[j]) || sql[j] == '.') {
		return i, 0
	}
	return j, class
}

func wordEnd(sql string, i int) int {
	j := i
	for j < len(sql) && (isWordByte(sql[j]) || sql[j] >= 0x80) {
		j++
	}
	if j == i {
		j++
	}
	return j
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isWordStart(c byte) bool {
	return c == '_' || c == '$' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
func isWordByte(c byte) bool { return isWordStart(c) || isDigit(c) }

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x >= 'a' && x <= 'z' {
			x -= 'a' - 'A'
		}
		if y >= 'a' && y <= 'z' {
			y -= 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// isIntroducer: a word directly before a quote that gives the string a
// character set or another type (_utf8mb4'x', N'x', X'ff', B'01').
func isIntroducer(w string) bool {
	return len(w) > 1 && w[0] == '_' || equalFold(w, "N") || equalFold(w, "X") || equalFold(w, "B")
}

func isTypedLiteralWord(w string) bool {
	return equalFold(w, "DATE") || equalFold(w, "TIME") || equalFold(w, "TIMESTAMP") || equalFold(w, "BINARY")
}

// isKeyword: words after which a minus sign is a sign.
func isKeyword(w string) bool {
	for _, k := range [...]string{"SELECT", "WHERE", "AND", "OR", "NOT", "XOR", "BETWEEN", "IN", "IS", "LIKE", "VALUES", "VALUE",
		"SET", "ON", "WHEN", "THEN", "ELSE", "LIMIT", "OFFSET", "HAVING", "BY", "RETURN", "INTERVAL", "DIV", "MOD", "CASE", "REGEXP", "RLIKE", "DISTINCT", "ALL", "ANY", "SOME"} {
		if equalFold(w, k) {
			return true
		}
	}
	return false
}

// isClauseEnd: words that end an ORDER BY or GROUP BY list.
func isClauseEnd(w string) bool {
	for _, k := range [...]string{"LIMIT", "HAVING", "WINDOW", "FOR", "LOCK", "INTO", "UNION", "WITH", "EXCEPT", "INTERSECT", "OFFSET"} {
		if equalFold(w, k) {
			return true
		}
	}
	return false
}
