package compat

import (
	"context"
	"testing"
)

// TestShardedOneShard: in a sharded database, := inside a SELECT's
// expressions, DO and CALL answer as MariaDB does when they touch one
// shard (a route by the shard key, no table, a procedure whose arguments
// name no sharded table), also inside a transaction; across shards := is
// refused with 1235, as is DO or CALL naming a sharded table.
func TestShardedOneShard(t *testing.T) {
	sides := killSides(t)
	direct, proxy := sides[0], sides[1]
	// The procedure, on the direct side's database and on every shard's
	// copy of the sharded one (the proxy runs CALL on the first).
	for _, sh := range env.topo.Shards() {
		for _, db := range []string{"direct_demo", "demo"} {
			if sh.Name != env.topo.Shards()[0].Name && db == "direct_demo" {
				continue
			}
			if err := sh.Primary().Exec(context.Background(),
				"DROP PROCEDURE IF EXISTS "+db+".asg_p",
				"CREATE PROCEDURE "+db+".asg_p(IN a INT, OUT b INT) BEGIN SET b = a * 2; SELECT a AS got; END",
			); err != nil {
				t.Fatalf("on %s: %v", sh.Name, err)
			}
		}
	}
	p := pair{direct: direct.open(t, direct.admin, direct.demo), proxied: proxy.open(t, proxy.admin, proxy.demo)}
	p.same(t, direct.demo, proxy.demo,
		"CREATE TABLE IF NOT EXISTS asg (id BIGINT PRIMARY KEY, k INT, v INT)",
		"DELETE FROM asg",
		"INSERT INTO asg (id, k, v) VALUES (1, 1, 10), (2, 2, 20), (3, 3, 30), (4, 4, 40)",
		"SELECT @a := v FROM asg WHERE id = 1",
		"SELECT @a",
		"SELECT @a := v, id FROM asg WHERE id = 4 AND k = 4",
		"SELECT @a",
		"SELECT (@x := 5) + 1",
		"SELECT @x",
		"SELECT @x := @x + 1, @x",
		"SELECT @x",
		"SET @r := 0",
		"SELECT @r := @r + 1 AS n, v FROM asg WHERE id = 3",
		"SELECT @r",
		"DO 1",
		"DO @y := 7",
		"SELECT @y",
		"DO @y := @y * 2, SLEEP(0)",
		"SELECT @y",
		"CALL asg_p(21, @res)",
		"SELECT @res",
		"CALL asg_p(@y, @res)",
		"SELECT @res",
		"CALL no_such_proc()",
		"BEGIN",
		"SELECT v FROM asg WHERE id = 2",
		"DO @t := 1",
		"SELECT @t := v FROM asg WHERE id = 2",
		"SELECT @t",
		"COMMIT",
		"SELECT @t",
	)
	// As prepared statements (go-sql-driver prepares when given args).
	for _, q := range []struct {
		q   string
		arg any
	}{
		{"SELECT @pa := v FROM asg WHERE id = ?", 2},
		{"SELECT @pa", nil},
		{"SELECT (@pb := ?) + 1 AS r", 41}, // named: a column named by its text would show the value, not ?
		{"SELECT @pb", nil},
		{"DO @pc := ?", 5},
		{"SELECT @pc", nil},
	} {
		var args []any
		if q.arg != nil {
			args = []any{q.arg}
		}
		d, x := ask(t, p.direct, q.q, args...), ask(t, p.proxied, q.q, args...)
		if d.String() != x.String() {
			t.Errorf("prepared %s: MariaDB %v, proxy %v %s", q.q, d, x, x.Msg)
		}
	}
	// What spans shards is refused through the proxy (MariaDB, one
	// server, answers it).
	for _, q := range []string{
		"SELECT @z := v FROM asg",
		"DO (SELECT COUNT(*) FROM asg)",
		"CALL asg_p((SELECT COUNT(*) FROM asg), @res)",
	} {
		if a := ask(t, p.proxied, q); a.Err != 1235 {
			t.Errorf("through the proxy %s: %v, want 1235", q, a)
		}
	}
}
