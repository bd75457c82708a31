package compat

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/strata-db/strata/localdb"
	"github.com/strata-db/strata/shardproxy/config"
)

// TestExistsAcrossShards: SELECT [NOT] EXISTS (subquery) over a sharded
// table with a condition that is not on the shard key (Laravel's exists():
// select exists(select * from `users` where `email` = ?) as `exists`) runs
// on every shard and answers as one MariaDB does: the same value, column
// name and type, with and without an alias, text and prepared, inside a
// transaction too. It got 1235 ("a subquery ... that needs rows from more
// than one shard"). Rails' SELECT 1 AS one ... LIMIT 1 is checked beside it.
func TestExistsAcrossShards(t *testing.T) {
	setup(t)
	c := proxyConfig()
	c.Databases["demo"].Tables["ex_users"] = &config.Table{Kind: "sharded", Column: "id"}
	// A transaction's EXISTS reads every shard: in transaction_mode single
	// (the default without a coordinator) that is refused like any
	// cross-shard read in a transaction.
	c.Databases["demo"].TransactionMode = config.TxMulti
	addr, stop, err := startProxy(c)
	if err != nil {
		t.Fatalf("proxy: %v", err)
	}
	t.Cleanup(stop)
	for _, interp := range []string{"false", "true"} {
		t.Run("interpolate="+interp, func(t *testing.T) {
			q := "?timeout=5s&interpolateParams=" + interp
			p := ormSides{
				direct:  openConn(t, localdb.AppUser+"@tcp("+env.topo.Shards()[0].Primary().Addr()+")/direct_demo"+q),
				proxied: openConn(t, "root@tcp("+addr+")/demo"+q),
				types:   true,
			}
			if !p.same(t,
				"DROP TABLE IF EXISTS ex_users",
				"CREATE TABLE ex_users (id BIGINT NOT NULL PRIMARY KEY, email VARCHAR(50) NOT NULL, tag VARCHAR(10) NOT NULL)",
				"INSERT INTO ex_users (id, email, tag) VALUES (1, 'a1@x', 'both'), (2, 'a2@x', 'both'), (3, 'a3@x', 'both'), (4, 'a4@x', 'both'), (5, 'a5@x', 'both'), (6, 'a6@x', 'both'), (7, 'a7@x', 'both'), (8, 'a8@x', 'both'), (9, 'a9@x', 'both'), (10, 'a10@x', 'both'), (11, 'a11@x', 'both'), (12, 'a12@x', 'both'), (13, 'a13@x', 'both'), (14, 'a14@x', 'both'), (15, 'a15@x', 'both'), (16, 'a16@x', 'both')",
			) {
				t.FailNow()
			}
			// Which shard holds which id, to ask for rows of one shard only.
			var on [2][]int
			for i, sh := range env.topo.Shards()[:2] {
				on[i] = shardIDs(t, sh.Primary().DSN("demo"))
			}
			if len(on[0]) == 0 || len(on[1]) == 0 {
				t.Fatalf("ids by shard %v: want rows on both shards", on)
			}
			p.same(t,
				fmt.Sprintf("UPDATE ex_users SET tag = 'only0' WHERE id = %d", on[0][0]),
				fmt.Sprintf("UPDATE ex_users SET tag = 'only1' WHERE id = %d", on[1][0]),
			)
			laravel := "select exists(select * from `ex_users` where `email` = ?) as `exists`"
			for _, email := range []string{fmt.Sprintf("a%d@x", on[0][0]), fmt.Sprintf("a%d@x", on[1][0]), "nobody@x"} {
				p.sameArgs(t, laravel, email)
			}
			for _, tag := range []string{"both", "only0", "only1", "none"} {
				p.sameArgs(t, "select exists(select * from `ex_users` where `tag` = ?) as `exists`", tag)
				p.sameArgs(t, "SELECT EXISTS (SELECT 1 FROM ex_users WHERE tag = ?)", tag)
				p.sameArgs(t, "select not exists(select id from ex_users where tag = ?) as missing", tag)
				p.sameArgs(t, "SELECT NOT EXISTS(SELECT * FROM ex_users WHERE tag=?)", tag)
				p.sameArgs(t, "SELECT 1 AS one FROM ex_users WHERE tag = ? LIMIT 1", tag)
			}
			p.same(t,
				"select exists(select * from ex_users where tag = 'only1')",
				"select EXISTS( select * from ex_users where tag = 'none' )",
				"select not exists(select * from ex_users where tag = 'only0') as n from dual",
				"SELECT EXISTS(SELECT 1 FROM ex_users WHERE tag <> 'both' AND email LIKE 'a%') AS e",
				// The shard key pins the subquery to one shard: it always ran.
				"select exists(select * from ex_users where id = 3) as `exists`",
				"select exists(select * from ex_users where id = 99) as `exists`",
			)
			// In a transaction: a row inserted and not committed is seen by
			// the transaction's own EXISTS, and gone after ROLLBACK.
			p.same(t, "BEGIN")
			p.sameArgs(t, "INSERT INTO ex_users (id, email, tag) VALUES (?, ?, ?)", on[1][len(on[1])-1]+100, "new@x", "fresh")
			p.sameArgs(t, laravel, "new@x")
			p.sameArgs(t, "select not exists(select * from ex_users where tag = ?) as `gone`", "fresh")
			p.sameArgs(t, laravel, fmt.Sprintf("a%d@x", on[0][0]))
			p.same(t, "ROLLBACK")
			p.sameArgs(t, laravel, "new@x")
			// EXISTS first in a transaction, then a write on one shard.
			p.same(t, "START TRANSACTION")
			p.sameArgs(t, laravel, "new@x")
			p.sameArgs(t, "INSERT INTO ex_users (id, email, tag) VALUES (?, ?, ?)", on[0][len(on[0])-1]+100, "new@x", "fresh")
			p.sameArgs(t, laravel, "new@x")
			p.same(t, "COMMIT")
			p.sameArgs(t, laravel, "new@x")
			p.same(t, "select exists(select * from ex_users where tag = 'fresh') as `exists`")
			// Outside the recognized shape, or a subquery that does not
			// split by shard: still 1235.
			for _, q := range []string{
				"select exists(select tag from ex_users group by tag having count(*) > 1) as e",
				"select exists(select * from ex_users where tag = 'both') as e, 1 as x",
				"select exists(select * from ex_users where tag = 'both') + 0 as e",
			} {
				if got := ormAsk(t, p.proxied, false, q); !strings.HasPrefix(got, "error 1235: ") {
					t.Errorf("%s: through the proxy %s, want 1235", q, got)
				}
			}
		})
	}
}

// TestExistsInSingleModeTransaction: in transaction_mode single (the
// default without a coordinator), an EXISTS that reads every shard is
// refused inside a transaction as any cross-shard read is, and runs
// outside one.
func TestExistsInSingleModeTransaction(t *testing.T) {
	setup(t)
	c := proxyConfig()
	c.Databases["demo"].Tables["ex_single"] = &config.Table{Kind: "sharded", Column: "id"}
	addr, stop, err := startProxy(c)
	if err != nil {
		t.Fatalf("proxy: %v", err)
	}
	t.Cleanup(stop)
	x := openConn(t, "root@tcp("+addr+")/demo?timeout=5s&interpolateParams=false")
	for _, q := range []string{
		"DROP TABLE IF EXISTS ex_single",
		"CREATE TABLE ex_single (id BIGINT NOT NULL PRIMARY KEY, tag VARCHAR(10) NOT NULL)",
		"INSERT INTO ex_single (id, tag) VALUES (1, 'a'), (2, 'a'), (3, 'a'), (4, 'a'), (5, 'a'), (6, 'a'), (7, 'a'), (8, 'a')",
	} {
		if got := ormAsk(t, x, false, q); !strings.HasPrefix(got, "ok ") {
			t.Fatalf("%s: %s", q, got)
		}
	}
	q := "select exists(select * from ex_single where tag = ?) as `exists`"
	if got := ormAsk(t, x, false, q, "a"); got != `["exists"] [["1"]]` {
		t.Errorf("outside a transaction: %s", got)
	}
	ormAsk(t, x, false, "BEGIN")
	scatter := ormAsk(t, x, false, "SELECT id FROM ex_single WHERE tag = ?", "a")
	got := ormAsk(t, x, false, q, "a")
	ormAsk(t, x, false, "ROLLBACK")
	if !strings.HasPrefix(got, "error 1235: ") || strings.HasPrefix(scatter, "error") != strings.HasPrefix(got, "error") {
		t.Errorf("in a transaction: %s (a plain cross-shard read: %s), want 1235 as the plain read", got, scatter)
	}
}

// shardIDs lists the ids of demo.ex_users on one shard, read directly.
func shardIDs(t *testing.T, dsn string) []int {
	t.Helper()
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rows, err := db.QueryContext(ctx, "SELECT id FROM ex_users ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var ids []int
	for rows.Next() {
		var id int
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return ids
}
