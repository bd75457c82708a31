package fleet

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// GTID is one MariaDB global transaction ID, domain-server-seq.
type GTID struct {
	Domain uint32
	Server uint32
	Seq    uint64
}

func (g GTID) String() string {
	return strconv.FormatUint(uint64(g.Domain), 10) + "-" + strconv.FormatUint(uint64(g.Server), 10) + "-" + strconv.FormatUint(g.Seq, 10)
}

// Position is a MariaDB GTID position such as @@gtid_slave_pos: at most one
// GTID per replication domain, sorted by domain. Within a domain MariaDB
// numbers transactions with increasing seq, across primaries too (a new
// primary continues after the highest seq it has), so "has applied" is a
// comparison of seq per domain. The zero value is the empty position.
// A Position is immutable once built.
type Position []GTID

// ParsePosition parses a comma-separated GTID list such as
// "0-1-100,1-2-5" (the format of @@gtid_binlog_pos, @@gtid_slave_pos and
// @@last_gtid). Empty input is the empty position.
func ParsePosition(s string) (Position, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	var p Position
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		f := strings.Split(part, "-")
		if len(f) != 3 {
			return nil, fmt.Errorf("fleet: GTID %q: want domain-server-seq", part)
		}
		d, err1 := strconv.ParseUint(f[0], 10, 32)
		sv, err2 := strconv.ParseUint(f[1], 10, 32)
		seq, err3 := strconv.ParseUint(f[2], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			return nil, fmt.Errorf("fleet: GTID %q: want three unsigned numbers", part)
		}
		p = p.With(GTID{Domain: uint32(d), Server: uint32(sv), Seq: seq})
	}
	return p, nil
}

// With returns p with g merged in: g replaces p's GTID of the same domain
// when its seq is higher. p is not modified.
func (p Position) With(g GTID) Position {
	i := sort.Search(len(p), func(i int) bool { return p[i].Domain >= g.Domain })
	if i < len(p) && p[i].Domain == g.Domain {
		if p[i].Seq >= g.Seq {
			return p
		}
		out := append(Position(nil), p...)
		out[i] = g
		return out
	}
	out := make(Position, 0, len(p)+1)
	out = append(out, p[:i]...)
	out = append(out, g)
	return append(out, p[i:]...)
}

// Merge returns the position holding, per domain, the higher of p and q.
func (p Position) Merge(q Position) Position {
	for _, g := range q {
		p = p.With(g)
	}
	return p
}

// Seq is p's seq in domain d, 0 when p has nothing of d.
func (p Position) Seq(d uint32) uint64 {
	for _, g := range p {
		if g.Domain == d {
			return g.Seq
		}
	}
	return 0
}

// Contains reports whether p has applied every transaction of q: in each of
// q's domains, p's seq is at least q's.
func (p Position) Contains(q Position) bool {
	for _, g := range q {
		if p.Seq(g.Domain) < g.Seq {
			return false
		}
	}
	return true
}

// Compare orders positions for choosing the most advanced server: 1 when p
// contains q and more, -1 the other way round, 0 when equal or neither
// contains the other (then Total breaks the tie).
func (p Position) Compare(q Position) int {
	pc, qc := p.Contains(q), q.Contains(p)
	switch {
	case pc && !qc:
		return 1
	case qc && !pc:
		return -1
	}
	return 0
}

// Total is the sum of seq over all domains: a tiebreak between positions
// neither of which contains the other.
func (p Position) Total() uint64 {
	var n uint64
	for _, g := range p {
		n += g.Seq
	}
	return n
}

// String formats p as MariaDB does, "0-1-100,1-2-5".
func (p Position) String() string {
	var b strings.Builder
	for i, g := range p {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(g.String())
	}
	return b.String()
}
