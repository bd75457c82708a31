package engine

import (
	"strconv"
	"strings"
)

// The info text of an OK packet ("Records: 3  Duplicates: 0  Warnings: 0",
// "Rows matched: 2  Changed: 1  Warnings: 0", "Records: 3  Deleted: 0
// Skipped: 0  Warnings: 0") is counts, each "Name: N", two spaces apart.
// A statement split over shards gets the counts of its parts summed in the
// same text, what one server holding all the rows would have said.

// SumInfo is the info text of a statement whose parts answered a and b:
// each count summed when both texts name the same counts in the same
// order; the one that is not empty when the other is; a when they differ
// otherwise (not a text MariaDB writes for parts of one statement).
func SumInfo(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	var out strings.Builder
	out.Grow(len(a) + 4)
	ra, rb := a, b
	for {
		fa, resta, moreA := strings.Cut(ra, "  ")
		fb, restb, moreB := strings.Cut(rb, "  ")
		na, va, okA := strings.Cut(fa, ": ")
		nb, vb, okB := strings.Cut(fb, ": ")
		if !okA || !okB || na != nb || moreA != moreB {
			return a
		}
		x, errA := strconv.ParseUint(va, 10, 64)
		y, errB := strconv.ParseUint(vb, 10, 64)
		if errA != nil || errB != nil {
			return a
		}
		out.WriteString(na)
		out.WriteString(": ")
		out.WriteString(strconv.FormatUint(x+y, 10))
		if !moreA {
			return out.String()
		}
		out.WriteString("  ")
		ra, rb = resta, restb
	}
}

// InfoWithCount is info with count name set to n (info unchanged when it
// has no such count or already says n).
func InfoWithCount(info, name string, n uint64) string {
	rest := info
	at := 0
	for rest != "" {
		f, next, more := strings.Cut(rest, "  ")
		if k, v, ok := strings.Cut(f, ": "); ok && k == name {
			if old, err := strconv.ParseUint(v, 10, 64); err == nil && old == n {
				return info
			}
			start := at + len(k) + 2
			return info[:start] + strconv.FormatUint(n, 10) + info[start+len(v):]
		}
		if !more {
			break
		}
		at += len(f) + 2
		rest = next
	}
	return info
}

// insertInfo is the info one server writes after an INSERT or REPLACE of
// one row of a statement of several (MariaDB writes none for a statement
// of one row: a shard given one row of the client's several answers
// without it). affected is the shard's affected-row count: an IGNOREd
// duplicate left it at 0; a REPLACE that deleted rows, or an ON DUPLICATE
// KEY UPDATE that changed one, counts them on top of the row.
func insertInfo(affected uint64, ignore bool) string {
	dups := uint64(0)
	switch {
	case ignore && affected == 0:
		dups = 1
	case !ignore && affected > 1:
		dups = affected - 1
	}
	return "Records: 1  Duplicates: " + strconv.FormatUint(dups, 10) + "  Warnings: 0"
}
