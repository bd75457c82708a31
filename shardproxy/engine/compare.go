package engine

import (
	"bytes"
	"cmp"
	"strconv"

	"vitess.io/vitess/go/mysql/collations/colldata"
	"vitess.io/vitess/go/mysql/decimal"
	"vitess.io/vitess/go/sqltypes"
	querypb "vitess.io/vitess/go/vt/proto/query"
)

// This file compares values the way MySQL does when it sorts and groups, so
// that rows merged from many shards come out as one server would order and
// group them.
//
// Text is the hard part: MariaDB reports the result character set's
// collation in every column's metadata, not the column's own collation, so
// the planner pushes a hidden COLLATION(expr) column next to every text-like
// key and the engine compares exactly only these collations:
//
//   utf8mb4_general_ci, utf8mb3_general_ci  case- and accent-folding weights, PAD SPACE
//   utf8mb4_bin, utf8mb3_bin                code point (= UTF-8 byte) order, PAD SPACE
//   binary                                  bytes, NO PAD
//
// Any other collation is refused with 1235 rather than merged in a possibly
// wrong order. ENUM and SET sort by member index in MySQL, which the text
// protocol does not carry: ORDER BY on them across shards is refused too
// (grouping and MIN/MAX compare their strings, as MySQL does).

// textOrder is how text values of one column compare.
type textOrder int

const (
	textRefused textOrder = iota
	textGeneralCI
	textBinPad
	textBinary
)

func textOrderOf(collation string) textOrder {
	switch collation {
	case "utf8mb4_general_ci", "utf8mb3_general_ci", "utf8_general_ci":
		return textGeneralCI
	case "utf8mb4_bin", "utf8mb3_bin", "utf8_bin":
		return textBinPad
	case "binary":
		return textBinary
	}
	return textRefused
}

// keyClass is the comparison class of a prepared key.
type keyClass uint8

const (
	classNull keyClass = iota
	classInt
	classUint
	classFloat
	classDecimal
	classBytes
)

// sortKey is one value prepared for comparison: parsed once per row, compared
// many times.
type sortKey struct {
	class keyClass
	i     int64
	u     uint64
	f     float64
	d     decimal.Decimal
	b     []byte
	pad   []byte // the weight of a space for PAD SPACE text; nil for NO PAD
}

// colKind says how the values of one column are prepared.
type colKind uint8

const (
	kindNumeric colKind = iota
	kindBytes           // raw bytes, no pad: binary, dates, datetimes, bits
	kindTime            // TIME, may be negative and beyond 99 hours
	kindGeneralCI
	kindBinPad
)

var spaceWeightGeneralCI = []byte{0x00, 0x20}
var spaceByte = []byte{' '}

// keyCol is an order or group key resolved against a result's fields.
type keyCol struct {
	col  int
	desc bool
	kind colKind
	// ascii: the column is text in a character set other than UTF-8, whose
	// values compare exactly only when plain ASCII (see textResult).
	ascii bool
}

// OrderKey is a column to order or group by.
type OrderKey struct {
	// Col is the column index; negative counts from the end (-1 is the last
	// column), for hidden columns appended after a SELECT *.
	Col int
	// CollCol, when HasColl, is the column that holds COLLATION(expr) for
	// this key (same indexing as Col).
	CollCol int
	HasColl bool
	Desc    bool
}

func resolveCol(c, n int) int {
	if c < 0 {
		return n + c
	}
	return c
}

// resolveKeys prepares keys for the result with these fields. row is any
// row of the result (for the collation columns); it may be nil when there
// are no rows, in which case nothing will be compared. ordering is true for
// ORDER BY (ENUM/SET refused), false for grouping, DISTINCT and MIN/MAX.
func resolveKeys(keys []OrderKey, fields []*querypb.Field, row []sqltypes.Value, ordering bool) ([]keyCol, error) {
	out := make([]keyCol, len(keys))
	for i, k := range keys {
		c := resolveCol(k.Col, len(fields))
		if c < 0 || c >= len(fields) {
			return nil, Unsupported("order or group key column %d of %d", c, len(fields))
		}
		kind, ascii, err := columnKind(fields[c], k, row, len(fields), ordering)
		if err != nil {
			return nil, err
		}
		out[i] = keyCol{col: c, desc: k.Desc, kind: kind, ascii: ascii}
	}
	return out, nil
}

// checkKeyText applies checkASCII to the keys that need it.
func checkKeyText(fields []*querypb.Field, rows [][]sqltypes.Value, cols []keyCol) error {
	var idx []int
	for _, c := range cols {
		if c.ascii {
			idx = append(idx, c.col)
		}
	}
	if idx == nil {
		return nil
	}
	return checkASCII(fields, rows, idx)
}

func columnKind(f *querypb.Field, k OrderKey, row []sqltypes.Value, n int, ordering bool) (colKind, bool, error) {
	t := f.Type
	switch {
	case t == querypb.Type_NULL_TYPE:
		return kindBytes, false, nil
	case sqltypes.IsNumber(t):
		return kindNumeric, false, nil
	case t == querypb.Type_TIME:
		return kindTime, false, nil
	case t == querypb.Type_DATE, t == querypb.Type_DATETIME, t == querypb.Type_TIMESTAMP, t == querypb.Type_BIT:
		return kindBytes, false, nil
	case t == querypb.Type_ENUM || t == querypb.Type_SET:
		if ordering {
			return 0, false, Unsupported("ORDER BY on ENUM or SET column %s across shards (MySQL sorts them by member index)", f.Name)
		}
	case sqltypes.IsText(t) || sqltypes.IsBinary(t):
	default:
		return 0, false, Unsupported("ordering or grouping by %s column %s across shards", t, f.Name)
	}
	// Text, binary, ENUM, SET: the collation decides.
	if f.Charset == 63 && t != querypb.Type_ENUM && t != querypb.Type_SET {
		return kindBytes, false, nil
	}
	if !k.HasColl || row == nil {
		if row == nil {
			return kindBytes, false, nil // no rows: nothing is compared
		}
		return 0, false, Unsupported("comparing text column %s across shards without knowing its collation", f.Name)
	}
	ascii, err := textResult(f)
	if err != nil {
		return 0, false, err
	}
	cc := resolveCol(k.CollCol, n)
	if cc < 0 || cc >= len(row) {
		return 0, false, Unsupported("collation column of %s", f.Name)
	}
	coll := row[cc].ToString()
	switch textOrderOf(coll) {
	case textGeneralCI:
		return kindGeneralCI, ascii, nil
	case textBinPad:
		return kindBinPad, ascii, nil
	case textBinary:
		return kindBytes, ascii, nil
	}
	return 0, false, Unsupported("merging column %s with collation %s across shards (supported: utf8mb4_general_ci, utf8mb3_general_ci, utf8mb4_bin, utf8mb3_bin, binary)", f.Name, coll)
}

// prepare turns one value into a sortKey. Numeric strings that fail to parse
// compare as 0, as MySQL converts them.
func prepare(v sqltypes.Value, kind colKind) sortKey {
	k, _ := prepareBuf(v, kind, nil)
	return k
}

// prepareBuf is prepare writing weight strings into buf (returned grown),
// so that a caller that reuses keys can reuse their memory too.
func prepareBuf(v sqltypes.Value, kind colKind, buf []byte) (sortKey, []byte) {
	if kind == kindGeneralCI && !v.IsNull() {
		start := len(buf)
		buf = collGeneralCI.WeightString(buf, v.Raw(), 0)
		return sortKey{class: classBytes, b: buf[start:len(buf):len(buf)], pad: spaceWeightGeneralCI}, buf
	}
	return prepareValue(v, kind), buf
}

func prepareValue(v sqltypes.Value, kind colKind) sortKey {
	if v.IsNull() {
		return sortKey{class: classNull}
	}
	raw := v.Raw()
	switch kind {
	case kindNumeric:
		return numericKey(v)
	case kindTime:
		return sortKey{class: classInt, i: timeMicros(raw)}
	case kindGeneralCI:
		return sortKey{class: classBytes, b: generalCIWeights(raw), pad: spaceWeightGeneralCI}
	case kindBinPad:
		return sortKey{class: classBytes, b: raw, pad: spaceByte}
	}
	return sortKey{class: classBytes, b: raw}
}

func numericKey(v sqltypes.Value) sortKey {
	raw := v.Raw()
	t := v.Type()
	switch {
	case sqltypes.IsSigned(t):
		if i, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
			return sortKey{class: classInt, i: i}
		}
	case sqltypes.IsUnsigned(t):
		if u, err := strconv.ParseUint(string(raw), 10, 64); err == nil {
			return sortKey{class: classUint, u: u}
		}
	case sqltypes.IsDecimal(t):
		if d, err := decimal.NewFromMySQL(raw); err == nil {
			return sortKey{class: classDecimal, d: d}
		}
	}
	f, _ := strconv.ParseFloat(string(raw), 64)
	return sortKey{class: classFloat, f: f}
}

func generalCIWeights(s []byte) []byte {
	return collGeneralCI.WeightString(make([]byte, 0, 2*len(s)), s, 0)
}

// collGeneralCI is utf8mb4_general_ci (id 45 in MySQL and MariaDB); it is
// immutable.
var collGeneralCI = colldata.Lookup(45)

// timeMicros parses [-]H+:MM:SS[.ffffff] into microseconds.
func timeMicros(b []byte) int64 {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	var parts [3]int64
	p := 0
	var frac int64
	fracDigits := 0
	inFrac := false
	for _, c := range b {
		switch {
		case c == ':' && !inFrac:
			if p < 2 {
				p++
			}
		case c == '.':
			inFrac = true
		case c >= '0' && c <= '9':
			if inFrac {
				if fracDigits < 6 {
					frac = frac*10 + int64(c-'0')
					fracDigits++
				}
			} else {
				parts[p] = parts[p]*10 + int64(c-'0')
			}
		}
	}
	for ; fracDigits < 6; fracDigits++ {
		frac *= 10
	}
	us := ((parts[0]*60+parts[1])*60+parts[2])*1_000_000 + frac
	if neg {
		return -us
	}
	return us
}

// compareKeys compares two prepared keys. NULL sorts first (as MySQL does
// for ASC) and equals NULL (as GROUP BY and DISTINCT treat it).
func compareKeys(a, b *sortKey) int {
	if a.class == classNull || b.class == classNull {
		return cmp.Compare(boolInt(a.class != classNull), boolInt(b.class != classNull))
	}
	if a.class == classBytes || b.class == classBytes {
		if a.class == b.class {
			return compareBytes(a.b, b.b, a.pad)
		}
		// Mixed text and number: MySQL compares as doubles.
		return cmp.Compare(a.float(), b.float())
	}
	if a.class == b.class {
		switch a.class {
		case classInt:
			return cmp.Compare(a.i, b.i)
		case classUint:
			return cmp.Compare(a.u, b.u)
		case classFloat:
			return cmp.Compare(a.f, b.f)
		case classDecimal:
			return a.d.Cmp(b.d)
		}
	}
	if a.class == classFloat || b.class == classFloat {
		return cmp.Compare(a.float(), b.float())
	}
	if (a.class == classInt && b.class == classUint) || (a.class == classUint && b.class == classInt) {
		if a.class == classInt {
			if a.i < 0 {
				return -1
			}
			return cmp.Compare(uint64(a.i), b.u)
		}
		if b.i < 0 {
			return 1
		}
		return cmp.Compare(a.u, uint64(b.i))
	}
	return a.decimal().Cmp(b.decimal())
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (k *sortKey) float() float64 {
	switch k.class {
	case classInt:
		return float64(k.i)
	case classUint:
		return float64(k.u)
	case classFloat:
		return k.f
	case classDecimal:
		f, _ := k.d.Float64()
		return f
	case classBytes:
		f, _ := strconv.ParseFloat(string(k.b), 64)
		return f
	}
	return 0
}

func (k *sortKey) decimal() decimal.Decimal {
	switch k.class {
	case classInt:
		return decimal.NewFromInt(k.i)
	case classUint:
		return decimal.NewFromUint(k.u)
	case classDecimal:
		return k.d
	}
	return decimal.NewFromFloat(k.float())
}

// compareBytes compares weight strings; with pad (PAD SPACE) the shorter one
// is compared as if padded with pad units, so 'a' = 'a ' and 'a\t' < 'a'.
func compareBytes(a, b, pad []byte) int {
	n := min(len(a), len(b))
	if c := bytes.Compare(a[:n], b[:n]); c != 0 || len(a) == len(b) {
		return c
	}
	if pad == nil {
		return cmp.Compare(len(a), len(b))
	}
	sign := 1
	rest := a[n:]
	if len(b) > len(a) {
		sign, rest = -1, b[n:]
	}
	for len(rest) >= len(pad) {
		if c := bytes.Compare(rest[:len(pad)], pad); c != 0 {
			return c * sign
		}
		rest = rest[len(pad):]
	}
	if len(rest) > 0 {
		return sign
	}
	return 0
}

// rowKeys prepares the keys of one row.
func rowKeys(row []sqltypes.Value, cols []keyCol) []sortKey {
	out := make([]sortKey, len(cols))
	for i, c := range cols {
		out[i] = prepare(row[c.col], c.kind)
	}
	return out
}

// rowKeysInto prepares the keys of one row into dst and buf, reusing them.
func rowKeysInto(dst []sortKey, buf []byte, row []sqltypes.Value, cols []keyCol) ([]sortKey, []byte) {
	dst, buf = dst[:0], buf[:0]
	for _, c := range cols {
		var k sortKey
		k, buf = prepareBuf(row[c.col], c.kind, buf)
		dst = append(dst, k)
	}
	return dst, buf
}

// compareRows compares two rows' prepared keys in key order, honouring DESC.
func compareRows(a, b []sortKey, cols []keyCol) int {
	for i := range cols {
		c := compareKeys(&a[i], &b[i])
		if c != 0 {
			if cols[i].desc {
				return -c
			}
			return c
		}
	}
	return 0
}
