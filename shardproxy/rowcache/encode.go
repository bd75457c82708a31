package rowcache

import (
	"encoding/binary"
	"math"
	"strconv"
	"unsafe"

	"vitess.io/vitess/go/sqltypes"
	querypb "vitess.io/vitess/go/vt/proto/query"
)

// An entry keeps its answer twice over in one copy: as the client's text
// protocol packets (what the proxy's fast lane writes on a hit, after
// patching the sequence ids) and as a sqltypes.Result whose values are
// slices of those packets (what the ordinary path returns). The shape's
// column definitions are encoded once per shape (columns). Binary-protocol
// rows (prepared statements) are encoded from the values at send time
// (AppendBinaryRows): about as cheap as copying them, and the budget holds
// one copy of each value.

// entry is one cached answer.
type entry struct {
	res  *sqltypes.Result
	cols *columns // nil when the fields are not the shape's (then rows is nil)
	// rows are the text-protocol row packets: a 4-byte header (3-byte
	// length, sequence id to patch) and the payload each; nil if a row
	// does not fit one packet.
	rows []byte
}

// columns are a shape's column definitions as the listener sends them:
// the column count packet, then one packet per column, with sequence ids
// to patch.
type columns struct {
	fields []*querypb.Field
	pkts   []byte
	// binary: every column's type has a binary form AppendBinaryRows
	// encodes.
	binary bool
	// schema is the table's schema count the columns were loaded at
	// (table.schema).
	schema uint64
}

// Packets is a cached answer ready for the wire: Columns (count and
// definitions) and Rows (text protocol) are packets whose sequence ids the
// sender patches (AppendPackets). The caller must not modify them.
type Packets struct {
	Columns []byte
	Rows    []byte
	// NRows is the number of rows; Result has the same rows as values
	// (for AppendBinaryRows).
	NRows  int
	Result *sqltypes.Result
	// Binary: AppendBinaryRows encodes every column of the shape.
	Binary bool
}

// maxPacket is the largest payload one packet carries.
const maxPacket = 1<<24 - 1

// newEntry encodes r's rows (fields shared with cols when they are the
// shape's) and rebuilds r's values as slices of the encoding.
func newEntry(r *sqltypes.Result, cols *columns) *entry {
	e := &entry{res: r}
	if cols == nil || len(r.Rows) == 0 {
		e.cols = cols
		return e
	}
	n := 0
	for _, row := range r.Rows {
		n += 4
		for _, v := range row {
			n += 9 + v.Len()
		}
	}
	buf := make([]byte, 0, n)
	rows := make([]sqltypes.Row, len(r.Rows))
	vals := make([]sqltypes.Value, 0, len(r.Rows)*len(r.Fields))
	for i, row := range r.Rows {
		at := len(buf)
		buf = append(buf, 0, 0, 0, 0)
		start := len(vals)
		for _, v := range row {
			if v.IsNull() {
				buf = append(buf, 0xfb)
				vals = append(vals, v)
				continue
			}
			raw := v.Raw()
			buf = appendLenEnc(buf, uint64(len(raw)))
			b := len(buf)
			buf = append(buf, raw...)
			vals = append(vals, sqltypes.MakeTrusted(v.Type(), buf[b:len(buf):len(buf)]))
		}
		size := len(buf) - at - 4
		if size >= maxPacket {
			// Split packets are the listener's business.
			return &entry{res: r}
		}
		buf[at], buf[at+1], buf[at+2] = byte(size), byte(size>>8), byte(size>>16)
		rows[i] = vals[start:len(vals):len(vals)]
	}
	cp := *r
	cp.Rows = rows
	return &entry{res: &cp, cols: cols, rows: buf}
}

// packets is the entry as Packets, if it is encoded.
func (e *entry) packets() (Packets, bool) {
	if e.cols == nil || (e.rows == nil && len(e.res.Rows) > 0) {
		return Packets{}, false
	}
	return Packets{Columns: e.cols.pkts, Rows: e.rows, NRows: len(e.res.Rows), Result: e.res, Binary: e.cols.binary}, true
}

// newColumns encodes fields as the listener (vitess writeFields) does.
func newColumns(fields []*querypb.Field) *columns {
	c := &columns{fields: fields, binary: true}
	for _, f := range fields {
		if !binaryEncodable(f.Type) {
			c.binary = false
		}
	}
	c.pkts = appendPacket(c.pkts, func(b []byte) []byte { return appendLenEnc(b, uint64(len(fields))) })
	for _, f := range fields {
		c.pkts = appendPacket(c.pkts, func(b []byte) []byte { return appendColumnDefinition(b, f) })
	}
	return c
}

func appendPacket(out []byte, payload func([]byte) []byte) []byte {
	at := len(out)
	out = payload(append(out, 0, 0, 0, 0))
	n := len(out) - at - 4
	out[at], out[at+1], out[at+2] = byte(n), byte(n>>8), byte(n>>16)
	return out
}

// appendColumnDefinition is Protocol::ColumnDefinition41 as vitess's
// listener writes it for a result (no default value).
func appendColumnDefinition(b []byte, f *querypb.Field) []byte {
	str := func(s string) {
		b = appendLenEnc(b, uint64(len(s)))
		b = append(b, s...)
	}
	str("def")
	str(f.Database)
	str(f.Table)
	str(f.OrgTable)
	str(f.Name)
	str(f.OrgName)
	b = append(b, 0x0c)
	b = binary.LittleEndian.AppendUint16(b, uint16(f.Charset))
	b = binary.LittleEndian.AppendUint32(b, f.ColumnLength)
	typ, flags := sqltypes.TypeToMySQL(f.Type)
	if f.Flags != 0 {
		flags = int64(f.Flags)
	}
	b = append(b, typ)
	b = binary.LittleEndian.AppendUint16(b, uint16(flags))
	return append(b, byte(f.Decimals), 0, 0)
}

func appendLenEnc(b []byte, n uint64) []byte {
	switch {
	case n < 251:
		return append(b, byte(n))
	case n < 1<<16:
		return append(b, 0xfc, byte(n), byte(n>>8))
	case n < 1<<24:
		return append(b, 0xfd, byte(n), byte(n>>8), byte(n>>16))
	}
	b = append(b, 0xfe)
	return binary.LittleEndian.AppendUint64(b, n)
}

// AppendPackets appends pkts (Packets.Columns or Rows) to out with
// sequence ids from seq on, and returns the next sequence id.
func AppendPackets(out, pkts []byte, seq byte) ([]byte, byte) {
	at := len(out)
	out = append(out, pkts...)
	for i := at; i+4 <= len(out); {
		n := int(out[i]) | int(out[i+1])<<8 | int(out[i+2])<<16
		out[i+3] = seq
		seq++
		i += 4 + n
	}
	return out, seq
}

// AppendBinaryRows appends r's rows as binary-protocol row packets (a
// prepared statement's result) exactly as vitess's listener encodes them,
// and returns the next sequence id. ok is false, and out unchanged, for a
// value whose binary form is left to the listener (dates and times, and
// types it passes raw) or a row over one packet.
func AppendBinaryRows(out []byte, r *sqltypes.Result, seq byte) (_ []byte, next byte, ok bool) {
	orig := len(out)
	nulls := (len(r.Fields) + 7 + 2) / 8
	for _, row := range r.Rows {
		at := len(out)
		out = append(out, 0, 0, 0, seq, 0)
		bm := len(out)
		for range nulls {
			out = append(out, 0)
		}
		for i, v := range row {
			if v.IsNull() {
				out[bm+(i+2)/8] |= 1 << uint((i+2)%8)
				continue
			}
			if out, ok = appendBinaryValue(out, v); !ok {
				return out[:orig], seq, false
			}
		}
		n := len(out) - at - 4
		if n >= maxPacket {
			return out[:orig], seq, false
		}
		out[at], out[at+1], out[at+2] = byte(n), byte(n>>8), byte(n>>16)
		seq++
	}
	return out, seq, true
}

func binaryEncodable(t querypb.Type) bool {
	switch t {
	case sqltypes.Null, sqltypes.Int8, sqltypes.Uint8, sqltypes.Int16, sqltypes.Uint16, sqltypes.Year,
		sqltypes.Int24, sqltypes.Uint24, sqltypes.Int32, sqltypes.Uint32, sqltypes.Int64, sqltypes.Uint64,
		sqltypes.Float32, sqltypes.Float64,
		sqltypes.Decimal, sqltypes.Text, sqltypes.Blob, sqltypes.VarChar,
		sqltypes.VarBinary, sqltypes.Char, sqltypes.Bit, sqltypes.Enum,
		sqltypes.Set, sqltypes.Geometry, sqltypes.Binary, sqltypes.TypeJSON:
		return true
	}
	return false
}

// appendBinaryValue is vitess's val2MySQL for the types it encodes
// without parsing dates and times.
func appendBinaryValue(b []byte, v sqltypes.Value) ([]byte, bool) {
	raw := v.Raw()
	switch v.Type() {
	case sqltypes.Decimal, sqltypes.Text, sqltypes.Blob, sqltypes.VarChar,
		sqltypes.VarBinary, sqltypes.Char, sqltypes.Bit, sqltypes.Enum,
		sqltypes.Set, sqltypes.Geometry, sqltypes.Binary, sqltypes.TypeJSON:
		b = appendLenEnc(b, uint64(len(raw)))
		return append(b, raw...), true
	}
	s := unsafe.String(unsafe.SliceData(raw), len(raw)) // strconv keeps no reference
	switch v.Type() {
	case sqltypes.Int8:
		n, err := strconv.ParseInt(s, 10, 8)
		return append(b, byte(n)), err == nil
	case sqltypes.Uint8:
		n, err := strconv.ParseUint(s, 10, 8)
		return append(b, byte(n)), err == nil
	case sqltypes.Uint16:
		n, err := strconv.ParseUint(s, 10, 16)
		return binary.LittleEndian.AppendUint16(b, uint16(n)), err == nil
	case sqltypes.Int16, sqltypes.Year:
		n, err := strconv.ParseInt(s, 10, 16)
		return binary.LittleEndian.AppendUint16(b, uint16(n)), err == nil
	case sqltypes.Uint24, sqltypes.Uint32:
		n, err := strconv.ParseUint(s, 10, 32)
		return binary.LittleEndian.AppendUint32(b, uint32(n)), err == nil
	case sqltypes.Int24, sqltypes.Int32:
		n, err := strconv.ParseInt(s, 10, 32)
		return binary.LittleEndian.AppendUint32(b, uint32(n)), err == nil
	case sqltypes.Uint64:
		n, err := strconv.ParseUint(s, 10, 64)
		return binary.LittleEndian.AppendUint64(b, n), err == nil
	case sqltypes.Int64:
		n, err := strconv.ParseInt(s, 10, 64)
		return binary.LittleEndian.AppendUint64(b, uint64(n)), err == nil
	case sqltypes.Float32:
		f, err := strconv.ParseFloat(s, 32)
		return binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(f))), err == nil
	case sqltypes.Float64:
		f, err := strconv.ParseFloat(s, 64)
		return binary.LittleEndian.AppendUint64(b, math.Float64bits(f)), err == nil
	}
	return b, false
}
