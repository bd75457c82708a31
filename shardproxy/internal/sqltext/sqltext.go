// Package sqltext reads statement text the way MariaDB does where the
// proxy looks at text before (or instead of) parsing it: one
// StripComments for the executor and the read/write router.
//
// May import: the standard library only.
package sqltext

import "strings"

// StripComments drops the comments that lead sql, as MariaDB reads them:
// /* ... */ (but not the executable /*! ... */ and /*M! ... */, which are
// statement text), "-- " up to the end of the line (the dashes must be
// followed by a space, a tab or a line end, or "--1" would be a comment),
// and "#" up to the end of the line. An unterminated comment leaves "".
func StripComments(sql string) string {
	for {
		sql = strings.TrimLeft(sql, " \t\r\n")
		switch {
		case strings.HasPrefix(sql, "/*") && !strings.HasPrefix(sql, "/*!") && !strings.HasPrefix(sql, "/*M!"):
			i := strings.Index(sql[2:], "*/")
			if i < 0 {
				return ""
			}
			sql = sql[2+i+2:]
		case isDashComment(sql) || strings.HasPrefix(sql, "#"):
			i := strings.IndexByte(sql, '\n')
			if i < 0 {
				return ""
			}
			sql = sql[i+1:]
		default:
			return sql
		}
	}
}

func isDashComment(s string) bool {
	if !strings.HasPrefix(s, "--") {
		return false
	}
	return len(s) == 2 || s[2] == ' ' || s[2] == '\t' || s[2] == '\r' || s[2] == '\n'
}
