package executor

import (
	"bytes"
	"context"
	"strconv"
	"strings"

	"vitess.io/vitess/go/sqltypes"
	querypb "vitess.io/vitess/go/vt/proto/query"
)

// The fast path runs a repeated statement without parsing it.
//
// A statement's shape is its text with each literal replaced by a marker of
// its class (?i integer, ?s string, ?d<digits>.<scale> decimal, ?f float):
// "SELECT c FROM sbtest1 WHERE id=5" and "... id=7" have one shape. A
// scanner (no parser, no allocation) finds the shape and the literals. The
// first time a shape is seen it is verified: two probe statements, the shape
// with two different sets of distinct probe values, are parsed and
// normalized the slow way. If they normalize to the same statement and every
// probe value lands in exactly one bind variable, the shape is fast: its
// plan (built once, from the first probe) runs with the literals placed in
// those bind variables, which is exactly what the slow path would have
// done, for every statement of the shape. Otherwise (a literal the
// normalizer keeps, such as ORDER BY 1, or one the scanner misreads) the
// shape is marked slow and its statements take the ordinary path.

// litClass is the class of a literal the scanner replaced.
type litClass uint8

const (
	litInt litClass = iota + 1
	litString
	litDecimal
	litFloat
)

// lit is one literal of a scanned statement.
type lit struct {
	class litClass
	// start and end delimit the literal's text in the statement (with
	// quotes for strings, with the sign of a folded negative number).
	start, end int
	// escaped strings hold backslash escapes or doubled quotes, so their
	// value must be decoded.
	escaped bool
}

// shapeEntry is what the fast path knows about one shape.
type shapeEntry struct {
	fast bool
	cp   *cachedPlan
	// slots map each literal, in order, to its bind variable, and for a
	// literal in an IN list, its index in the tuple (-1 otherwise).
	slots []slot
	// tuples are the tuple bind variables and their lengths.
	tuples []tuple
	// fixed are bind variables that come from text the shape keeps
	// verbatim: the same for every statement of the shape.
	fixed map[string]*querypb.BindVariable
	kind  stmtKind
	// noTables: the statement names no table, and leaves the previous
	// statement's warnings when it raises none (execute.go).
	noTables bool
}

type slot struct {
	name  string
	index int
	typ   querypb.Type
}

type tuple struct {
	name string
	n    int
}

// fastState is a session's scratch space for the fast path, reused by
// every statement so that a fast statement allocates little.
type fastState struct {
	key   []byte
	lits  []lit
	arena []byte
	vals  []querypb.BindVariable
	tvals []*querypb.Value
	bv    map[string]*querypb.BindVariable
	args  []byte // a prepared execute's parameters for the shard (lane.go)
}

// shapeCache maps "db\x00shape" to its entry.
type shapeCache = boundedCache[*shapeEntry]

func newShapeCache(max int) *shapeCache { return newBoundedCache[*shapeEntry](max) }

// fastExecute runs sql on the fast path when its shape is known to be fast
// (ok true); ok false sends it down the ordinary path.
func (s *Session) fastExecute(ctx context.Context, sql string) (stmtKind, *sqltypes.Result, error, bool) {
	fs := &s.fp
	key, lits, kind, ok := scanShape(sql, s.DB, fs.key[:0], fs.lits[:0])
	fs.key, fs.lits = key, lits
	if !ok {
		return 0, nil, nil, false
	}
	e := s.srv.fast.getBytes(key)
	if e == nil {
		e = s.learnShape(sql, key, lits, kind)
	}
	if !e.fast {
		return 0, nil, nil, false
	}
	bv, ok := s.fastBindVars(sql, e, lits)
	if !ok {
		return 0, nil, nil, false
	}
	s.srv.fastHits.Add(1)
	restore := s.clearWarnings(e.noTables)
	res, err := s.execPlan(ctx, e.cp, bv, sql)
	restore(err)
	return e.kind, res, err, true
}

// fastBindVars builds the bind variables of a statement from its literals,
// in the session's reused buffers. ok is false for a literal whose value the
// normalizer would not have made a bind variable of (an integer beyond 64
// bits, an infinite float): those statements take the ordinary path.
func (s *Session) fastBindVars(sql string, e *shapeEntry, lits []lit) (map[string]*querypb.BindVariable, bool) {
	fs := &s.fp
	if fs.bv == nil {
		fs.bv = make(map[string]*querypb.BindVariable, 8)
	} else {
		clear(fs.bv)
	}
	fs.arena = fs.arena[:0]
	if cap(fs.vals) < len(lits)+len(e.tuples) {
		fs.vals = make([]querypb.BindVariable, 0, len(lits)+len(e.tuples)+4)
	}
	vals := fs.vals[:0]
	for k, v := range e.fixed {
		fs.bv[k] = v
	}
	// Values are appended to one arena: take offsets first, slice after,
	// since appending may move it.
	type span struct{ a, b int }
	var spansBuf [16]span
	spans := spansBuf[:0]
	for _, l := range lits {
		a := len(fs.arena)
		text := sql[l.start:l.end]
		switch l.class {
		case litString:
			body := text[1 : len(text)-1]
			if l.escaped {
				fs.arena = decodeString(fs.arena, body, text[0])
			} else {
				fs.arena = append(fs.arena, body...)
			}
		case litInt:
			if !fitsInt64(text) {
				return nil, false
			}
			fs.arena = append(fs.arena, text...)
		case litFloat:
			if _, err := strconv.ParseFloat(text, 64); err != nil {
				return nil, false
			}
			fs.arena = append(fs.arena, text...)
		default:
			fs.arena = append(fs.arena, text...)
		}
		spans = append(spans, span{a, len(fs.arena)})
	}
	// Tuples first, so that their element slots exist. Their values are
	// reused from statement to statement.
	n := 0
	for _, t := range e.tuples {
		n += t.n
	}
	for len(fs.tvals) < n {
		fs.tvals = append(fs.tvals, &querypb.Value{})
	}
	ti := 0
	for _, t := range e.tuples {
		vals = append(vals, querypb.BindVariable{Type: querypb.Type_TUPLE, Values: fs.tvals[ti : ti+t.n : ti+t.n]})
		fs.bv[t.name] = &vals[len(vals)-1]
		ti += t.n
	}
	for i, sl := range e.slots {
		v := fs.arena[spans[i].a:spans[i].b:spans[i].b]
		if sl.index < 0 {
			vals = append(vals, querypb.BindVariable{Type: sl.typ, Value: v})
			fs.bv[sl.name] = &vals[len(vals)-1]
			continue
		}
		tv := fs.bv[sl.name].Values[sl.index]
		tv.Type, tv.Value = sl.typ, v
	}
	fs.vals = vals
	return fs.bv, true
}

// fitsInt64 reports whether an integer literal (digits, maybe a leading
// minus) is within int64, as the normalizer's bind variable needs.
func fitsInt64(s string) bool {
	if len(s) < 18 {
		return true
	}
	_, err := strconv.ParseInt(s, 10, 64)
	return err == nil
}

// decodeString appends a quoted string's value with its escapes decoded
// exactly as the vitess tokenizer does.
func decodeString(out []byte, body string, quote byte) []byte {
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case c == '\\' && i+1 < len(body):
			i++
			n := body[i]
			if n == '%' || n == '_' {
				out = append(out, '\\', n)
			} else if d := sqltypes.SQLDecodeMap[n]; d == sqltypes.DontEscape {
				out = append(out, n)
			} else {
				out = append(out, d)
			}
		case c == quote && i+1 < len(body) && body[i+1] == quote:
			out = append(out, quote)
			i++
		default:
			out = append(out, c)
		}
	}
	return out
}

// learnShape verifies a new shape with two probe statements and records the
// result (fast or slow) for every later statement of the shape.
func (s *Session) learnShape(sql string, key []byte, lits []lit, kind stmtKind) *shapeEntry {
	e := s.verifyShape(sql, lits, kind)
	s.srv.fast.put(string(key), e)
	return e
}

var slowShape = &shapeEntry{}

func (s *Session) verifyShape(sql string, lits []lit, kind stmtKind) *shapeEntry {
	if len(lits) > 4096 {
		return slowShape
	}
	type probeResult struct {
		normalized string
		slots      []slot
		tuples     []tuple
		fixed      map[string]*querypb.BindVariable
		cp         *cachedPlan
		noTables   bool
	}
	probe := func(round int) (*probeResult, bool) {
		text, values := probeStatement(sql, lits, round)
		stmt, known, err := s.srv.parse(text)
		if err != nil {
			return nil, false
		}
		bv := map[string]*querypb.BindVariable{}
		cp, err := s.planFor(stmt, known, bv)
		if err != nil {
			return nil, false
		}
		r := &probeResult{normalized: cp.normalized, cp: cp, fixed: map[string]*querypb.BindVariable{}, noTables: noTables(stmt)}
		used := map[string]bool{}
		for _, v := range values {
			found := false
			for name, b := range bv {
				if b.Type == querypb.Type_TUPLE {
					for j, tv := range b.Values {
						if string(tv.Value) == v {
							if found {
								return nil, false
							}
							found = true
							r.slots = append(r.slots, slot{name: name, index: j, typ: tv.Type})
							if !used[name] {
								r.tuples = append(r.tuples, tuple{name: name, n: len(b.Values)})
							}
							used[name] = true
						}
					}
				} else if string(b.Value) == v {
					if found {
						return nil, false
					}
					found = true
					r.slots = append(r.slots, slot{name: name, index: -1, typ: b.Type})
					used[name] = true
				}
			}
			if !found {
				return nil, false
			}
		}
		for name, b := range bv {
			if !used[name] {
				r.fixed[name] = b
			}
		}
		// Every element of a tuple must be one of our literals.
		for _, t := range r.tuples {
			n := 0
			for _, sl := range r.slots {
				if sl.name == t.name {
					n++
				}
			}
			if n != t.n {
				return nil, false
			}
		}
		return r, true
	}
	a, ok := probe(0)
	if !ok {
		return slowShape
	}
	b, ok := probe(1)
	if !ok || a.normalized != b.normalized || len(a.slots) != len(b.slots) || len(a.fixed) != len(b.fixed) {
		return slowShape
	}
	for i := range a.slots {
		if a.slots[i] != b.slots[i] {
			return slowShape
		}
	}
	for k, v := range a.fixed {
		w, ok := b.fixed[k]
		if !ok || v.Type != w.Type || !bytes.Equal(v.Value, w.Value) || len(v.Values) != len(w.Values) {
			return slowShape
		}
	}
	for i, sl := range a.slots {
		if !classMatches(lits[i].class, sl.typ) {
			return slowShape
		}
	}
	return &shapeEntry{fast: true, cp: a.cp, slots: a.slots, tuples: a.tuples, fixed: a.fixed, kind: kind, noTables: a.noTables}
}

func classMatches(c litClass, t querypb.Type) bool {
	switch c {
	case litInt:
		return t == sqltypes.Int64
	case litString:
		return t == sqltypes.VarChar
	case litDecimal:
		return t == sqltypes.Decimal
	case litFloat:
		return t == sqltypes.Float64
	}
	return false
}

// probeStatement rewrites sql with each literal replaced by a distinct
// probe value of its class (round 0 and 1 use different values) and
// returns the probe values as the normalizer will store them.
func probeStatement(sql string, lits []lit, round int) (string, []string) {
	var b bytes.Buffer
	values := make([]string, len(lits))
	prev := 0
	for i, l := range lits {
		b.WriteString(sql[prev:l.start])
		n := 1000003 + 7919*i + 104729*round
		neg := sql[l.start] == '-'
		var v string
		switch l.class {
		case litInt:
			v = strconv.Itoa(n)
		case litString:
			v = "strata-probe-" + strconv.Itoa(n)
		case litDecimal:
			// Same digits before and after the point as the original, so
			// that the typed bind variable's precision and scale match.
			text := sql[l.start:l.end]
			if neg {
				text = text[1:]
			}
			v = probeDecimal(text, n)
		case litFloat:
			v = strconv.Itoa(n) + "e0"
		}
		if neg {
			v = "-" + v
		}
		if l.class == litString {
			b.WriteByte('\'')
			b.WriteString(v)
			b.WriteByte('\'')
		} else {
			b.WriteString(v)
		}
		values[i] = v
		prev = l.end
	}
	b.WriteString(sql[prev:])
	return b.String(), values
}

// probeDecimal gives a decimal with the same number of digits before and
// after the point as text (the typed bind variable records precision and
// scale), taken from n. Two probes may collide on short decimals; the
// verification then rejects the shape, which only costs speed.
func probeDecimal(text string, n int) string {
	dot := strings.IndexByte(text, '.')
	intDigits, total := dot, len(text)-1
	d := strconv.Itoa(n)
	for len(d) < total {
		d += d
	}
	d = d[len(d)-total:]
	if intDigits > 1 && d[0] == '0' {
		d = "9" + d[1:]
	}
	return d[:intDigits] + "." + d[intDigits:]
}
