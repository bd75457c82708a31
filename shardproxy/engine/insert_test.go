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

// A multi-row INSERT split over shards reports the AUTO_INCREMENT value of
// its first row, as one server would: the value the first row's shard
// reports, whatever the shards' order.
func TestInsertIDOfFirstRow(t *testing.T) {
	vs := &vschema.VSchema{Shards: []string{"s0", "s1"}}
	tbl := &vschema.Table{Name: "orders", Kind: vschema.Sharded, Column: "user_id", Func: vschema.Hash}
	shardOf := func(k int64) string {
		s, err := vs.KeyShard(tbl, sqltypes.NewInt64(k), vschema.ForInsert)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	// Two keys on different shards, the first row's on the second shard.
	var k0, k1 int64 = -1, -1
	for k := int64(1); k < 100 && (k0 < 0 || k1 < 0); k++ {
		switch shardOf(k) {
		case "s1":
			if k0 < 0 {
				k0 = k
			}
		case "s0":
			if k1 < 0 {
				k1 = k
			}
		}
	}
	ins := &Insert{VSchema: vs, DB: "demo", Table: tbl, Prefix: "insert into orders(user_id) values ",
		Rows: []*sqlparser.ParsedQuery{sqlparser.BuildParsedQuery("(:a)"), sqlparser.BuildParsedQuery("(:b)")},
		Keys: []EvalValue{BindVar("a"), BindVar("b")}}
	vc := fixedCursor{
		"s0": {RowsAffected: 1, InsertID: 500, InsertIDChanged: true},
		"s1": {RowsAffected: 1, InsertID: 900, InsertIDChanged: true},
	}
	res, err := ins.Execute(context.Background(), vc, map[string]*querypb.BindVariable{
		"a": sqltypes.Int64BindVariable(k0), "b": sqltypes.Int64BindVariable(k1)})
	if err != nil {
		t.Fatal(err)
	}
	if res.RowsAffected != 2 || res.InsertID != 900 {
		t.Fatalf("rows %d, insert id %d; want 2 and 900, the id of the first row (on s1)", res.RowsAffected, res.InsertID)
	}
}

// A write every shard runs on its copy of a reference table must change
// every copy alike; copies that answer differently are reported, not
// hidden behind the first shard's count.
func TestAllShardsCopiesAgree(t *testing.T) {
	vs := &vschema.VSchema{Shards: []string{"s0", "s1"}}
	r := &Route{Opcode: AllShards, VSchema: vs, Query: sqlparser.BuildParsedQuery("update regions set zone = 'z' where id = 2"), Copies: true}
	same := fixedCursor{"s0": {RowsAffected: 1}, "s1": {RowsAffected: 1}}
	if res, err := r.Execute(context.Background(), same, nil); err != nil || res.RowsAffected != 1 {
		t.Fatalf("copies alike: %+v %v", res, err)
	}
	for _, vc := range []fixedCursor{
		{"s0": {RowsAffected: 1}, "s1": {RowsAffected: 0}},
		{"s0": {RowsAffected: 1, InsertID: 7}, "s1": {RowsAffected: 1, InsertID: 8}},
	} {
		if res, err := r.Execute(context.Background(), vc, nil); err == nil || !strings.Contains(err.Error(), "copies of a reference table") {
			t.Errorf("copies that differ: %+v %v, want an error", res, err)
		}
	}
}

// DDL over a sharded table runs on every shard's own rows: a copying ALTER
// reports them all, summed, as one server would.
func TestAllShardsDDLSums(t *testing.T) {
	vs := &vschema.VSchema{Shards: []string{"s0", "s1"}}
	r := &Route{Opcode: AllShards, VSchema: vs, Query: sqlparser.BuildParsedQuery("alter table users modify score bigint")}
	res, err := r.Execute(context.Background(), fixedCursor{"s0": {RowsAffected: 117}, "s1": {RowsAffected: 123}}, nil)
	if err != nil || res.RowsAffected != 240 {
		t.Fatalf("%+v %v, want 240 rows affected", res, err)
	}
}

// A DOUBLE parameter is written into the shards' SQL as a DOUBLE literal
// (1e0), not as the integer or DECIMAL its plain text reads as.
func TestDoubleParametersStayDouble(t *testing.T) {
	bv := map[string]*querypb.BindVariable{
		"a": sqltypes.Float64BindVariable(1), "b": sqltypes.Float64BindVariable(1.5),
		"c": sqltypes.Float64BindVariable(1e20), "d": sqltypes.Int64BindVariable(7),
	}
	stmt, err := sqlparser.NewTestParser().Parse("select :a / 3, :b, :c, :d")
	if err != nil {
		t.Fatal(err)
	}
	got, err := sqlparser.NewParsedQuery(stmt).GenerateQuery(SQLBindVars(bv), nil)
	if err != nil || got != "select 1e0 / 3, 1.5e0, 1e20, 7 from dual" {
		t.Fatalf("%q %v", got, err)
	}
	if string(bv["a"].Value) != "1" {
		t.Fatalf("the caller's bind variables changed: %q", bv["a"].Value)
	}
}
