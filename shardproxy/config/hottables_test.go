package config

import (
	"strings"
	"testing"

	"github.com/strata-db/strata/shardproxy/vschema"
)

const hot = `shards:
  - name: s0
    primary: 127.0.0.1:23306
  - name: s1
    primary: 127.0.0.1:23308
databases:
  demo:
    sharded: true
    tables:
      orders:
        kind: sharded
        column: customer_id
        sub_tables: 8
        sequences:
          - column: id
          - column: ref
            tag: refs
      visits: {kind: sharded, column: user_id, sub_table_by: month, sub_table_column: day, sub_table_from: "2026-01"}
      t{1..2}: {kind: sharded, column: id, sub_tables: 4, sequences: [{column: id}]}
`

func TestSubTablesAndSequences(t *testing.T) {
	c, err := Parse("hot.yaml", []byte(hot))
	if err != nil {
		t.Fatal(err)
	}
	vs, err := c.VSchema()
	if err != nil {
		t.Fatal(err)
	}
	d := vs.Databases["demo"]
	o := d.Tables["orders"]
	if o.Sub.By != vschema.SubHash || o.Sub.Count != 8 {
		t.Errorf("orders sub-tables: %+v", o.Sub)
	}
	if len(o.Sequences) != 2 || o.Sequences[0] != (vschema.Sequence{Column: "id", Tag: "demo.orders.id"}) || o.Sequences[1].Tag != "refs" {
		t.Errorf("orders sequences: %+v", o.Sequences)
	}
	if v := d.Tables["visits"]; v.Sub.By != vschema.SubMonth || v.Sub.Column != "day" || v.Sub.From.String() != "2026-01" || v.Sub.Ahead != 3 {
		t.Errorf("visits sub-tables: %+v", v.Sub)
	}
	if t2 := d.Tables["t2"]; t2.Sub.Count != 4 || t2.Sequences[0].Tag != "demo.t2.id" {
		t.Errorf("t2: %+v", t2)
	}
	for _, n := range []string{"orders_0000", "orders_0007", "visits_202601", "visits_203012"} {
		if !d.IsSubTableName(n) {
			t.Errorf("%s is a sub-table name", n)
		}
	}
	for _, n := range []string{"orders", "orders_0008", "orders_00001", "visits_202613", "orders_abcd", "audit_0001"} {
		if d.IsSubTableName(n) {
			t.Errorf("%s is not a sub-table name", n)
		}
	}
}

func TestSubTableErrors(t *testing.T) {
	base := strings.SplitAfter(hot, "    tables:\n")[0]
	for _, c := range []struct{ table, want string }{
		{"x: {kind: sharded, column: id, sub_tables: 1}", "tables.x.sub_tables: 1, want 2 to 1024"},
		{"x: {kind: reference, sub_tables: 4}", "tables.x.sub_tables: only a sharded table"},
		{"x: {kind: sharded, column: id, sub_table_by: month, sub_table_from: 2026-01}", "tables.x.sub_table_column: required"},
		{"x: {kind: sharded, column: id, sub_table_by: month, sub_table_column: d}", "tables.x.sub_table_from"},
		{"x: {kind: sharded, column: id, sub_table_by: month, sub_table_column: d, sub_table_from: 2026-13}", "tables.x.sub_table_from"},
		{"x: {kind: sharded, column: id, sub_table_by: month, sub_table_column: d, sub_table_from: 2026-05, sub_table_to: 2026-01}", "sub_table_to"},
		{"x: {kind: sharded, column: id, sub_table_by: week}", "tables.x.sub_table_by"},
		{"x: {kind: sharded, column: id, sub_table_column: d}", "tables.x.sub_table_by"},
		{"x: {kind: sharded, column: id, sequences: [{column: id}, {column: ID}]}", "sequences[1].column: ID is listed twice"},
		{"x: {kind: sharded, column: id, sequences: [{column: id, tag: 'a b'}]}", "sequences[0].tag"},
		{"x: {kind: reference, sequences: [{column: id}]}", "sequences: only a sharded table"},
	} {
		_, err := Parse("bad.yaml", []byte(base+"      "+c.table+"\n"))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.table, err, c.want)
		}
	}
}
