package vschema

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"vitess.io/vitess/go/sqltypes"
)

// SubBy says how a sharded table's rows are spread over the sub-tables of
// each shard.
type SubBy string

const (
	// SubHash spreads a shard's rows over Count sub-tables by the hash of
	// the shard key (the hash that picked the shard, so tables with the same
	// shard function and count co-locate their rows sub-table by sub-table).
	SubHash SubBy = "hash"
	// SubMonth keeps one sub-table per calendar month of a DATE or DATETIME
	// column.
	SubMonth SubBy = "month"
)

// SubTables describes the physical tables behind one logical sharded table
// on each shard. The zero value (Count 0, By "") means none: the shard holds
// one table named like the logical one.
//
// Physical names: orders_0000 .. orders_NNNN (four digits, from 0 on every
// shard) for SubHash; orders_202601 (year and month) for SubMonth.
type SubTables struct {
	By SubBy
	// Count is the number of sub-tables per shard (SubHash), 2 to 1024.
	Count int
	// Column is the DATE/DATETIME column whose month picks the sub-table
	// (SubMonth).
	Column string
	// From is the first month (SubMonth).
	From Month
	// To, when set, is the last month; otherwise the months run to Ahead
	// months past the current one, and the proxy creates each month's table
	// ahead of time.
	To Month
	// Ahead is how many months past the current one exist (SubMonth, To
	// unset). Default 3.
	Ahead int
}

// Month is a calendar month as year*12 + month-1: 2026-01 is 24312.
type Month int

// MonthOf returns the month of a time.
func MonthOf(t time.Time) Month { return Month(t.Year()*12 + int(t.Month()) - 1) }

// ParseMonth reads "2026-01".
func ParseMonth(s string) (Month, error) {
	if len(s) != 7 || s[4] != '-' {
		return 0, fmt.Errorf("%q is not a month like 2026-01", s)
	}
	y, err1 := strconv.Atoi(s[:4])
	m, err2 := strconv.Atoi(s[5:])
	if err1 != nil || err2 != nil || y < 1000 || m < 1 || m > 12 {
		return 0, fmt.Errorf("%q is not a month like 2026-01", s)
	}
	return Month(y*12 + m - 1), nil
}

func (m Month) String() string { return fmt.Sprintf("%04d-%02d", int(m)/12, int(m)%12+1) }

// HasSubTables reports whether the table has sub-tables.
func (t *Table) HasSubTables() bool { return t != nil && t.Sub.By != "" }

// SameSubLayout reports whether two tables' rows with equal keys (and equal
// months) land in sub-tables of the same suffix.
func SameSubLayout(x, y *Table) bool {
	if x.Sub.By != y.Sub.By {
		return false
	}
	switch x.Sub.By {
	case SubHash:
		return x.Sub.Count == y.Sub.Count
	case SubMonth:
		return false // month tables are joined with no other month table
	}
	return true
}

// SubName is the physical name of sub-table sub of table name.
func (t *Table) SubName(name string, sub int) string {
	if t.Sub.By == SubMonth {
		return fmt.Sprintf("%s_%04d%02d", name, sub/12, sub%12+1)
	}
	return fmt.Sprintf("%s_%04d", name, sub)
}

// Subs returns every sub-table suffix that exists at time now, in order.
func (t *Table) Subs(now time.Time) []int {
	switch t.Sub.By {
	case SubHash:
		out := make([]int, t.Sub.Count)
		for i := range out {
			out[i] = i
		}
		return out
	case SubMonth:
		lo, hi := t.monthSpan(now)
		out := make([]int, 0, hi-lo+1)
		for m := lo; m <= hi; m++ {
			out = append(out, int(m))
		}
		return out
	}
	return nil
}

func (t *Table) monthSpan(now time.Time) (Month, Month) {
	hi := t.Sub.To
	if hi == 0 {
		hi = MonthOf(now) + Month(t.Sub.Ahead)
	}
	return t.Sub.From, hi
}

// MonthSubs returns the month sub-tables that may hold dates from lo to hi
// (either may be nil: unbounded), at time now.
func (t *Table) MonthSubs(lo, hi *Month, now time.Time) []int {
	first, last := t.monthSpan(now)
	if lo != nil && *lo > first {
		first = *lo
	}
	if hi != nil && *hi < last {
		last = *hi
	}
	var out []int
	for m := first; m <= last; m++ {
		out = append(out, int(m))
	}
	return out
}

// ErrNoMonth is wrapped when a value cannot be read as a date.
var ErrNoMonth = errors.New("vschema: not a date")

// ValueMonth reads the month of a DATE/DATETIME value as MySQL writes it
// ('2026-01-31', '2026-01-31 10:00:00', or a DATE/DATETIME typed value).
func ValueMonth(v sqltypes.Value) (Month, error) {
	if v.IsNull() {
		return 0, fmt.Errorf("%w: NULL", ErrNoMonth)
	}
	if v.IsIntegral() || v.IsFloat() || v.Type() == sqltypes.Decimal {
		return 0, fmt.Errorf("%w: a number", ErrNoMonth)
	}
	s := string(v.Raw())
	for len(s) > 0 && s[0] == ' ' {
		s = s[1:]
	}
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i != 4 || i >= len(s) || s[i] != '-' {
		return 0, fmt.Errorf("%w: %q", ErrNoMonth, s)
	}
	y, _ := strconv.Atoi(s[:4])
	j := i + 1
	for j < len(s) && s[j] >= '0' && s[j] <= '9' {
		j++
	}
	if j == i+1 || j-i-1 > 2 || j >= len(s) || s[j] != '-' {
		return 0, fmt.Errorf("%w: %q", ErrNoMonth, s)
	}
	m, _ := strconv.Atoi(s[i+1 : j])
	if m < 1 || m > 12 {
		return 0, fmt.Errorf("%w: %q", ErrNoMonth, s)
	}
	return Month(y*12 + m - 1), nil
}

// KeySub returns the hash sub-table (SubHash) of key value v, as KeyShard
// returns its shard: the shard is hash mod shards, the sub-table is the
// rest of the hash mod Count (range-sharded tables: hash mod Count). Errors
// are KeyShard's.
func (vs *VSchema) KeySub(t *Table, v sqltypes.Value, p Purpose) (int, error) {
	h, err := vs.keyHash(t, v, p)
	if err != nil {
		return 0, err
	}
	n := uint64(t.Sub.Count)
	if n == 0 {
		return 0, nil
	}
	if t.Func == Range {
		return int(h % n), nil
	}
	return int(h / uint64(len(vs.Shards)) % n), nil
}

func (vs *VSchema) validateSub(path string, t *Table) error {
	s := t.Sub
	switch s.By {
	case "":
		if s.Count != 0 || s.Column != "" {
			return fmt.Errorf("%s.sub_tables: sub-table settings without a layout", path)
		}
	case SubHash:
		if s.Count < 2 || s.Count > 1024 {
			return fmt.Errorf("%s.sub_tables: %d, want 2 to 1024 sub-tables per shard", path, s.Count)
		}
		if s.Column != "" {
			return fmt.Errorf("%s.sub_table_column: only for sub_table_by: month (hash sub-tables use the shard key)", path)
		}
	case SubMonth:
		if s.Column == "" {
			return fmt.Errorf("%s.sub_table_column: sub_table_by: month needs the DATE or DATETIME column whose month picks the sub-table", path)
		}
		if s.Count != 0 {
			return fmt.Errorf("%s.sub_tables: a month-partitioned table has one sub-table per month, not a count", path)
		}
		if s.From == 0 {
			return fmt.Errorf("%s.sub_table_from: required: the first month, like 2026-01", path)
		}
		if s.To != 0 && s.To < s.From {
			return fmt.Errorf("%s.sub_table_to: %v is before sub_table_from %v", path, s.To, s.From)
		}
		if s.To != 0 && s.To-s.From >= 1200 || s.Ahead < 0 || s.Ahead > 120 {
			return fmt.Errorf("%s: at most 100 years of months, and 0 to 120 months ahead", path)
		}
	default:
		return fmt.Errorf("%s.sub_table_by: %q, want hash or month", path, s.By)
	}
	return nil
}

// IsSubTableName reports whether name is the physical name of a sub-table
// of one of the database's sub-tabled tables (orders_0003, visits_202601):
// what lists a shard's tables shows the logical table instead.
func (d *Database) IsSubTableName(name string) bool {
	for tn, t := range d.Tables {
		if !t.HasSubTables() || len(name) <= len(tn)+1 || name[:len(tn)] != tn || name[len(tn)] != '_' {
			continue
		}
		suffix := name[len(tn)+1:]
		n, err := strconv.Atoi(suffix)
		if err != nil || n < 0 || suffix[0] == '+' {
			continue
		}
		switch t.Sub.By {
		case SubHash:
			if len(suffix) == 4 && n < t.Sub.Count {
				return true
			}
		case SubMonth:
			if len(suffix) == 6 && n%100 >= 1 && n%100 <= 12 {
				return true
			}
		}
	}
	return false
}
