package vschema

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"

	"vitess.io/vitess/go/mysql/collations/colldata"
	"vitess.io/vitess/go/sqltypes"
)

// ErrNoSingleShard is wrapped by KeyShard when the rows a value matches may
// live on several shards under MySQL's comparison rules: the integer 5
// against a string key (MySQL compares as numbers, so '5', '05' and '5.0'
// all match), a string that is not a plain number against an integer key,
// a double beyond 2^53. A read with such a value must go to every shard; an
// INSERT with it is refused.
var ErrNoSingleShard = errors.New("vschema: the shard-key value does not map to a single shard")

// ErrNoMatch is wrapped by KeyShard when no row can match the value: NULL,
// a fraction against an integer key, a key outside every range. Any one
// shard gives the right (empty) answer for a read.
var ErrNoMatch = errors.New("vschema: no shard-key value can equal this value")

// ErrNullKey is wrapped (with ErrNoMatch) when the shard-key value is NULL.
var ErrNullKey = errors.New("vschema: the shard-key value is NULL")

// ErrNoRange is wrapped (with ErrNoMatch) when a range-sharded table has no
// range for a key.
var ErrNoRange = errors.New("vschema: no range holds the shard-key value")

// Purpose says what a key value is used for: reads compare it with stored
// keys, inserts store it. The two differ: inserting 5 into a string key stores
// '5', while comparing a string key with 5 compares numbers.
type Purpose int

const (
	ForRead Purpose = iota
	ForInsert
)

// KeyShard returns the shard holding every row whose shard key equals v (as
// MySQL compares the column with v, for ForRead) or the shard a row with key
// v belongs on (ForInsert), for a Sharded table. Errors wrap ErrNoMatch
// (with ErrNullKey or ErrNoRange) or ErrNoSingleShard.
func (vs *VSchema) KeyShard(t *Table, v sqltypes.Value, p Purpose) (string, error) {
	if t.Func == Range {
		k, err := rangeKeyOf(t, v, p)
		if err != nil {
			return "", err
		}
		return rangeShard(t, k)
	}
	h, err := vs.keyHash(t, v, p)
	if err != nil {
		return "", err
	}
	return vs.Shards[h%uint64(len(vs.Shards))], nil
}

// keyHash is the hash of key value v (HashInt or HashString), with
// KeyShard's errors. For a range-sharded table it hashes the range key.
func (vs *VSchema) keyHash(t *Table, v sqltypes.Value, p Purpose) (uint64, error) {
	if v.IsNull() {
		return 0, fmt.Errorf("%w: %w", ErrNoMatch, ErrNullKey)
	}
	switch t.KeyType() {
	case KeyString:
		if !v.IsText() && !v.IsBinary() {
			if p == ForInsert && v.IsIntegral() {
				// MySQL stores the decimal digits: 5 becomes '5'.
				return HashString(v.Raw()), nil
			}
			return 0, fmt.Errorf("%w: %s value %s for string key %s", ErrNoSingleShard, v.Type(), v.String(), t.Column)
		}
		switch v.Type() {
		case sqltypes.HexVal, sqltypes.HexNum, sqltypes.BitNum:
			// x'42494e', 0x42494e, b'...' are the string of their bytes
			// ('BIN'), not their text: hash those, when they are a
			// string the key could hold.
			b, err := v.ToBytes()
			if err != nil || !utf8.Valid(b) {
				return 0, fmt.Errorf("%w: %s for string key %s is not UTF-8 text", ErrNoSingleShard, v.String(), t.Column)
			}
			return HashString(b), nil
		}
		return HashString(v.Raw()), nil
	default:
		k, err := rangeKeyOf(t, v, p)
		if err != nil {
			return 0, err
		}
		return HashInt(k), nil
	}
}

// rangeKeyOf is the integer key of v for an integer-keyed table.
func rangeKeyOf(t *Table, v sqltypes.Value, p Purpose) (int64, error) {
	if v.IsNull() {
		return 0, fmt.Errorf("%w: %w", ErrNoMatch, ErrNullKey)
	}
	keyOf := IntKey
	if t.Func == Range && p == ForInsert {
		// Reads compare equal bit patterns, which is where such a key
		// would be; storing one would put it out of the ranges' order.
		keyOf = RangeKey
	}
	k, err := keyOf(v)
	if err != nil {
		if errors.Is(err, ErrNoMatch) && p == ForInsert {
			return 0, fmt.Errorf("%w: %v (key %s)", ErrNoSingleShard, err, t.Column)
		}
		return 0, fmt.Errorf("%w (key %s)", err, t.Column)
	}
	return k, nil
}

// IntKey turns a value compared with (or stored into) an integer column into
// the key's 64-bit pattern: signed values as two's complement, unsigned as
// they are. (A signed and an unsigned column never hold both -1 and 2^64-1, so
// sharing a pattern only shares a shard.) A fraction wraps ErrNoMatch (no
// integer equals it); values MySQL would not compare exactly wrap
// ErrNoSingleShard: strings that are not plain numbers, strings and doubles
// beyond 2^53 (compared as doubles), other types.
func IntKey(v sqltypes.Value) (int64, error) {
	raw := v.Raw()
	switch {
	case v.IsSigned():
		n, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%w: %q", ErrNoSingleShard, raw)
		}
		return n, nil
	case v.IsUnsigned():
		u, err := strconv.ParseUint(string(raw), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%w: %q", ErrNoSingleShard, raw)
		}
		return int64(u), nil
	case v.Type() == sqltypes.Decimal:
		return decimalKey(raw, false)
	case v.IsFloat():
		f, err := strconv.ParseFloat(string(raw), 64)
		switch {
		case err != nil:
			return 0, fmt.Errorf("%w: float %q", ErrNoSingleShard, raw)
		case f != math.Trunc(f):
			return 0, fmt.Errorf("%w: %s has a fraction", ErrNoMatch, raw)
		case math.Abs(f) >= 1<<53:
			return 0, fmt.Errorf("%w: float %s is compared inexactly", ErrNoSingleShard, raw)
		}
		return int64(f), nil
	case v.IsText() || v.IsBinary():
		return decimalKey(raw, true)
	}
	return 0, fmt.Errorf("%w: a %s value", ErrNoSingleShard, v.Type())
}

// RangeKey is IntKey for a range-sharded table, whose ranges order signed
// 64-bit keys. IntKey gives an unsigned value from 2^63 up the pattern of a
// negative number, which is fine for hashing and equality but not for
// order: as a bound (id <= 18446744073709551615) it would name the lowest
// ranges instead of every range. Such values wrap ErrNoSingleShard: a read
// goes to every shard, an insert is refused.
func RangeKey(v sqltypes.Value) (int64, error) {
	k, err := IntKey(v)
	if err != nil || k >= 0 || isNegative(v.Raw()) {
		return k, err
	}
	return 0, fmt.Errorf("%w: %s is beyond the signed 64-bit keys that ranges order", ErrNoSingleShard, v.String())
}

// isNegative reports whether a number's text (perhaps with leading spaces)
// has a minus sign.
func isNegative(raw []byte) bool {
	for _, c := range raw {
		if c != ' ' {
			return c == '-'
		}
	}
	return false
}

// decimalKey parses [spaces][sign]digits[.digits][spaces] (spaces only for
// strings). A non-zero fraction matches no integer (ErrNoMatch). Strings are
// compared with integers as doubles, so they are exact only below 2^53.
func decimalKey(s []byte, asDouble bool) (int64, error) {
	i, j := 0, len(s)
	if asDouble {
		for i < j && s[i] == ' ' {
			i++
		}
		for j > i && s[j-1] == ' ' {
			j--
		}
	}
	body := s[i:j]
	intPart, frac := body, []byte(nil)
	if dot := indexByte(body, '.'); dot >= 0 {
		intPart, frac = body[:dot], body[dot+1:]
	}
	digits := intPart
	if len(digits) > 0 && (digits[0] == '+' || digits[0] == '-') {
		digits = digits[1:]
	}
	if len(digits) == 0 && len(frac) == 0 {
		return 0, fmt.Errorf("%w: %q is not a plain number", ErrNoSingleShard, s)
	}
	fraction := false
	for k, c := range append(digits[:len(digits):len(digits)], frac...) {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%w: %q is not a plain number", ErrNoSingleShard, s)
		}
		if k >= len(digits) && c != '0' {
			fraction = true
		}
	}
	if fraction {
		return 0, fmt.Errorf("%w: %q has a fraction", ErrNoMatch, s)
	}
	if len(digits) == 0 {
		return 0, nil
	}
	text := string(digits)
	if intPart[0] == '-' {
		text = "-" + text
	}
	if n, err := strconv.ParseInt(text, 10, 64); err == nil {
		if asDouble && (n >= 1<<53 || n <= -(1<<53)) {
			return 0, fmt.Errorf("%w: %q is compared as a double, inexact beyond 2^53", ErrNoSingleShard, s)
		}
		return n, nil
	}
	if asDouble {
		return 0, fmt.Errorf("%w: %q is compared as a double, inexact beyond 2^53", ErrNoSingleShard, s)
	}
	u, err := strconv.ParseUint(text, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %q is beyond every integer column", ErrNoMatch, s)
	}
	return int64(u), nil
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

func rangeShard(t *Table, k int64) (string, error) {
	for _, r := range t.Ranges {
		if r.Unbounded || k < r.Upper {
			return r.Shard, nil
		}
	}
	return "", fmt.Errorf("%w: %w: %d for %s", ErrNoMatch, ErrNoRange, k, t.Name)
}

// RangeShards returns the shards of a range-sharded table that may hold keys
// in [lo, hi], in the order of the ranges, without duplicates.
func RangeShards(t *Table, lo, hi int64) []string {
	var out []string
	var prevUpper int64 = math.MinInt64
	first := true
	for _, r := range t.Ranges {
		// This range holds [prevUpper, r.Upper) (the first from MinInt64).
		lower := prevUpper
		if first {
			lower = math.MinInt64
		}
		first = false
		overlaps := hi >= lower && (r.Unbounded || lo < r.Upper)
		if overlaps && !contains(out, r.Shard) {
			out = append(out, r.Shard)
		}
		prevUpper = r.Upper
		if r.Unbounded {
			break
		}
	}
	return out
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// HashInt is the hash of an integer key: FNV-1a 64 over the key's 8 bytes
// big-endian (two's complement), then MurmurHash3's fmix64 finalizer so that
// keys with a common stride still spread. The shard is Shards[HashInt(k) %
// len(Shards)]. This definition is fixed: changing it moves rows.
func HashInt(k int64) uint64 {
	u := uint64(k)
	h := uint64(fnvOffset)
	for s := 56; s >= 0; s -= 8 {
		h ^= (u >> uint(s)) & 0xff
		h *= fnvPrime
	}
	return fmix64(h)
}

// HashString is the hash of a string key: FNV-1a 64 over the
// utf8mb4_general_ci weight string (2 bytes per character, as vitess's
// colldata computes it) of the value with trailing spaces removed, then
// fmix64. Strings equal under utf8mb4_general_ci (case, most accents,
// trailing spaces) hash alike. This definition is fixed: changing it moves
// rows.
func HashString(s []byte) uint64 {
	for len(s) > 0 && s[len(s)-1] == ' ' {
		s = s[:len(s)-1]
	}
	var buf [64]byte
	w := generalCI.WeightString(buf[:0], s, 0)
	h := uint64(fnvOffset)
	for _, c := range w {
		h ^= uint64(c)
		h *= fnvPrime
	}
	return fmix64(h)
}

// generalCI is utf8mb4_general_ci (collation id 45, the same in MySQL and
// MariaDB). It is immutable.
var generalCI = colldata.Lookup(45)

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func fmix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}
