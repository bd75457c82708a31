package engine

import (
	"context"
	"strings"
	"testing"

	"vitess.io/vitess/go/sqltypes"
	querypb "vitess.io/vitess/go/vt/proto/query"
	"vitess.io/vitess/go/vt/sqlparser"

	"github.com/strata-db/strata/shardproxy/vschema"
)

func TestCompareText(t *testing.T) {
	ci := func(s string) sortKey { return prepare(sqltypes.NewVarChar(s), kindGeneralCI) }
	bin := func(s string) sortKey { return prepare(sqltypes.NewVarChar(s), kindBinPad) }
	raw := func(s string) sortKey { return prepare(sqltypes.NewVarBinary(s), kindBytes) }
	for _, c := range []struct {
		a, b sortKey
		want int
		what string
	}{
		{ci("abc"), ci("ABC"), 0, "general_ci folds case"},
		{ci("a"), ci("a  "), 0, "PAD SPACE: trailing spaces do not count"},
		{ci("a\t"), ci("a"), -1, "PAD SPACE: a tab sorts below the padding space"},
		{ci("á"), ci("A"), 0, "general_ci folds accents"},
		{ci("a"), ci("b"), -1, "order"},
		{ci("ab"), ci("a"), 1, "longer after its prefix"},
		{bin("a"), bin("A"), 1, "utf8mb4_bin is case sensitive"},
		{bin("a "), bin("a"), 0, "utf8mb4_bin pads with spaces"},
		{raw("a "), raw("a"), 1, "binary does not pad"},
		{prepare(sqltypes.NULL, kindGeneralCI), ci(""), -1, "NULL first"},
	} {
		if got := sign(compareKeys(&c.a, &c.b)); got != c.want {
			t.Errorf("%s: compare = %d, want %d", c.what, got, c.want)
		}
	}
}

func TestCompareNumbersAndTimes(t *testing.T) {
	num := func(v sqltypes.Value) sortKey { return prepare(v, kindNumeric) }
	tm := func(s string) sortKey { return prepare(sqltypes.NewTime(s), kindTime) }
	for _, c := range []struct {
		a, b sortKey
		want int
	}{
		{num(sqltypes.NewInt64(-1)), num(sqltypes.NewUint64(1 << 63)), -1},
		{num(sqltypes.NewUint64(1 << 63)), num(sqltypes.NewInt64(5)), 1},
		{num(sqltypes.NewDecimal("2.50")), num(sqltypes.NewInt64(2)), 1},
		{num(sqltypes.NewDecimal("2.00")), num(sqltypes.NewInt64(2)), 0},
		{num(sqltypes.NewFloat64(2.5)), num(sqltypes.NewDecimal("2.5")), 0},
		{tm("-10:00:00"), tm("09:59:59"), -1},
		{tm("100:00:00"), tm("99:59:59.999999"), 1},
		{tm("-00:00:01"), tm("00:00:00"), -1},
		{tm("01:00:00.5"), tm("01:00:00.500000"), 0},
	} {
		if got := sign(compareKeys(&c.a, &c.b)); got != c.want {
			t.Errorf("compare(%+v, %+v) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

func sign(c int) int {
	switch {
	case c < 0:
		return -1
	case c > 0:
		return 1
	}
	return 0
}

// fixedCursor returns a fixed result per shard.
type fixedCursor map[string]*sqltypes.Result

func (f fixedCursor) ExecuteShards(_ context.Context, qs []ShardQuery) ([]*sqltypes.Result, error) {
	out := make([]*sqltypes.Result, len(qs))
	for i, q := range qs {
		out[i] = f[q.Shard]
	}
	return out, nil
}

func TestMergeSortNullsAndCollation(t *testing.T) {
	fields := []*querypb.Field{{Name: "name", Type: querypb.Type_VARCHAR, Charset: 45}, {Name: "c", Type: querypb.Type_VARCHAR}}
	row := func(v sqltypes.Value) []sqltypes.Value {
		return []sqltypes.Value{v, sqltypes.NewVarChar("utf8mb4_general_ci")}
	}
	s0 := &sqltypes.Result{Fields: fields, Rows: [][]sqltypes.Value{row(sqltypes.NULL), row(sqltypes.NewVarChar("apple")), row(sqltypes.NewVarChar("Cherry"))}}
	s1 := &sqltypes.Result{Fields: fields, Rows: [][]sqltypes.Value{row(sqltypes.NewVarChar("Banana")), row(sqltypes.NewVarChar("date"))}}
	res, err := mergeResults([]*sqltypes.Result{s0, s1}, []OrderKey{{Col: 0, CollCol: -1, HasColl: true}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range res.Rows {
		got = append(got, r[0].ToString())
	}
	if strings.Join(got, ",") != ",apple,Banana,Cherry,date" {
		t.Errorf("merged %q: want NULL first, then case-insensitive order", got)
	}
	// An unsupported collation is refused, not merged in some order.
	s1.Rows[0][1] = sqltypes.NewVarChar("utf8mb4_unicode_ci")
	s0.Rows[0][1] = sqltypes.NewVarChar("utf8mb4_unicode_ci")
	if _, err := mergeResults([]*sqltypes.Result{s0, s1}, []OrderKey{{Col: 0, CollCol: -1, HasColl: true}}); err == nil || !strings.Contains(err.Error(), "1235") {
		t.Errorf("utf8mb4_unicode_ci merge: %v, want error 1235", err)
	}
}

func TestLimit(t *testing.T) {
	rows := func(n int) *sqltypes.Result {
		r := &sqltypes.Result{Fields: []*querypb.Field{{Name: "n", Type: querypb.Type_INT64}}}
		for i := 0; i < n; i++ {
			r.Rows = append(r.Rows, []sqltypes.Value{sqltypes.NewInt64(int64(i))})
		}
		return r
	}
	vs := &vschema.VSchema{Shards: []string{"s0"}}
	for _, c := range []struct {
		count, offset string
		n, want       int
	}{{"3", "", 10, 3}, {"3", "8", 10, 2}, {"3", "20", 10, 0}, {"0", "", 10, 0}, {"18446744073709551615", "5", 10, 5}} {
		var off *EvalValue
		if c.offset != "" {
			o := LiteralValue(sqltypes.NewUint64(mustUint(c.offset)))
			off = &o
		}
		l := &Limit{Input: &Route{Opcode: Unsharded, Shard: "s0", VSchema: vs, Query: mustParsed("select n from t")},
			Count: LiteralValue(sqltypes.NewUint64(mustUint(c.count))), Offset: off, PushDown: true}
		res, err := l.Execute(context.Background(), fixedCursor{"s0": rows(c.n)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Rows) != c.want {
			t.Errorf("limit %s offset %s of %d rows: %d rows, want %d", c.count, c.offset, c.n, len(res.Rows), c.want)
		}
	}
}

func TestEmptyScalarAggregate(t *testing.T) {
	fields := []*querypb.Field{{Name: "count(distinct x)", Type: querypb.Type_INT64}, {Name: "sum(x)", Type: querypb.Type_DECIMAL}, {Name: "x", Type: querypb.Type_INT64}}
	vs := &vschema.VSchema{Shards: []string{"s0"}}
	a := &Aggregate{Input: &Route{Opcode: Unsharded, Shard: "s0", VSchema: vs, Query: mustParsed("select 1")},
		Distinct: &OrderKey{Col: 2}, Aggs: []AggregateCol{{Op: AggCountDistinct, Col: 0}, {Op: AggSum, Col: 1}}, Scalar: true}
	res, err := a.Execute(context.Background(), fixedCursor{"s0": {Fields: fields}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rows) != 1 || res.Rows[0][0].ToString() != "0" || !res.Rows[0][1].IsNull() {
		t.Errorf("scalar aggregate over no rows = %v, want one row (0, NULL)", res.Rows)
	}
}

func mustUint(s string) uint64 {
	var n uint64
	for _, c := range s {
		n = n*10 + uint64(c-'0')
	}
	return n
}

func mustParsed(sql string) *sqlparser.ParsedQuery {
	stmt, err := sqlparser.NewTestParser().Parse(sql)
	if err != nil {
		panic(err)
	}
	return sqlparser.NewParsedQuery(stmt)
}
