package vschema

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"vitess.io/vitess/go/sqltypes"
)

func testVSchema() *VSchema {
	return &VSchema{
		Shards: []string{"s0", "s1"},
		Databases: map[string]*Database{
			"demo": {Name: "demo", Sharded: true, Tables: map[string]*Table{
				"users":  {Name: "users", Kind: Sharded, Column: "id", Func: Hash},
				"names":  {Name: "names", Kind: Sharded, Column: "name", Type: KeyString, Func: Hash},
				"events": {Name: "events", Kind: Sharded, Column: "id", Func: Range, Ranges: []RangeBound{{Shard: "s0", Upper: 1000}, {Shard: "s1", Unbounded: true}}},
				"region": {Name: "region", Kind: Reference},
				"config": {Name: "config", Kind: Unsharded, Shard: "s1"},
			}},
			"test": {Name: "test", Shard: "s0"},
		},
	}
}

func TestValidate(t *testing.T) {
	if err := testVSchema().Validate(); err != nil {
		t.Fatalf("valid vschema: %v", err)
	}
	cases := []struct {
		name   string
		change func(vs *VSchema)
		want   string
	}{
		{"no shards", func(vs *VSchema) { vs.Shards = nil }, "shards: at least one"},
		{"dup shard", func(vs *VSchema) { vs.Shards = []string{"s0", "s0"} }, "shards[1]: duplicate"},
		{"unsharded db bad shard", func(vs *VSchema) { vs.Databases["test"].Shard = "s9" }, "databases.test.shard"},
		{"name mismatch", func(vs *VSchema) { vs.Databases["demo"].Tables["users"].Name = "u" }, "databases.demo.tables.users.name"},
		{"no column", func(vs *VSchema) { vs.Databases["demo"].Tables["users"].Column = "" }, "tables.users.column"},
		{"bad func", func(vs *VSchema) { vs.Databases["demo"].Tables["users"].Func = "md5" }, "tables.users.function"},
		{"bad type", func(vs *VSchema) { vs.Databases["demo"].Tables["users"].Type = "blob" }, "tables.users.type"},
		{"range on string", func(vs *VSchema) {
			tb := vs.Databases["demo"].Tables["events"]
			tb.Type = KeyString
		}, "tables.events.type"},
		{"ranges decrease", func(vs *VSchema) {
			vs.Databases["demo"].Tables["events"].Ranges = []RangeBound{{Shard: "s0", Upper: 10}, {Shard: "s1", Upper: 5}}
		}, "tables.events.ranges[1].upper"},
		{"unbounded not last", func(vs *VSchema) {
			vs.Databases["demo"].Tables["events"].Ranges = []RangeBound{{Shard: "s0", Unbounded: true}, {Shard: "s1", Upper: 5}}
		}, "ranges[0]: only the last"},
		{"range bad shard", func(vs *VSchema) { vs.Databases["demo"].Tables["events"].Ranges[0].Shard = "x" }, "ranges[0].shard"},
		{"reference with column", func(vs *VSchema) { vs.Databases["demo"].Tables["region"].Column = "id" }, "tables.region"},
		{"unsharded bad shard", func(vs *VSchema) { vs.Databases["demo"].Tables["config"].Shard = "" }, "tables.config.shard"},
		{"bad kind", func(vs *VSchema) { vs.Databases["demo"].Tables["config"].Kind = 0 }, "tables.config.kind"},
		{"hash with ranges", func(vs *VSchema) {
			vs.Databases["demo"].Tables["users"].Ranges = []RangeBound{{Shard: "s0", Unbounded: true}}
		}, "tables.users.ranges"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			vs := testVSchema()
			c.change(vs)
			err := vs.Validate()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, c.want)
			}
		})
	}
}

func TestFindTable(t *testing.T) {
	vs := testVSchema()
	if _, tb, err := vs.FindTable("demo", "users"); err != nil || tb.Kind != Sharded {
		t.Fatalf("users: %v %v", tb, err)
	}
	if _, _, err := vs.FindTable("demo", "nope"); !errors.Is(err, ErrUnknownTable) {
		t.Fatalf("unknown table: %v", err)
	}
	if _, _, err := vs.FindTable("nodb", "x"); !errors.Is(err, ErrUnknownDatabase) {
		t.Fatalf("unknown db: %v", err)
	}
	if _, tb, err := vs.FindTable("test", "anything"); err != nil || tb.Kind != Unsharded || tb.Shard != "s0" {
		t.Fatalf("unsharded db table: %v %v", tb, err)
	}
}

// The hash is part of the on-disk layout: these values must never change.
// They were cross-checked with an independent Python implementation of the
// documented definition (FNV-1a 64 then fmix64; 'abc' weighs 00 41 00 42 00 43).
func TestHashStable(t *testing.T) {
	golden := map[int64]uint64{}
	for _, k := range []int64{0, 1, 2, -1, 1 << 40} {
		golden[k] = HashInt(k)
	}
	want := map[int64]uint64{
		0:       0x7bd3144f29c0cc9e,
		1:       0x0d4ad0eb39c50357,
		2:       0xf6034fee4c3ffc73,
		-1:      0x6a92c0228678c02e,
		1 << 40: 0x03acbc6407aa25ee,
	}
	for k, h := range golden {
		if h != want[k] {
			t.Errorf("HashInt(%d) = %#x, want %#x", k, h, want[k])
		}
	}
	if got, want := HashString([]byte("abc")), uint64(0x07db8c07e95696e6); got != want {
		t.Errorf("HashString(abc) = %#x, want %#x", got, want)
	}
}

func TestHashSpreads(t *testing.T) {
	for _, n := range []uint64{2, 3, 4, 8} {
		for _, stride := range []int64{1, 2, 4, 16, 1000} {
			counts := make([]int, n)
			const keys = 20000
			for i := int64(0); i < keys; i++ {
				counts[HashInt(i*stride)%n]++
			}
			for s, c := range counts {
				exp := keys / int(n)
				if c < exp*9/10 || c > exp*11/10 {
					t.Errorf("n=%d stride=%d: shard %d got %d keys, want about %d", n, stride, s, c, exp)
				}
			}
		}
	}
}

func TestKeyShardEquivalentSpellings(t *testing.T) {
	vs := testVSchema()
	_, users, _ := vs.FindTable("demo", "users")
	for k := int64(0); k < 50; k++ {
		want, err := vs.KeyShard(users, sqltypes.NewInt64(k), ForRead)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range []sqltypes.Value{
			sqltypes.NewUint64(uint64(k)),
			sqltypes.NewVarChar(fmt.Sprint(k)),
			sqltypes.NewVarChar(fmt.Sprintf("  %d ", k)),
			sqltypes.NewVarChar(fmt.Sprintf("%d.000", k)),
			sqltypes.NewDecimal(fmt.Sprintf("%d.0", k)),
			sqltypes.NewFloat64(float64(k)),
			sqltypes.NewInt32(int32(k)),
		} {
			got, err := vs.KeyShard(users, v, ForRead)
			if err != nil || got != want {
				t.Errorf("KeyShard(%v) = %q, %v; want %q like %d", v, got, err, want, k)
			}
		}
	}
	for _, v := range []sqltypes.Value{
		sqltypes.NewVarChar("5abc"), sqltypes.NewVarChar("9007199254740993"), sqltypes.NewVarChar(""),
		sqltypes.NewDate("2020-01-01"), sqltypes.NewVarChar("-"), sqltypes.NewVarChar("1e3"), sqltypes.NewFloat64(1e300),
	} {
		if got, err := vs.KeyShard(users, v, ForRead); !errors.Is(err, ErrNoSingleShard) {
			t.Errorf("KeyShard(%v) = %q, %v; want ErrNoSingleShard", v, got, err)
		}
	}
	for _, v := range []sqltypes.Value{
		sqltypes.NewVarChar("5.5"), sqltypes.NewDecimal("5.5"), sqltypes.NewFloat64(5.5), sqltypes.NewDecimal("-0.01"),
		sqltypes.NewDecimal("99999999999999999999999"), sqltypes.NULL,
	} {
		if got, err := vs.KeyShard(users, v, ForRead); !errors.Is(err, ErrNoMatch) {
			t.Errorf("KeyShard(%v) = %q, %v; want ErrNoMatch", v, got, err)
		}
		if got, err := vs.KeyShard(users, v, ForInsert); err == nil {
			t.Errorf("insert with key %v went to %q", v, got)
		}
	}
	if _, err := vs.KeyShard(users, sqltypes.NULL, ForInsert); !errors.Is(err, ErrNullKey) {
		t.Errorf("NULL key: %v", err)
	}
	if s, err := vs.KeyShard(users, sqltypes.NewVarChar(".0"), ForRead); err != nil || s != vs.Shards[HashInt(0)%2] {
		t.Errorf("'.0' routes to %q %v, want the shard of 0", s, err)
	}
}

func TestKeyShardStrings(t *testing.T) {
	vs := testVSchema()
	_, names, _ := vs.FindTable("demo", "names")
	seen := map[string]bool{}
	for _, w := range []string{"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"} {
		want, err := vs.KeyShard(names, sqltypes.NewVarChar(w), ForRead)
		if err != nil {
			t.Fatal(err)
		}
		seen[want] = true
		for _, v := range []string{strings.ToUpper(w), w + "   ", strings.ToUpper(w[:1]) + w[1:]} {
			if got, _ := vs.KeyShard(names, sqltypes.NewVarChar(v), ForRead); got != want {
				t.Errorf("%q went to %s, %q to %s: equal under utf8mb4_general_ci", v, got, w, want)
			}
		}
	}
	if len(seen) != 2 {
		t.Errorf("8 names all on %v", seen)
	}
	if _, err := vs.KeyShard(names, sqltypes.NewInt64(5), ForRead); !errors.Is(err, ErrNoSingleShard) {
		t.Errorf("int against string key: %v, want ErrNoSingleShard", err)
	}
	ins, err := vs.KeyShard(names, sqltypes.NewInt64(5), ForInsert)
	str, _ := vs.KeyShard(names, sqltypes.NewVarChar("5"), ForRead)
	if err != nil || ins != str {
		t.Errorf("insert of 5 into a string key: %q %v, want the shard of '5' %q", ins, err, str)
	}
}

func TestRange(t *testing.T) {
	vs := testVSchema()
	_, ev, _ := vs.FindTable("demo", "events")
	for k, want := range map[int64]string{-5: "s0", 0: "s0", 999: "s0", 1000: "s1", 1 << 50: "s1"} {
		if got, err := vs.KeyShard(ev, sqltypes.NewInt64(k), ForInsert); err != nil || got != want {
			t.Errorf("key %d: %q %v, want %s", k, got, err, want)
		}
	}
	bounded := &Table{Name: "b", Kind: Sharded, Column: "id", Func: Range, Ranges: []RangeBound{{Shard: "s0", Upper: 10}, {Shard: "s1", Upper: 20}}}
	if _, err := vs.KeyShard(bounded, sqltypes.NewInt64(20), ForInsert); !errors.Is(err, ErrNoRange) {
		t.Errorf("key past the last bound: %v", err)
	}
	for _, c := range []struct {
		lo, hi int64
		want   string
	}{{0, 5, "s0"}, {10, 15, "s1"}, {5, 15, "s0,s1"}, {9, 10, "s0,s1"}, {20, 30, ""}, {-100, -50, "s0"}} {
		if got := strings.Join(RangeShards(bounded, c.lo, c.hi), ","); got != c.want {
			t.Errorf("RangeShards(%d,%d) = %q, want %q", c.lo, c.hi, got, c.want)
		}
	}
}

// An unsigned value from 2^63 has the bit pattern of a negative key: as a
// range bound it must not stand for the lowest ranges.
func TestRangeKeyBeyondSigned(t *testing.T) {
	vs := testVSchema()
	_, ev, _ := vs.FindTable("demo", "events")
	for _, v := range []sqltypes.Value{
		sqltypes.NewUint64(18446744073709551615),
		sqltypes.NewUint64(1 << 63),
		sqltypes.MakeTrusted(sqltypes.Decimal, []byte("18446744073709551615.0")),
	} {
		if k, err := RangeKey(v); !errors.Is(err, ErrNoSingleShard) {
			t.Errorf("RangeKey(%s) = %d, %v; want ErrNoSingleShard", v.String(), k, err)
		}
		if s, err := vs.KeyShard(ev, v, ForInsert); err == nil {
			t.Errorf("insert of %s into a range table went to %s", v.String(), s)
		}
	}
	for _, c := range []struct {
		v    sqltypes.Value
		want int64
	}{
		{sqltypes.NewInt64(-5), -5},
		{sqltypes.NewVarChar(" -7"), -7},
		{sqltypes.NewUint64(1<<63 - 1), 1<<63 - 1},
		{sqltypes.MakeTrusted(sqltypes.Decimal, []byte("-9223372036854775808")), -1 << 63},
	} {
		if k, err := RangeKey(c.v); err != nil || k != c.want {
			t.Errorf("RangeKey(%s) = %d, %v; want %d", c.v.String(), k, err, c.want)
		}
	}
}
