package loaddata

import (
	"bytes"
	"errors"
)

// Field is one field of a record as the server reads it: its value with
// escapes and enclosure undone, or NULL.
type Field struct {
	Value []byte
	Null  bool
	// At and End span the field's bytes in the data (its enclosure
	// included, its terminator not).
	At, End int
}

// Record is one record of a file: the bytes [At, End) of the data from the
// end of the previous record (anything STARTING BY skips included) to the
// end of its line terminator, and the fields the server reads from it (at
// most as many as there are columns; fewer when the line has fewer).
type Record struct {
	At, End int
	// FieldsAt is where its fields begin (after STARTING BY's prefix).
	FieldsAt int
	Fields   []Field
	// Cut: the line had more fields than columns (the server warns 1262).
	Cut bool
}

// ErrFormat is a FIELDS/LINES combination the reader does not follow
// (fixed-width rows, a line terminator equal to the field terminator).
var ErrFormat = errors.New("loaddata: format not supported")

// ErrSeparator is the server's 1083: ENCLOSED BY or ESCAPED BY longer than
// one character.
var ErrSeparator = errors.New("loaddata: Field separator argument is not what is expected; check the manual")

const eof = -1

// Reader cuts data into records as MariaDB's READ_INFO does.
type Reader struct {
	d  []byte
	i  int
	ft []byte // fields terminated by
	lt []byte // lines terminated by
	ls []byte // lines starting by
	// First bytes of the terminators (eof for none), the enclosing and
	// escape characters (eof for none).
	ftc, ltc, enc, esc int
	n                  int // columns: fields to read per record

	foundEOL, atEOF, startOfLine bool
	foundNull, cut               bool
}

// NewReader reads data in format f, n fields to a record, after skipping
// ignore lines (IGNORE n LINES: raw lines, as the server skips them).
func NewReader(data []byte, f Format, n int, ignore int64) (*Reader, error) {
	if len(f.Enclosed) > 1 || len(f.Escaped) > 1 {
		return nil, ErrSeparator
	}
	if f.FieldsTerminated == "" || f.LinesTerminated == "" || f.FieldsTerminated == f.LinesTerminated {
		return nil, ErrFormat
	}
	r := &Reader{d: data, ft: []byte(f.FieldsTerminated), lt: []byte(f.LinesTerminated), ls: []byte(f.LinesStarting), n: n}
	r.ftc, r.ltc = int(r.ft[0]), int(r.lt[0])
	r.enc, r.esc = eof, eof
	if f.Enclosed != "" {
		r.enc = int(f.Enclosed[0])
	}
	if f.Escaped != "" {
		r.esc = int(f.Escaped[0])
	}
	r.startOfLine = len(r.ls) > 0
	for ; ignore > 0; ignore-- {
		if r.nextLine() {
			break
		}
	}
	return r, nil
}

// Pos is where the next record starts.
func (r *Reader) Pos() int { return r.i }

func (r *Reader) get() int {
	if r.i >= len(r.d) {
		return eof
	}
	r.i++
	return int(r.d[r.i-1])
}

// term reports whether the bytes after the one just read complete t, and
// consumes them if so (READ_INFO::terminator).
func (r *Reader) term(t []byte) bool {
	if bytes.HasPrefix(r.d[r.i:], t[1:]) {
		r.i += len(t) - 1
		return true
	}
	return false
}

func (r *Reader) unescape(c int) byte {
	switch c {
	case 'n':
		return '\n'
	case 't':
		return '\t'
	case 'r':
		return '\r'
	case 'b':
		return '\b'
	case '0':
		return 0
	case 'Z':
		return 0x1a
	case 'N':
		r.foundNull = true
	}
	return byte(c)
}

// findStartOfFields skips to after LINES STARTING BY's prefix; true at the
// end of the data.
func (r *Reader) findStartOfFields() bool {
	for c := r.get(); c != eof; c = r.get() {
		if c == int(r.ls[0]) && r.term(r.ls) {
			return false
		}
	}
	r.foundEOL, r.atEOF = true, true
	return true
}

// readField reads one field (READ_INFO::read_field); false at the end of
// the line or the data.
func (r *Reader) readField(rec *Record) (f Field, ok bool) {
	r.foundNull = false
	if r.foundEOL {
		return f, false
	}
	if r.startOfLine {
		r.startOfLine = false
		if r.findStartOfFields() {
			return f, false
		}
	}
	if len(rec.Fields) == 0 {
		rec.FieldsAt = r.i
	}
	f.At = r.i
	c := r.get()
	if c == eof {
		r.foundEOL, r.atEOF = true, true
		return f, false
	}
	var data []byte
	found := eof // the enclosing character, when the field starts with it
	if c == r.enc {
		found = r.enc
		data = append(data, byte(c))
	} else {
		r.i--
	}
	for {
		c = r.get()
		if c == eof {
			break
		}
		if c == r.esc {
			c2 := r.get()
			if c2 == eof {
				data = append(data, byte(r.esc))
				break
			}
			if r.esc != r.enc || c2 == r.esc {
				data = append(data, r.unescape(c2))
				continue
			}
			r.i--
			c = r.esc
		}
		if c == r.ltc && found == eof {
			end := r.i - 1
			if r.term(r.lt) {
				r.foundEOL = true
				f.End = end
				return r.finish(f, data, false), true
			}
		}
		if c == found {
			end := r.i
			c2 := r.get()
			if c2 == found {
				data = append(data, byte(c2))
				continue
			}
			if c2 == eof || (c2 == r.ltc && r.term(r.lt)) {
				r.foundEOL = true
				f.End = end
				return r.finish(f, data[1:], true), true
			}
			if c2 == r.ftc && r.term(r.ft) {
				f.End = end
				return r.finish(f, data[1:], true), true
			}
			if c2 != eof {
				r.i--
			}
			c = found
		} else if c == r.ftc && found == eof {
			end := r.i - 1
			if r.term(r.ft) {
				f.End = end
				return r.finish(f, data, false), true
			}
		}
		data = append(data, byte(c))
	}
	// The end of the data (an enclosed field never closed keeps its
	// opening character, as the server keeps it).
	r.foundEOL, r.atEOF = true, true
	f.End = r.i
	return r.finish(f, data, false), true
}

// finish decides NULL as read_sep_field does: \N alone, or the word NULL
// unenclosed when fields may be enclosed.
func (r *Reader) finish(f Field, data []byte, enclosed bool) Field {
	f.Value = data
	if (!enclosed && r.enc != eof && string(data) == "NULL") || (len(data) == 1 && r.foundNull) {
		f.Null, f.Value = true, nil
	}
	return f
}

// nextLine skips to the start of the next line (READ_INFO::next_line);
// true at the end of the data.
func (r *Reader) nextLine() bool {
	r.cut = false
	r.startOfLine = len(r.ls) > 0
	if r.foundEOL || r.atEOF {
		r.foundEOL = false
		return r.atEOF
	}
	for {
		c := r.get()
		if c == eof {
			return true
		}
		if c == r.esc {
			r.cut = true
			if r.get() == eof {
				return true
			}
			continue
		}
		if c == r.ltc && r.term(r.lt) {
			return false
		}
		r.cut = true
	}
}

// Next returns the next record; false at the end of the data.
func (r *Reader) Next() (Record, bool) {
	rec := Record{At: r.i}
	if r.atEOF {
		return rec, false
	}
	for len(rec.Fields) < r.n {
		f, ok := r.readField(&rec)
		if !ok {
			break
		}
		rec.Fields = append(rec.Fields, f)
	}
	if len(rec.Fields) == 0 && r.n > 0 {
		return rec, false // no field at all: the data has ended
	}
	r.nextLine()
	rec.Cut = r.cut
	rec.End = r.i
	return rec, true
}
