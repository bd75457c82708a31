package vschema

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// VSchema is the whole routing schema.
type VSchema struct {
	// Shards are the shard names in order, e.g. ["s0","s1"]. The order is part
	// of the hash function: shard i of n holds the keys whose hash is i mod n,
	// so reordering or adding shards moves rows.
	Shards []string
	// Databases maps a logical database name (case-sensitive, as MySQL on
	// Linux) to its definition.
	Databases map[string]*Database
}

// Database is a logical database.
type Database struct {
	Name string
	// Sharded false: every table of the database lives on Shard, tables need
	// not be declared, and the proxy passes statements through to that shard.
	Sharded bool
	// Shard holds all tables of an unsharded database.
	Shard string
	// Tables are the tables of a sharded database, keyed by name. Every table
	// used through the proxy must be declared: an unknown table is error 1146,
	// never a guess.
	Tables map[string]*Table
}

// TableKind says how a table is placed.
type TableKind int

const (
	// Sharded tables are split over all shards by Column and Func.
	Sharded TableKind = iota + 1
	// Reference tables have a full copy on every shard: writes go to all
	// shards, reads to any one.
	Reference
	// Unsharded tables live whole on one named shard.
	Unsharded
)

func (k TableKind) String() string {
	switch k {
	case Sharded:
		return "sharded"
	case Reference:
		return "reference"
	case Unsharded:
		return "unsharded"
	}
	return fmt.Sprintf("TableKind(%d)", int(k))
}

// ShardFunc names a shard function.
type ShardFunc string

const (
	// Hash spreads keys evenly: see HashInt and HashString for the exact,
	// stable definition.
	Hash ShardFunc = "hash"
	// Range gives each shard a contiguous range of integer keys (Ranges).
	Range ShardFunc = "range"
)

// KeyType is the SQL type family of the shard-key column. It decides how a
// value in a query is turned into the key that is hashed: the proxy must route
// every spelling MySQL considers equal ('5', 5, 5.0 for an integer column;
// 'abc', 'ABC', 'abc ' for a utf8mb4_general_ci column) to the same shard.
type KeyType string

const (
	// KeyInt is an integer column (TINYINT .. BIGINT, signed or unsigned).
	// The zero KeyType means KeyInt.
	KeyInt KeyType = "int"
	// KeyString is a CHAR/VARCHAR column with collation utf8mb4_general_ci
	// (the server default here) or utf8mb4_bin: keys are hashed by their
	// utf8mb4_general_ci weights with trailing spaces removed, so values equal
	// under either collation hash alike. Other collations (unicode_ci, uca1400)
	// treat more strings as equal and are not supported as shard keys.
	KeyString KeyType = "string"
)

// RangeBound is one range of a range-sharded table: keys from the previous
// bound's Upper (or the smallest integer, for the first) up to but excluding
// Upper go to Shard.
type RangeBound struct {
	Shard string
	// Upper is the exclusive upper bound. Ignored when Unbounded.
	Upper int64
	// Unbounded marks the last range, which has no upper bound. Without it,
	// keys at or above the last Upper have no shard: inserting one is an
	// error.
	Unbounded bool
}

// Table is one table of a sharded database.
type Table struct {
	Name string
	Kind TableKind
	// Column is the shard-key column (Sharded).
	Column string
	// Type is the shard-key column's type family (Sharded); zero is KeyInt.
	Type KeyType
	// Func is the shard function (Sharded).
	Func ShardFunc
	// Ranges are the ranges, in increasing order of Upper (Func Range).
	Ranges []RangeBound
	// Shard holds the table (Unsharded).
	Shard string
	// Sub spreads a Sharded table over sub-tables in each shard
	// (subtable.go); zero: none.
	Sub SubTables
	// Sequences name the columns an INSERT may leave out (or set to NULL)
	// and the ID-service tag that fills each.
	Sequences []Sequence
	// CombineWrites opts a Sharded table, whose shard key is its primary
	// key, in to hot-row write combining: concurrent autocommit
	// UPDATE t SET c = c + ? WHERE key = ? of one row run as one statement
	// per round.
	CombineWrites bool
}

// Sequence is one column filled from the ID service.
type Sequence struct {
	Column string
	// Tag is the ID service's tag (its own range of IDs).
	Tag string
}

// KeyType returns the table's shard-key type, KeyInt when unset.
func (t *Table) KeyType() KeyType {
	if t.Type == "" {
		return KeyInt
	}
	return t.Type
}

// ErrUnknownTable is wrapped by FindTable when a sharded database does not
// declare the table.
var ErrUnknownTable = errors.New("vschema: unknown table")

// ErrUnknownDatabase is wrapped by FindTable when the database is not in the
// vschema.
var ErrUnknownDatabase = errors.New("vschema: unknown database")

// FindTable looks a table up. In an unsharded database every table exists and
// is returned as an Unsharded table on the database's shard (a fresh value
// each time; callers must not keep it longer than the VSchema).
func (vs *VSchema) FindTable(db, table string) (*Database, *Table, error) {
	d, ok := vs.Databases[db]
	if !ok {
		return nil, nil, fmt.Errorf("%w: %q", ErrUnknownDatabase, db)
	}
	if !d.Sharded {
		if t, ok := d.Tables[table]; ok {
			return d, t, nil
		}
		return d, &Table{Name: table, Kind: Unsharded, Shard: d.Shard}, nil
	}
	t, ok := d.Tables[table]
	if !ok {
		return d, nil, fmt.Errorf("%w: %s.%s", ErrUnknownTable, db, table)
	}
	return d, t, nil
}

// ShardIndex returns the position of a shard name in Shards, or -1.
func (vs *VSchema) ShardIndex(name string) int {
	for i, s := range vs.Shards {
		if s == name {
			return i
		}
	}
	return -1
}

// Validate checks the whole vschema and reports the first problem with the
// path of the field at fault (databases.<db>.tables.<t>.<field>) and why.
func (vs *VSchema) Validate() error {
	if vs == nil {
		return errors.New("vschema: nil")
	}
	if len(vs.Shards) == 0 {
		return errors.New("vschema: shards: at least one shard is required")
	}
	seen := make(map[string]bool, len(vs.Shards))
	for i, s := range vs.Shards {
		switch {
		case s == "":
			return fmt.Errorf("vschema: shards[%d]: empty name", i)
		case seen[s]:
			return fmt.Errorf("vschema: shards[%d]: duplicate shard %q", i, s)
		}
		seen[s] = true
	}
	names := make([]string, 0, len(vs.Databases))
	for n := range vs.Databases {
		names = append(names, n)
	}
	sort.Strings(names) // the first error is the same on every run
	for _, n := range names {
		if err := vs.validateDatabase(n, vs.Databases[n], seen); err != nil {
			return err
		}
	}
	return nil
}

func (vs *VSchema) validateDatabase(key string, d *Database, shards map[string]bool) error {
	path := "vschema: databases." + key
	switch {
	case d == nil:
		return fmt.Errorf("%s: nil", path)
	case d.Name != key:
		return fmt.Errorf("%s.name: %q does not match its key", path, d.Name)
	case key == "":
		return fmt.Errorf("%s: empty database name", path)
	}
	if !d.Sharded {
		if !shards[d.Shard] {
			return fmt.Errorf("%s.shard: %q is not one of the shards %v", path, d.Shard, vs.Shards)
		}
		for tn, t := range d.Tables {
			if t == nil || t.Kind != Unsharded || t.Shard != d.Shard {
				return fmt.Errorf("%s.tables.%s: an unsharded database holds only unsharded tables on its shard %q", path, tn, d.Shard)
			}
		}
		return nil
	}
	if d.Shard != "" {
		return fmt.Errorf("%s.shard: only an unsharded database has a shard; tables of a sharded database name their own", path)
	}
	tnames := make([]string, 0, len(d.Tables))
	for n := range d.Tables {
		tnames = append(tnames, n)
	}
	sort.Strings(tnames)
	for _, tn := range tnames {
		if err := vs.validateTable(path+".tables."+tn, tn, d.Tables[tn], shards); err != nil {
			return err
		}
	}
	return nil
}

func (vs *VSchema) validateTable(path, key string, t *Table, shards map[string]bool) error {
	switch {
	case t == nil:
		return fmt.Errorf("%s: nil", path)
	case t.Name != key:
		return fmt.Errorf("%s.name: %q does not match its key", path, t.Name)
	}
	switch t.Kind {
	case Sharded:
		if t.Column == "" {
			return fmt.Errorf("%s.column: a sharded table needs its shard-key column", path)
		}
		if t.Shard != "" {
			return fmt.Errorf("%s.shard: a sharded table lives on every shard; shard is only for unsharded tables", path)
		}
		switch t.KeyType() {
		case KeyInt, KeyString:
		default:
			return fmt.Errorf("%s.type: %q, want %q or %q", path, t.Type, KeyInt, KeyString)
		}
		if err := vs.validateSub(path, t); err != nil {
			return err
		}
		seen := map[string]bool{}
		for i, sq := range t.Sequences {
			c := strings.ToLower(sq.Column)
			if c == "" || sq.Tag == "" || seen[c] {
				return fmt.Errorf("%s.sequences[%d]: each generated column needs a name, listed once, and an ID service tag", path, i)
			}
			seen[c] = true
		}
		switch t.Func {
		case Hash:
			if len(t.Ranges) > 0 {
				return fmt.Errorf("%s.ranges: only for function %q", path, Range)
			}
		case Range:
			return vs.validateRanges(path, t, shards)
		default:
			return fmt.Errorf("%s.function: %q, want %q or %q", path, t.Func, Hash, Range)
		}
	case Reference:
		if t.CombineWrites {
			return fmt.Errorf("%s.combine_writes: only for a sharded table whose shard key is its primary key", path)
		}
		if len(t.Sequences) > 0 {
			return fmt.Errorf("%s.sequences: only a sharded table has generated columns", path)
		}
		if t.Sub.By != "" {
			return fmt.Errorf("%s.sub_tables: only a sharded table has sub-tables", path)
		}
		if t.Column != "" || t.Func != "" || len(t.Ranges) > 0 || t.Shard != "" {
			return fmt.Errorf("%s: a reference table has a copy on every shard: no column, function, ranges or shard", path)
		}
	case Unsharded:
		if t.Sub.By != "" {
			return fmt.Errorf("%s.sub_tables: only a sharded table has sub-tables", path)
		}
		if !shards[t.Shard] {
			return fmt.Errorf("%s.shard: %q is not one of the shards %v", path, t.Shard, vs.Shards)
		}
		if t.Column != "" || t.Func != "" || len(t.Ranges) > 0 {
			return fmt.Errorf("%s: an unsharded table has no column, function or ranges", path)
		}
	default:
		return fmt.Errorf("%s.kind: %v, want sharded, reference or unsharded", path, t.Kind)
	}
	return nil
}

func (vs *VSchema) validateRanges(path string, t *Table, shards map[string]bool) error {
	if t.KeyType() != KeyInt {
		return fmt.Errorf("%s.type: function %q needs an integer shard key", path, Range)
	}
	if len(t.Ranges) == 0 {
		return fmt.Errorf("%s.ranges: function %q needs at least one range", path, Range)
	}
	for i, r := range t.Ranges {
		p := fmt.Sprintf("%s.ranges[%d]", path, i)
		if !shards[r.Shard] {
			return fmt.Errorf("%s.shard: %q is not one of the shards %v", p, r.Shard, vs.Shards)
		}
		if r.Unbounded && i != len(t.Ranges)-1 {
			return fmt.Errorf("%s: only the last range may be unbounded", p)
		}
		if i > 0 && !r.Unbounded && r.Upper <= t.Ranges[i-1].Upper {
			return fmt.Errorf("%s.upper: %d is not above the previous bound %d: ranges must increase", p, r.Upper, t.Ranges[i-1].Upper)
		}
	}
	return nil
}

// String is a short description for EXPLAIN and errors.
func (t *Table) String() string {
	var b strings.Builder
	b.WriteString(t.Name)
	b.WriteString(" (")
	b.WriteString(t.Kind.String())
	switch t.Kind {
	case Sharded:
		fmt.Fprintf(&b, " by %s, %s", t.Column, t.Func)
		switch t.Sub.By {
		case SubHash:
			fmt.Fprintf(&b, ", %d sub-tables", t.Sub.Count)
		case SubMonth:
			fmt.Fprintf(&b, ", sub-tables by month of %s", t.Sub.Column)
		}
	case Unsharded:
		fmt.Fprintf(&b, " on %s", t.Shard)
	}
	b.WriteString(")")
	return b.String()
}
