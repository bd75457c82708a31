package planner

import (
	"strings"
	"testing"

	querypb "vitess.io/vitess/go/vt/proto/query"
	"vitess.io/vitess/go/vt/sqlparser"

	"github.com/strata-db/strata/shardproxy/engine"
	"github.com/strata-db/strata/shardproxy/vschema"
)

// testVSchema is the schema the golden plans use: database demo is sharded
// over s0 and s1; test is unsharded on s0.
func testVSchema() *vschema.VSchema {
	vs := &vschema.VSchema{
		Shards: []string{"s0", "s1"},
		Databases: map[string]*vschema.Database{
			"demo": {Name: "demo", Sharded: true, Tables: map[string]*vschema.Table{
				"users":    {Name: "users", Kind: vschema.Sharded, Column: "id", Func: vschema.Hash},
				"orders":   {Name: "orders", Kind: vschema.Sharded, Column: "user_id", Func: vschema.Hash},
				"names":    {Name: "names", Kind: vschema.Sharded, Column: "name", Type: vschema.KeyString, Func: vschema.Hash},
				"events":   {Name: "events", Kind: vschema.Sharded, Column: "id", Func: vschema.Range, Ranges: []vschema.RangeBound{{Shard: "s0", Upper: 1000}, {Shard: "s1", Unbounded: true}}},
				"regions":  {Name: "regions", Kind: vschema.Reference},
				"settings": {Name: "settings", Kind: vschema.Unsharded, Shard: "s1"},
				"audit":    {Name: "audit", Kind: vschema.Unsharded, Shard: "s0"},
				"carts":    {Name: "carts", Kind: vschema.Sharded, Column: "id", Func: vschema.Hash, Sub: vschema.SubTables{By: vschema.SubHash, Count: 4}},
				"lines":    {Name: "lines", Kind: vschema.Sharded, Column: "cart_id", Func: vschema.Hash, Sub: vschema.SubTables{By: vschema.SubHash, Count: 4}},
				"clicks":   {Name: "clicks", Kind: vschema.Sharded, Column: "user_id", Func: vschema.Hash, Sub: vschema.SubTables{By: vschema.SubMonth, Column: "day", From: 24312, To: 24317}},
				"stock":    {Name: "stock", Kind: vschema.Sharded, Column: "id", Func: vschema.Hash, CombineWrites: true},
				"items": {Name: "items", Kind: vschema.Sharded, Column: "user_id", Func: vschema.Hash,
					Sequences: []vschema.Sequence{{Column: "id", Tag: "demo.items.id"}}},
			}},
			"test": {Name: "test", Shard: "s0"},
		},
	}
	if err := vs.Validate(); err != nil {
		panic(err)
	}
	return vs
}

// normalize parses and normalizes sql the way the proxy does.
func normalize(t testing.TB, sql string) (sqlparser.Statement, map[string]*querypb.BindVariable) {
	t.Helper()
	stmt, known, err := sqlparser.NewTestParser().Parse2(sql)
	if err != nil {
		t.Fatalf("parse %q: %v", sql, err)
	}
	bv := map[string]*querypb.BindVariable{}
	res, err := sqlparser.Normalize(stmt, sqlparser.NewReservedVars("vtg", known), bv, true, "", 0, "", nil, nil, nil)
	if err != nil {
		t.Fatalf("normalize %q: %v", sql, err)
	}
	return res.AST, bv
}

// planLines renders a plan's EXPLAIN rows one per line.
func planLines(p engine.Primitive) []string {
	var out []string
	for _, r := range p.Explain() {
		s := strings.Repeat("  ", r.Depth) + r.Operator
		if r.Shards != "" {
			s += " [" + r.Shards + "]"
		}
		if r.Query != "" {
			s += " " + r.Query
		}
		if r.Detail != "" {
			s += " -- " + r.Detail
		}
		out = append(out, s)
	}
	return out
}
