package engine

import (
	"testing"
	"time"

	"github.com/strata-db/strata/shardproxy/vschema"
)

func TestMonthTablesAhead(t *testing.T) {
	from, _ := vschema.ParseMonth("2026-11")
	vs := &vschema.VSchema{Shards: []string{"s0", "s1"}, Databases: map[string]*vschema.Database{
		"demo": {Name: "demo", Sharded: true, Tables: map[string]*vschema.Table{
			"visits": {Name: "visits", Kind: vschema.Sharded, Column: "id", Func: vschema.Hash,
				Sub: vschema.SubTables{By: vschema.SubMonth, Column: "day", From: from, Ahead: 1}},
			"users": {Name: "users", Kind: vschema.Sharded, Column: "id", Func: vschema.Hash},
		}},
	}}
	qs := MonthTablesAhead(vs, time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC))
	want := []string{"visits_202611", "visits_202612", "visits_202701"}
	if len(qs) != 2*len(want) {
		t.Fatalf("%d queries: %v", len(qs), qs)
	}
	for i, m := range want {
		q := qs[2*i]
		if q.Shard != "s0" || qs[2*i+1].Shard != "s1" || q.SQL != "create table if not exists demo."+m+" like demo.visits" {
			t.Errorf("query %d: %+v", i, q)
		}
	}
}
