package vschema

import (
	"testing"
	"time"

	"vitess.io/vitess/go/sqltypes"
)

// Rows spread over every sub-table of every shard, and a key's shard and
// sub-table come from one hash: tables with the same count co-locate.
func TestKeySubSpreads(t *testing.T) {
	vs := testVSchema()
	tb := &Table{Name: "o", Kind: Sharded, Column: "id", Func: Hash, Sub: SubTables{By: SubHash, Count: 4}}
	seen := map[string]int{}
	for k := int64(1); k <= 4000; k++ {
		v := sqltypes.NewInt64(k)
		s, err := vs.KeyShard(tb, v, ForInsert)
		if err != nil {
			t.Fatal(err)
		}
		sub, err := vs.KeySub(tb, v, ForInsert)
		if err != nil {
			t.Fatal(err)
		}
		r, _ := vs.KeySub(tb, sqltypes.NewVarChar(" 0"+v.ToString()), ForRead)
		if r != sub {
			t.Fatalf("key %d: '0%d' reads sub-table %d, inserted in %d", k, k, r, sub)
		}
		seen[s+"/"+string(rune('0'+sub))]++
	}
	if len(seen) != 8 {
		t.Fatalf("rows in %d of 8 (shard, sub-table) pairs: %v", len(seen), seen)
	}
	for k, n := range seen {
		if n < 350 || n > 650 {
			t.Errorf("%s holds %d of 4000 rows", k, n)
		}
	}
}

func TestMonths(t *testing.T) {
	for s, want := range map[string]string{"2024-03-05": "2024-03", "2024-3-5 10:00:00": "2024-03", " 2026-12-31": "2026-12"} {
		m, err := ValueMonth(sqltypes.NewVarChar(s))
		if err != nil || m.String() != want {
			t.Errorf("%q: %v %v, want %s", s, m, err, want)
		}
	}
	for _, v := range []sqltypes.Value{sqltypes.NULL, sqltypes.NewInt64(20240305), sqltypes.NewVarChar("2024"), sqltypes.NewVarChar("2024-13-01"), sqltypes.NewVarChar("abc")} {
		if _, err := ValueMonth(v); err == nil {
			t.Errorf("%v is not a month", v)
		}
	}
	from, _ := ParseMonth("2026-01")
	tb := &Table{Name: "v", Sub: SubTables{By: SubMonth, Column: "day", From: from, Ahead: 2}}
	now := time.Date(2026, 3, 15, 0, 0, 0, 0, time.UTC)
	subs := tb.Subs(now)
	if len(subs) != 5 || tb.SubName("v", subs[0]) != "v_202601" || tb.SubName("v", subs[4]) != "v_202605" {
		t.Errorf("subs at %v: %v", now, subs)
	}
	lo, hi := Month(subs[1]), Month(subs[2])
	if got := tb.MonthSubs(&lo, &hi, now); len(got) != 2 || got[0] != subs[1] {
		t.Errorf("months from %v to %v: %v", lo, hi, got)
	}
	past := Month(subs[0] - 5)
	if got := tb.MonthSubs(nil, &past, now); len(got) != 0 {
		t.Errorf("months before the first: %v", got)
	}
}
