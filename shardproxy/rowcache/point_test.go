package rowcache

import (
	"slices"
	"strings"
	"testing"

	"vitess.io/vitess/go/sqltypes"
	querypb "vitess.io/vitess/go/vt/proto/query"
	"vitess.io/vitess/go/vt/sqlparser"

	"github.com/strata-db/strata/cachetier"
)

// logicManager has demo.customers (id int pk, email binary unique) without
// a database, for the pure statement logic.
func logicManager(t *testing.T) *Manager {
	t.Helper()
	m, err := New(Config{Tables: []TableConfig{{DB: "demo", Table: "customers", Cache: cachetier.DefaultConfig()}}, Shards: []Shard{{Name: "s0"}}})
	if err != nil {
		t.Fatal(err)
	}
	tb := m.tables["demo.customers"]
	mk := func(col string, isInt bool) *keyCache {
		c, err := cachetier.New(cachetier.DefaultConfig(), entryCost)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return &keyCache{col: col, isInt: isInt, c: c}
	}
	tb.pk = mk("id", true)
	tb.uniques = []*keyCache{mk("email", false)}
	tb.live.Store(true)
	tb.ready.Store(true)
	return m
}

func parse(t *testing.T, q string) sqlparser.Statement {
	t.Helper()
	stmt, err := sqlparser.NewTestParser().Parse(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return stmt
}

func TestPoint(t *testing.T) {
	m := logicManager(t)
	bv := map[string]*querypb.BindVariable{"v1": sqltypes.Int64BindVariable(42), "s": sqltypes.StringBindVariable("a@x"),
		"one": sqltypes.Int64BindVariable(1), "zero": sqltypes.Int64BindVariable(0)}
	cases := []struct {
		q        string
		db       string
		key, row string // "" = not a point select
	}{
		{"SELECT * FROM customers WHERE id = 5", "demo", "id", "5"},
		{"select name, id from demo.customers where 5 = id", "", "id", "5"},
		{"SELECT c.name FROM customers c WHERE c.id = '007'", "demo", "id", "7"},
		{"SELECT name FROM customers WHERE id = :v1", "demo", "id", "42"},
		{"SELECT name FROM customers WHERE id = -3 LIMIT 1", "demo", "id", "-3"},
		{"SELECT name FROM customers WHERE email = :s", "demo", "email", "a@x"},
		{"SELECT name FROM customers WHERE email = 'b@y'", "demo", "email", "b@y"},
		{"SELECT name FROM customers WHERE id = '7abc'", "demo", "", ""},
		{"SELECT name FROM customers WHERE id = 5 FOR UPDATE", "demo", "", ""},
		{"SELECT SQL_NO_CACHE name FROM customers WHERE id = 5", "demo", "", ""},
		{"SELECT NOW(), name FROM customers WHERE id = 5", "demo", "", ""},
		{"SELECT name FROM customers WHERE id = 5 AND name = 'x'", "demo", "", ""},
		{"SELECT name FROM customers WHERE id > 5", "demo", "", ""},
		{"SELECT name FROM customers WHERE name = 'x'", "demo", "", ""},
		{"SELECT name FROM customers WHERE id = 5 LIMIT 0", "demo", "", ""},
		{"SELECT name FROM customers WHERE id = 5 LIMIT :one", "demo", "id", "5"},
		{"SELECT name FROM customers WHERE id = 5 LIMIT :zero", "demo", "", ""},
		{"SELECT name FROM orders WHERE id = 5", "demo", "", ""},
		{"SELECT name FROM customers WHERE id = 5", "other", "", ""},
		{"SELECT name FROM customers WHERE email = 5", "demo", "", ""},
		{"SELECT o.x FROM customers c WHERE c.id = 5", "demo", "", ""},
	}
	for _, c := range cases {
		p, ok := m.Point(parse(t, c.q), c.db, bv, "utf8mb4")
		if c.key == "" {
			if ok {
				t.Errorf("%s: cached as %s=%s, want not cached", c.q, p.key.col, p.row)
			}
			continue
		}
		if !ok || p.key.col != c.key || p.row != c.row {
			t.Errorf("%s: got ok=%v %v, want %s=%s", c.q, ok, p.row, c.key, c.row)
		}
	}
	// One shape for every key value; another for other columns or session.
	a, _ := m.Point(parse(t, "SELECT name FROM customers WHERE id = 1"), "demo", nil, "s")
	b, _ := m.Point(parse(t, "SELECT name FROM customers WHERE id = 2"), "demo", nil, "s")
	c, _ := m.Point(parse(t, "SELECT name, id FROM customers WHERE id = 1"), "demo", nil, "s")
	d, _ := m.Point(parse(t, "SELECT name FROM customers WHERE id = 1"), "demo", nil, "t")
	if a.variant != b.variant || a.variant == c.variant || a.variant == d.variant {
		t.Fatalf("shapes: %q %q %q %q", a.variant, b.variant, c.variant, d.variant)
	}
}

// describe renders an invalidation as sorted "key:row" and "key:*" items.
func describe(v Invalidation) []string {
	var out []string
	for _, it := range v.items {
		if it.all {
			s := it.t.name() + ":*"
			if it.mayInsert {
				s += "+ins"
			}
			out = append(out, s)
			continue
		}
		for _, r := range it.rows {
			out = append(out, "id:"+r)
		}
		for kc, rows := range it.uniq {
			for _, r := range rows {
				out = append(out, kc.col+":"+r)
			}
		}
		if it.uniqAll {
			out = append(out, "uniq:*")
		}
	}
	slices.Sort(out)
	return out
}

func TestWrites(t *testing.T) {
	m := logicManager(t)
	bv := map[string]*querypb.BindVariable{"v1": sqltypes.Int64BindVariable(9), "l": {Type: querypb.Type_TUPLE, Values: []*querypb.Value{{Type: querypb.Type_INT64, Value: []byte("3")}, {Type: querypb.Type_INT64, Value: []byte("4")}}}}
	cases := []struct {
		q, db string
		want  string
	}{
		{"UPDATE customers SET name = 'x' WHERE id = 5", "demo", "id:5 uniq:*"},
		{"UPDATE customers SET name = 'x' WHERE id IN (1, 2) AND name = 'y'", "demo", "id:1 id:2 uniq:*"},
		{"UPDATE customers SET name = 'x' WHERE id IN ::l", "demo", "id:3 id:4 uniq:*"},
		{"UPDATE customers SET id = 6 WHERE id = :v1", "demo", "id:6 id:9 uniq:*"},
		{"UPDATE customers SET id = id + 1 WHERE id = 1", "demo", "demo.customers:*+ins"},
		{"UPDATE customers SET name = 'x' WHERE name = 'y'", "demo", "demo.customers:*"},
		{"DELETE FROM demo.customers WHERE id = 5", "", "id:5 uniq:*"},
		{"DELETE FROM customers", "demo", "demo.customers:*"},
		{"INSERT INTO customers (id, name, email) VALUES (1, 'a', 'a@x'), (2, 'b', 'b@x')", "demo", "email:a@x email:b@x id:1 id:2"},
		{"INSERT INTO customers (id, name) VALUES (1, 'a')", "demo", "id:1 uniq:*"},
		{"INSERT INTO customers (name) VALUES ('a')", "demo", "demo.customers:*+ins"},
		{"INSERT INTO customers VALUES (1, 'a', 'b')", "demo", "demo.customers:*+ins"},
		{"REPLACE INTO customers (id, name) VALUES (1, 'a')", "demo", "id:1 uniq:*"},
		{"INSERT INTO customers (id, name) VALUES (1, 'a') ON DUPLICATE KEY UPDATE id = 7", "demo", "id:1 id:7 uniq:*"},
		{"INSERT INTO customers (id, name) VALUES (1, 'a') ON DUPLICATE KEY UPDATE id = id + 1", "demo", "demo.customers:*+ins"},
		{"INSERT INTO customers (id, name) VALUES (1, 'a') ON DUPLICATE KEY UPDATE id = LAST_INSERT_ID(id), name = 'b'", "demo", "id:1 uniq:*"},
		{"INSERT INTO customers (id, name) VALUES (1, 'a') ON DUPLICATE KEY UPDATE id = VALUES(id)", "demo", "id:1 uniq:*"},
		{"INSERT INTO customers (id, name) SELECT id, name FROM other", "demo", "demo.customers:*+ins"},
		{"INSERT INTO orders (id) VALUES (1)", "demo", ""},
		{"UPDATE customers c JOIN orders o ON o.cid = c.id SET c.name = 'x'", "demo", "demo.customers:*+ins"},
		{"TRUNCATE TABLE customers", "demo", "demo.customers:*+ins"},
		{"ALTER TABLE customers ADD COLUMN z INT", "demo", "demo.customers:*+ins"},
		{"CALL p()", "demo", "demo.customers:*+ins"},
		{"SELECT * FROM customers WHERE id = 1 FOR UPDATE", "demo", ""},
		{"SET autocommit = 1", "demo", ""},
	}
	for _, c := range cases {
		got := strings.Join(describe(m.Writes(parse(t, c.q), c.db, bv, "")), " ")
		if got != c.want {
			t.Errorf("%s: %q, want %q", c.q, got, c.want)
		}
	}
	// otherUnique: REPLACE may delete a row found by another unique key.
	m.tables["demo.customers"].otherUnique.Store(true)
	if got := describe(m.Writes(parse(t, "REPLACE INTO customers (id, name) VALUES (1, 'a')"), "demo", nil, "")); !slices.Equal(got, []string{"demo.customers:*+ins"}) {
		t.Errorf("REPLACE with another unique index: %v", got)
	}
}
