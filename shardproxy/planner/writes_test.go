package planner

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/strata-db/strata/shardproxy/engine"
	"github.com/strata-db/strata/shardproxy/planner/internal/difftest"
)

// TestWritesAndRouting checks, over two real shards against one server:
// that statements with the shard key go only to the shards they need (and
// reads are marked as reads), that writes affect the same rows (rows
// affected, then every table compared row by row, and every copy of the
// reference table), and that inserts are split by shard key.
func TestWritesAndRouting(t *testing.T) {
	e := startEnv(t)
	loadDiff(t, e)
	ctx := context.Background()
	s0, s1 := e.vs.Shards[0], e.vs.Shards[1]
	idShard := func(id int) string {
		r, err := e.run(ctx, fmt.Sprintf("select id from users where id = %d", id))
		if err != nil || len(r.Rows) != 1 {
			t.Fatalf("user %d: %v %v", id, r, err)
		}
		sent := e.cursor.takeSent()
		return sent[0].Shard
	}
	e.cursor.takeSent()
	sh7, sh8 := idShard(7), idShard(8)

	for _, c := range []struct {
		q      string
		shards []string // in order; nil: don't check
		read   bool
	}{
		{"select * from users where id = 7", []string{sh7}, true},
		{"select * from users where id = '7'", []string{sh7}, true},
		{"select * from users where id = 7 for update", []string{sh7}, false},
		{"select * from users where id in (7, 7)", []string{sh7}, true},
		{"select * from users", []string{s0, s1}, true},
		{"select * from users where id = 7 or id = 8", []string{s0, s1}, true},
		{"select * from regions", nil, true},
		{"select * from audit", []string{s0}, true},
		{"select * from events where id between 1 and 50", []string{s0}, true},
		{"select * from events where id between 100 and 500", []string{s1}, true},
		{"select * from events where id between 50 and 150", []string{s0, s1}, true},
		{"select * from events where id = 3", []string{s0}, true},
		{"select * from events where id >= 120", []string{s1}, true},
		{"select * from events where id < 10 and id > 2", []string{s0}, true},
		{"update users set name = 'seven' where id = 7", []string{sh7}, false},
		{"delete from users where id = 100000", nil, false},
		{"select u.id from users u join orders o on o.user_id = u.id where u.id = 8", []string{sh8}, true},
	} {
		if _, err := e.run(ctx, c.q); err != nil {
			t.Fatalf("%s: %v", c.q, err)
		}
		sent := e.cursor.takeSent()
		var got []string
		for _, q := range sent {
			got = append(got, q.Shard)
			if q.Read != c.read {
				t.Errorf("%s: sent with Read=%v, want %v", c.q, q.Read, c.read)
			}
		}
		if c.shards != nil && strings.Join(got, ",") != strings.Join(c.shards, ",") {
			t.Errorf("%s: went to %v, want %v", c.q, got, c.shards)
		}
		if c.shards == nil && strings.HasPrefix(c.q, "select") && len(got) != 1 {
			t.Errorf("%s: went to %v, want one shard", c.q, got)
		}
	}

	// A multi-row insert is split: each shard gets its rows in one statement.
	if _, err := e.run(ctx, "insert into users (id, name) values (7001, 'a'), (7002, 'b'), (7003, 'c'), (7004, 'd')"); err != nil {
		t.Fatal(err)
	}
	sent := e.cursor.takeSent()
	if len(sent) != 2 || sent[0].Read || !strings.Contains(sent[0].SQL+sent[1].SQL, "7004") {
		t.Errorf("4-row insert sent %+v", sent)
	}
	if _, err := e.runSingle("insert into users (id, name) values (7001, 'a'), (7002, 'b'), (7003, 'c'), (7004, 'd')"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.runSingle("update users set name = 'seven' where id = 7"); err != nil {
		t.Fatal(err)
	}

	// Without the shard key, an INSERT takes keys from the session's ID
	// service; without one it is refused.
	if _, err := e.run(ctx, "insert into users (name, score) values ('g1', 1), ('g2', 2), ('g3', 3)"); err == nil || !strings.Contains(err.Error(), "1235") {
		t.Errorf("insert without key and without an ID service: %v, want 1235", err)
	}
	gen := &keyCursor{shardCursor: e.cursor, next: 5000}
	res, err := e.runWith(ctx, gen, "insert into users (name, score) values ('g1', 1), ('g2', 2), ('g3', 3)")
	if err != nil || res.RowsAffected != 3 || res.InsertID != 5000 {
		t.Fatalf("insert with generated keys: %+v %v, want 3 rows and insert id 5000", res, err)
	}
	if _, err := e.runSingle("insert into users (id, name, score) values (5000, 'g1', 1), (5001, 'g2', 2), (5002, 'g3', 3)"); err != nil {
		t.Fatal(err)
	}

	writes := []string{
		"update users set score = score + 1 where id = 5",
		"update users set score = 0 where region_id = 3",
		"update orders set qty = qty + 1 where user_id in (1, 2, 3)",
		"delete from orders where total < 5",
		"delete from users where id = 240",
		"insert into users (id, name, score) values (1001, 'new', 5), (1002, 'New', 6), (1003, 'x', null)",
		"replace into tags (tag, cnt) values ('go', 100), ('new', 1), ('PYTHON', 3)",
		// Unique keys are unique per shard: ON DUPLICATE KEY UPDATE, REPLACE
		// and INSERT IGNORE see duplicates of keys that include the shard
		// key (users.id here), not of others (orders.id).
		"insert into users (id, name, score) values (5, 'five', 1), (6, 'six', 2), (9001, 'n', 3) on duplicate key update score = score + 10, name = values(name)",
		"update regions set zone = 'z' where id = 2",
		"insert into regions (id, name, zone) values (7, 'x', 'y')",
		"delete from audit where id > 8",
		"update tags set cnt = cnt + 1 where tag = 'PYTHON'",
		"insert ignore into users (id, name) values (5, 'dup')",
		"update events set amount = amount * 2 where id between 90 and 120",
		"delete from events where kind = 'view'",
		"update users set email = null where name = 'ALICE'",
		// DDL that copies rows counts them: every shard's own rows of a
		// sharded table, the same rows on each copy of a reference table.
		"alter table orders modify qty bigint",
		"alter table regions modify zone varchar(12)",
	}
	for _, w := range writes {
		got, err := e.run(ctx, w)
		if err != nil {
			t.Fatalf("%s: through the shards: %v", w, err)
		}
		want, err := e.runSingle(w)
		if err != nil {
			t.Fatalf("%s: single server: %v", w, err)
		}
		if got.RowsAffected != want.RowsAffected {
			t.Errorf("%s: %d rows affected, want %d", w, got.RowsAffected, want.RowsAffected)
		}
	}
	e.cursor.takeSent()
	for _, tb := range difftest.Tables() {
		key := "id"
		if tb.Name == "tags" {
			key = "tag"
		}
		q := fmt.Sprintf("select * from %s order by %s", tb.Name, key)
		got, err := e.run(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		want, err := e.runSingle(q)
		if err != nil {
			t.Fatal(err)
		}
		if d := difftest.Diff(q, difftest.FromSQLTypes(want), difftest.FromSQLTypes(got)); d != "" {
			t.Errorf("after the writes, %s:\n%s", tb.Name, d)
		}
	}
	// Every shard's copy of the reference table is whole.
	want, _ := e.runSingle("select * from regions order by id")
	for _, s := range e.vs.Shards {
		res, err := e.cursor.ExecuteShards(ctx, []engine.ShardQuery{{Shard: s, SQL: "select * from regions order by id"}})
		if err != nil {
			t.Fatal(err)
		}
		if d := difftest.Diff("select * from regions order by id", difftest.FromSQLTypes(want), difftest.FromSQLTypes(res[0])); d != "" {
			t.Errorf("reference table copy on %s:\n%s", s, d)
		}
	}
}

// keyCursor is a shardCursor whose session generates keys, as the ID
// service will.
type keyCursor struct {
	*shardCursor
	next int64
}

func (k *keyCursor) GenerateKeys(_ context.Context, db, table string, n int) ([]int64, error) {
	out := make([]int64, n)
	for i := range out {
		out[i] = k.next
		k.next++
	}
	return out, nil
}

func TestSideEffectsAreNotReads(t *testing.T) {
	vs := testVSchema()
	for q, want := range map[string]bool{
		"select name from users where id = 1":                                                       true,
		"select get_lock('x', 1) from users where id = 1":                                           false,
		"select release_all_locks() from users where id = 1":                                        false,
		"select nextval(seq) from users where id = 1":                                               false,
		"select sleep(1) from regions":                                                              false,
		"select * from users where id = 1 lock in share mode":                                       false,
		"select * from users where id in (select user_id from orders where user_id = 1 for update)": false,
	} {
		stmt, _ := normalize(t, q)
		p, err := Build(stmt, vs, "demo")
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if cn, ok := p.(*engine.ColumnNames); ok {
			p = cn.Input
		}
		r, ok := p.(*engine.Route)
		if !ok {
			t.Fatalf("%s: plan %T", q, p)
		}
		if r.Read != want {
			t.Errorf("%s: Read = %v, want %v", q, r.Read, want)
		}
	}
}
