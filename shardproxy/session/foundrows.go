package session

import (
	"strconv"
	"strings"

	"github.com/strata-db/strata/shardproxy/engine"
	"vitess.io/vitess/go/mysql"
	"vitess.io/vitess/go/sqltypes"
)

// clientFoundRows gives a client that set CLIENT_FOUND_ROWS the rows its
// statements matched where MariaDB would (an UPDATE's rows set to the
// values they had, an INSERT ... ON DUPLICATE KEY UPDATE's duplicates left
// as they were): the backend connections, shared by all clients, do not
// set the flag, but MariaDB's OK says what it would have counted. The
// results are the shards' own, before the engine sums them.
func (s *Session) clientFoundRows(qs []engine.ShardQuery, out []*sqltypes.Result) {
	if s.Conn == nil || s.Conn.Capabilities&mysql.CapabilityClientFoundRows == 0 {
		return
	}
	for i, r := range out {
		if r != nil && len(r.Fields) == 0 && i < len(qs) {
			r.RowsAffected = matchedRows(qs[i].SQL, r)
		}
	}
}

// matchedRows is the affected-rows count of r under CLIENT_FOUND_ROWS.
func matchedRows(sql string, r *sqltypes.Result) uint64 {
	if matched, _, ok := infoCounts(r.Info, "Rows matched: ", "Changed: "); ok {
		return matched
	}
	if !containsFold(sql, "on duplicate key update") {
		return r.RowsAffected
	}
	if r.Info == "" {
		// One row: 0 is a duplicate left as it was, which the flag counts.
		return max(r.RowsAffected, 1)
	}
	// Several rows: MariaDB's Duplicates are the rows it changed, each
	// counted twice; with the flag every other row counts once.
	records, dups, ok := infoCounts(r.Info, "Records: ", "Duplicates: ")
	if !ok {
		return r.RowsAffected
	}
	return records + dups
}

// infoCounts reads the first two numbers of an OK packet's info as MariaDB
// writes it ("Rows matched: 1  Changed: 0  Warnings: 0"), without
// fmt.Sscanf's allocations (it runs on every write of such a client).
func infoCounts(info, first, second string) (a, b uint64, ok bool) {
	rest, ok := strings.CutPrefix(info, first)
	if !ok {
		return 0, 0, false
	}
	as, rest, _ := strings.Cut(rest, "  ")
	rest, ok = strings.CutPrefix(rest, second)
	if !ok {
		return 0, 0, false
	}
	bs, _, _ := strings.Cut(rest, "  ")
	a, errA := strconv.ParseUint(as, 10, 64)
	b, errB := strconv.ParseUint(bs, 10, 64)
	return a, b, errA == nil && errB == nil
}

// containsFold reports whether s holds word (lower case), ASCII case
// ignored, without the copy strings.ToLower makes.
func containsFold(s, word string) bool {
	for i := 0; i+len(word) <= len(s); i++ {
		if s[i]|0x20 == word[0] && equalFold(s[i:i+len(word)], word) {
			return true
		}
	}
	return false
}

// equalFold reports whether a and b are equal, ASCII case ignored (a copy
// of the executor's scanner's).
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
