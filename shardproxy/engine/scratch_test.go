package engine

import (
	"testing"

	"vitess.io/vitess/go/sqltypes"
	querypb "vitess.io/vitess/go/vt/proto/query"
	"vitess.io/vitess/go/vt/sqlparser"
)

// TestScratchSQL: a route's SQL built in a Scratch is GenerateQuery's, for
// every kind of single value; list arguments are left to GenerateQuery.
func TestScratchSQL(t *testing.T) {
	pq := sqlparser.BuildParsedQuery("select c from t where id = %a and name = %a and x in %a", ":v1", ":v2", "::list")
	one := sqlparser.BuildParsedQuery("select c from t where id = %a and name = %a", ":v1", ":v2")
	none := sqlparser.BuildParsedQuery("select 1 from dual")
	values := []*querypb.BindVariable{
		sqltypes.Int64BindVariable(-42),
		sqltypes.Uint64BindVariable(18446744073709551615),
		sqltypes.StringBindVariable("it's a \"quote\" \\ and \x00 nul"),
		sqltypes.BytesBindVariable([]byte{0, 1, 0xff, '\''}),
		sqltypes.Float64BindVariable(1.5e300),
		sqltypes.NullBindVariable,
		{Type: querypb.Type_BIT, Value: []byte{0x5}},
		{Type: querypb.Type_DECIMAL, Value: []byte("12.50")},
		{Type: querypb.Type_VARBINARY, Value: []byte("bin\x00ary")},
		{Type: querypb.Type_DATETIME, Value: []byte("2026-12-07 10:00:00")},
	}
	var sc Scratch
	for _, v := range values {
		bv := map[string]*querypb.BindVariable{"v1": v, "v2": v}
		want, err := one.GenerateQuery(bv, nil)
		if err != nil {
			t.Fatal(err)
		}
		qs, ok, err := sc.oneQuery(one, bv, "s1", true)
		if err != nil || !ok || len(qs) != 1 || qs[0].SQL != want || qs[0].Shard != "s1" || !qs[0].Read {
			t.Errorf("%v: got %+v %v %v, want %q", v, qs, ok, err, want)
		}
	}
	// No bind variables: the query as it is.
	if qs, ok, err := sc.oneQuery(none, nil, "s1", false); err != nil || !ok || qs[0].SQL != "select 1 from dual" {
		t.Errorf("no bind variables: %+v %v %v", qs, ok, err)
	}
	// A list argument: GenerateQuery's business.
	bv := map[string]*querypb.BindVariable{"v1": values[0], "v2": values[2], "list": sqltypes.TestBindVariable([]any{1, 2})}
	if _, ok, err := sc.oneQuery(pq, bv, "s1", true); ok || err != nil {
		t.Errorf("list argument: ok %v err %v, want left to GenerateQuery", ok, err)
	}
	// A missing bind variable: GenerateQuery's error.
	if _, _, err := sc.oneQuery(one, map[string]*querypb.BindVariable{"v1": values[0]}, "s1", true); err == nil {
		t.Error("missing bind variable: no error")
	}
}

// BenchmarkScratchSQL: a point select's shard SQL, in a Scratch and with
// GenerateQuery.
func BenchmarkScratchSQL(b *testing.B) {
	pq := sqlparser.BuildParsedQuery("select c from sbtest1 where id = %a", ":v1")
	bv := map[string]*querypb.BindVariable{"v1": sqltypes.Int64BindVariable(4711)}
	b.Run("scratch", func(b *testing.B) {
		var sc Scratch
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := sc.oneQuery(pq, bv, "s1", true); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("generate", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := pq.GenerateQuery(bv, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}
