package vschema

import (
	"errors"
	"fmt"
	"math"
	"strconv"

	"vitess.io/vitess/go/mysql/collations/colldata"
	"vitess.io/vitess/go/sqltypes"
)

// ErrNoSingleShard is wrapped by KeyShard and InsertShard when a value cannot
// be mapped to exactly one shard under MySQL's comparison rules, e.g. the
// string '5abc' against an integer key (MySQL compares it as 5 with a
// warning) or the integer 5 against a string key (MySQL compares as numbers,
// so '5', '05' and '5.0' all match). A read with such a value must go to
// every shard; an INSERT with it is refused.
var ErrNoSingleShard = errors.New("vschema: the shard-key value does not map to a single shard")

// ErrNullKey is wrapped when the shard-key value is NULL.
var ErrNullKey = errors.New("vschema: the shard-key value is NULL")

// ErrNoRange is wrapped when a range-sharded table has no range for a key.
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
// MySQL compares the column with v), for a Sharded table. Errors wrap
// ErrNoSingleShard, ErrNullKey or ErrNoRange; callers reading then go to every
// shard, which is always correct.
func (vs *VSchema) KeyShard(t *Table, v sqltypes.Value, p Purpose) (string, error) {
	if v.IsNull() {
		return "", ErrNullKey
	}
	switch t.KeyType() {
	case KeyString:
		if !v.IsText() && !v.IsBinary() {
			if p == ForInsert && v.IsIntegral() {
				// MySQL stores the decimal digits: 5 becomes '5'.
				return vs.Shards[HashString(v.Raw())%uint64(len(vs.Shards))], nil
			}
			return "", fmt.Errorf("%w: %s value %s for string key %s", ErrNoSingleShard, v.Type(), v.String(), t.Column)
		}
		return vs.Shards[HashString(v.Raw())%uint64(len(vs.Shards))], nil
	default:
		k, err := IntKey(v)
		if err != nil {
			return "", fmt.Errorf("%w: %v (key %s)", ErrNoSingleShard, err, t.Column)
		}
		if t.Func == Range {
			return rangeShard(t, k)
		}
		return vs.Shards[HashInt(k)%uint64(len(vs.Shards))], nil
	}
}

// IntKey turns a value compared with (or stored into) an integer column into
// the key's 64-bit pattern: signed values as two's complement, unsigned as
// they are. (A signed and an unsigned column never hold both -1 and 2^64-1, so
// sharing a pattern only shares a shard.) It refuses values MySQL would not
// compare exactly: strings and floats beyond 2^53 (compared as doubles),
// fractions, and strings that are not plain integers.
func IntKey(v sqltypes.Value) (int64, error) {
	raw := v.Raw()
	switch {
	case v.IsSigned():
		return strconv.ParseInt(string(raw), 10, 64)
	case v.IsUnsigned():
		u, err := strconv.ParseUint(string(raw), 10, 64)
		return int64(u), err
	case v.Type() == sqltypes.Decimal:
		return decimalKey(raw, false)
	case v.IsFloat():
		f, err := strconv.ParseFloat(string(raw), 64)
		if err != nil || f != math.Trunc(f) || math.Abs(f) >= 1<<53 {
			return 0, fmt.Errorf("float %s is not an exact integer", raw)
		}
		return int64(f), nil
	case v.IsText() || v.IsBinary():
		return decimalKey(raw, true)
	}
	return 0, fmt.Errorf("a %s value is not an integer key", v.Type())
}

// decimalKey parses [spaces][sign]digits[.zeros][spaces]. Strings are
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
	if dot := indexByte(body, '.'); dot >= 0 {
		for _, c := range body[dot+1:] {
			if c != '0' {
				return 0, fmt.Errorf("%q has a fraction", s)
			}
		}
		body = body[:dot]
	}
	if len(body) == 0 {
		return 0, fmt.Errorf("%q is not an integer", s)
	}
	digits := body
	if digits[0] == '+' || digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 {
		return 0, fmt.Errorf("%q is not an integer", s)
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%q is not an integer", s)
		}
	}
	if body[0] == '+' {
		body = body[1:]
	}
	if n, err := strconv.ParseInt(string(body), 10, 64); err == nil {
		if asDouble && (n >= 1<<53 || n <= -(1<<53)) {
			return 0, fmt.Errorf("%q is compared as a double, inexact beyond 2^53", s)
		}
		return n, nil
	}
	if asDouble {
		return 0, fmt.Errorf("%q is out of range", s)
	}
	u, err := strconv.ParseUint(string(body), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is out of range", s)
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
	return "", fmt.Errorf("%w: %d for %s", ErrNoRange, k, t.Name)
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
