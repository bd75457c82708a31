package planner

import (
	"reflect"
	"testing"

	"vitess.io/vitess/go/mysql/sqlerror"

	"github.com/strata-db/strata/shardproxy/engine"
	"github.com/strata-db/strata/shardproxy/mysqlerr"
)

// TestPlanFacts checks the facts Plan returns with each plan: the ones the
// proxy reads instead of looking at the statement or the primitives.
func TestPlanFacts(t *testing.T) {
	vs := testVSchema()
	tb := func(db, name string) engine.Table { return engine.Table{DB: db, Name: name} }
	cases := []struct {
		sql  string
		want engine.Facts // Query, FromText and Sub are not compared
	}{
		{"select 1", engine.Facts{OneShardWhole: true, Passthrough: true, NoTable: true}},
		{"select now() + 1", engine.Facts{NeedsText: true, Passthrough: true, NoTable: true}},
		{"select get_lock('a', 1)", engine.Facts{NeedsText: true, Passthrough: true, Shard: "s0", Reserve: "GET_LOCK", LockFuncs: true}},
		{"select release_lock('a') as r", engine.Facts{OneShardWhole: true, Passthrough: true, Shard: "s0", LockFuncs: true}},
		{"select table_name from information_schema.tables", engine.Facts{OneShardWhole: true, Passthrough: true}},
		{"select id from users where id = 1", engine.Facts{OneShardWhole: true, Point: true, Reads: []engine.Table{tb("demo", "users")}}},
		{"select id from users where id = 1 limit 3", engine.Facts{OneShardWhole: true, Point: true, HasLimit: true, Reads: []engine.Table{tb("demo", "users")}}},
		{"select id from users", engine.Facts{Reads: []engine.Table{tb("demo", "users")}}},
		{"select sql_calc_found_rows id from test.a limit 2", engine.Facts{OneShardWhole: true, Shard: "s0", CalcFoundRows: true, HasLimit: true, Reads: []engine.Table{tb("test", "a")}}},
		{"select id, last_insert_id(id) from users where id = 1", engine.Facts{NeedsText: true, Point: true, LastInsertIDCol: 2, Reads: []engine.Table{tb("demo", "users")}}},
		{"select v from settings", engine.Facts{OneShardWhole: true, Shard: "s1", Reads: []engine.Table{tb("demo", "settings")}}},
		{"select a.id from test.a join test.b on a.id = b.id union select id from test.a limit 1", engine.Facts{OneShardWhole: true, Shard: "s0", HasLimit: true, Reads: []engine.Table{tb("test", "a"), tb("test", "b")}}},
		{"insert into users (id) values (1)", engine.Facts{Writes: []engine.Table{tb("demo", "users")}}},
		{"insert into test.a select * from test.b", engine.Facts{OneShardWhole: true, Shard: "s0", Reads: []engine.Table{tb("test", "b")}, Writes: []engine.Table{tb("test", "a")}}},
		{"update orders set n = 2 where user_id = 5", engine.Facts{OneShardWhole: true, Point: true, Reads: []engine.Table{tb("demo", "orders")}, Writes: []engine.Table{tb("demo", "orders")}}},
		{"update test.a x join test.b y on x.id = y.id set x.n = y.n", engine.Facts{OneShardWhole: true, Shard: "s0", Reads: []engine.Table{tb("test", "a"), tb("test", "b")}, Writes: []engine.Table{tb("test", "a")}}},
		{"delete x from test.a x join test.b y on x.id = y.id", engine.Facts{OneShardWhole: true, Shard: "s0", Reads: []engine.Table{tb("test", "a"), tb("test", "b")}, Writes: []engine.Table{tb("test", "a")}}},
		{"delete from carts where id = 3", engine.Facts{OneShardWhole: true, Point: true, Reads: []engine.Table{tb("demo", "carts")}, Writes: []engine.Table{tb("demo", "carts")}}},
		{"create temporary table test.tmp (id int)", engine.Facts{OneShardWhole: true, Shard: "s0", Reserve: "CREATE TEMPORARY TABLE", TempDDL: true, Writes: []engine.Table{tb("test", "tmp")}}},
		{"drop temporary table test.tmp", engine.Facts{OneShardWhole: true, Shard: "s0", TempDDL: true, Writes: []engine.Table{tb("test", "tmp")}}},
		{"update test.a x join test.b y on x.id = y.id set n = 1", engine.Facts{OneShardWhole: true, Shard: "s0", Reads: []engine.Table{tb("test", "a"), tb("test", "b")}, Writes: []engine.Table{tb("test", "a"), tb("test", "b")}}},
		{"alter table users add column x int", engine.Facts{Writes: []engine.Table{tb("demo", "users")}}},
	}
	for _, c := range cases {
		stmt, _ := normalize(t, c.sql)
		p, err := Plan(stmt, vs, "demo")
		if err != nil {
			t.Errorf("%s: %v", c.sql, err)
			continue
		}
		got := p.Facts
		if got.NeedsText != (got.FromText != nil) {
			t.Errorf("%s: NeedsText %v with FromText %v", c.sql, got.NeedsText, got.FromText)
		}
		if got.OneShardWhole && got.Query == nil {
			t.Errorf("%s: OneShardWhole without its Query", c.sql)
		}
		got.Query, got.FromText, got.Sub = nil, nil, nil
		if got.OneShardWhole && !got.OneShard {
			t.Errorf("%s: OneShardWhole without OneShard", c.sql)
		}
		got.OneShard = false // OneShardWhole or renamed columns: compat's TestShardedOneShard
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", c.sql, got, c.want)
		}
		if got.SideEffects() != (c.want.Reserve != "" || c.want.LockFuncs || c.want.CalcFoundRows || c.want.LastInsertIDCol != 0) {
			t.Errorf("%s: SideEffects %v", c.sql, got.SideEffects())
		}
	}
}

// TestPlanRefusesWhatReservingCannotServe: a temporary table in a sharded
// database, a named-lock function beside a table.
func TestPlanRefusesWhatReservingCannotServe(t *testing.T) {
	vs := testVSchema()
	for _, sql := range []string{
		"create temporary table tmp (id int)",
		"drop temporary table demo.tmp",
		"select get_lock('a', 1) from users",
		"update test.a set n = release_lock('x')",
	} {
		stmt, _ := normalize(t, sql)
		_, err := Plan(stmt, vs, "demo")
		if se := mysqlerr.From(err); err == nil || se.Number() != sqlerror.ERNotSupportedYet {
			t.Errorf("%s: got %v, want 1235", sql, err)
		}
	}
}

// TestWithReturningFacts: a RETURNING plan keeps its statement's facts and
// never passes a shard's response whole.
func TestWithReturningFacts(t *testing.T) {
	stmt, _ := normalize(t, "delete from users where id = 1")
	p, err := Plan(stmt, testVSchema(), "demo")
	if err != nil {
		t.Fatal(err)
	}
	r := WithReturning(p, " RETURNING id", false)
	if r.Facts.OneShardWhole || r.Facts.Query != nil || !reflect.DeepEqual(r.Facts.Writes, p.Facts.Writes) {
		t.Errorf("facts %+v", r.Facts)
	}
	if _, ok := r.Root.(*engine.Returning); !ok {
		t.Errorf("root %T", r.Root)
	}
}
