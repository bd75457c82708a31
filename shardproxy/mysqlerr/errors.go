package mysqlerr

import (
	"errors"
	"regexp"
	"strconv"
	"strings"

	"vitess.io/vitess/go/mysql/sqlerror"
)

// From gives the client a MySQL error for any error: a
// *sqlerror.SQLError anywhere in the chain passes as it is, vitess errors
// are mapped to their MySQL codes, anything else is 1105.
func From(err error) *sqlerror.SQLError {
	if err == nil {
		return nil
	}
	var se *sqlerror.SQLError
	if errors.As(err, &se) {
		return se
	}
	if se, ok := sqlerror.NewSQLErrorFromError(err).(*sqlerror.SQLError); ok {
		return se
	}
	return sqlerror.NewSQLError(sqlerror.ERUnknownError, sqlerror.SSUnknownSQLState, err.Error())
}

func NotSupported(format string, args ...any) error {
	return sqlerror.NewSQLErrorf(sqlerror.ERNotSupportedYet, sqlerror.SSClientError, "This version of Strata doesn't yet support '"+format+"'", args...)
}

var posNear = regexp.MustCompile(`syntax error at position (\d+)(?: near '((?:[^']|'')*)')?`)

// ParseError turns the parser's "syntax error at position N near 'tok'"
// into MySQL's 1064 message: the text from the offending token on, and the
// line it is on.
func ParseError(sql string, err error) error {
	msg := err.Error()
	m := posNear.FindStringSubmatch(msg)
	if m == nil {
		return sqlerror.NewSQLError(sqlerror.ERParseError, sqlerror.SSClientError,
			"You have an error in your SQL syntax; "+firstLine(msg))
	}
	// The position is one past the end of the offending token.
	pos, _ := strconv.Atoi(m[1])
	end := max(0, min(pos-1, len(sql)))
	start := end - len(m[2])
	if m[2] == "" || start < 0 || !strings.HasPrefix(sql[start:], m[2]) {
		start = end
		for start > 0 && !strings.ContainsRune(" \t\r\n(),;", rune(sql[start-1])) {
			start--
		}
	}
	return SyntaxErrorAt(sql, start)
}

// SyntaxPosition reads the parser's "syntax error at position N [near
// 'tok']": the position (one past the end of the offending token) and
// whether it names a token.
func SyntaxPosition(err error) (pos int, near, ok bool) {
	if err == nil {
		return 0, false, false
	}
	m := posNear.FindStringSubmatch(err.Error())
	if m == nil {
		return 0, false, false
	}
	pos, _ = strconv.Atoi(m[1])
	return pos, strings.Contains(m[0], " near '"), true
}

// SyntaxErrorAt is MySQL's 1064 for a statement that goes wrong at byte
// start: up to 80 bytes from there, and the line.
func SyntaxErrorAt(sql string, start int) error {
	start = max(0, min(start, len(sql)))
	return SyntaxErrorLine(sql, start, 1+strings.Count(sql[:start], "\n"))
}

var nearLine = regexp.MustCompile(`(?s)near '(.*)' at line (\d+)$`)

// SyntaxErrorIn is err, a 1064 about stmt, a statement of the text sql
// at byte off, as MariaDB says it of one statement of several: the text
// it names runs on to the end of sql (the line stays the statement's).
// Any other error is returned as it is.
func SyntaxErrorIn(sql, stmt string, off int, err error) error {
	se := From(err)
	m := nearLine.FindStringSubmatch(se.Message)
	if se.Num != sqlerror.ERParseError || m == nil || off < 0 || off+len(stmt) > len(sql) {
		return err
	}
	near := m[1]
	pos := len(stmt) // the statement ended too soon: from its end on
	switch {
	case near == "":
	case strings.HasSuffix(stmt, near):
		pos = len(stmt) - len(near)
	case strings.Contains(stmt, near):
		pos = strings.Index(stmt, near)
	default:
		return err
	}
	// MariaDB counts the lines from the statement's first token.
	lead := len(stmt) - len(strings.TrimLeft(stmt, " \t\r\n"))
	line := 1 + strings.Count(stmt[min(lead, pos):pos], "\n")
	return SyntaxErrorLine(sql, off+pos, line)
}

// SyntaxErrorLine is SyntaxErrorAt with the line given.
func SyntaxErrorLine(sql string, start, line int) error {
	start = max(0, min(start, len(sql)))
	near := sql[start:]
	if len(near) > 80 {
		near = near[:80]
	}
	return sqlerror.NewSQLErrorf(sqlerror.ERParseError, sqlerror.SSClientError,
		"You have an error in your SQL syntax; check the manual that corresponds to your MariaDB server version for the right syntax to use near '%s' at line %d", near, line)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
