package compat

import (
	"context"
	"testing"

	"github.com/strata-db/strata/shardproxy/config"
	"github.com/strata-db/strata/txcoord"
)

// TestChainRelease: COMMIT AND CHAIN and ROLLBACK AND CHAIN begin the next
// transaction at once, with the same access mode, in an unsharded and a
// sharded database (where the chained transaction is the proxy's, spanning
// shards); RELEASE closes the connection after the transaction ends.
func TestChainRelease(t *testing.T) {
	sides := killSides(t)
	direct, proxy := sides[0], sides[1]
	proxy.addr = coordinatedProxy(t, "chn")
	for _, tc := range []struct{ name, directDB, proxyDB string }{
		{"unsharded", direct.db, proxy.db},
		{"sharded", direct.demo, proxy.demo},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := pair{direct: direct.open(t, direct.admin, tc.directDB), proxied: proxy.open(t, proxy.admin, tc.proxyDB)}
			p.same(t, tc.directDB, tc.proxyDB,
				"CREATE TABLE IF NOT EXISTS chn (id BIGINT PRIMARY KEY, v INT)",
				"DELETE FROM chn",
				// The chained transaction is one: its insert rolls back.
				"BEGIN",
				"INSERT INTO chn (id, v) VALUES (1, 1)",
				"COMMIT AND CHAIN",
				"SELECT @@in_transaction",
				"INSERT INTO chn (id, v) VALUES (2, 2)",
				"ROLLBACK",
				"SELECT @@in_transaction",
				"SELECT id FROM chn ORDER BY id",
				"BEGIN",
				"INSERT INTO chn (id, v) VALUES (3, 3)",
				"ROLLBACK AND CHAIN",
				"INSERT INTO chn (id, v) VALUES (4, 4)",
				"ROLLBACK WORK",
				"SELECT id FROM chn ORDER BY id",
				// Without a transaction open, AND CHAIN begins one.
				"COMMIT AND CHAIN",
				"INSERT INTO chn (id, v) VALUES (5, 5)",
				"ROLLBACK",
				"SELECT id FROM chn ORDER BY id",
				// Several shards (in the sharded database) on both sides of
				// the chain.
				"BEGIN",
				"INSERT INTO chn (id, v) VALUES (6, 6), (7, 7), (8, 8)",
				"COMMIT WORK AND CHAIN",
				"INSERT INTO chn (id, v) VALUES (9, 9), (10, 10)",
				"UPDATE chn SET v = v + 100",
				"ROLLBACK AND NO CHAIN",
				"SELECT id, v FROM chn ORDER BY id",
				"INSERT INTO chn (id, v) VALUES (11, 11)",
				"ROLLBACK",
				"SELECT COUNT(*) FROM chn",
				// The access mode carries over.
				"START TRANSACTION READ ONLY",
				"SELECT COUNT(*) FROM chn",
				"COMMIT AND CHAIN",
				"INSERT INTO chn (id, v) VALUES (12, 12)",
				"COMMIT AND NO CHAIN NO RELEASE",
				"INSERT INTO chn (id, v) VALUES (13, 13)",
				"SELECT id FROM chn ORDER BY id",
				"COMMIT AND CHAIN RELEASE",
				"COMMIT NO RELEASE",
			)
			// RELEASE: the transaction ends, then the connection.
			for _, stmt := range []string{"COMMIT RELEASE", "ROLLBACK WORK RELEASE"} {
				for _, sd := range []struct {
					side
					db string
				}{{direct, tc.directDB}, {proxy, tc.proxyDB}} {
					c := sd.open(t, sd.admin, sd.db)
					ctx := context.Background()
					for _, q := range []string{"BEGIN", "INSERT INTO chn (id, v) VALUES (20, 20)", stmt} {
						if _, err := c.ExecContext(ctx, q); err != nil {
							t.Fatalf("%s: %s: %v", sd.name, q, err)
						}
					}
					if err := c.QueryRowContext(ctx, "SELECT 1").Scan(new(int)); err == nil || errNumber(err) != 0 {
						t.Errorf("%s: a statement after %s: %v, want a lost connection", sd.name, stmt, err)
					}
					other := sd.open(t, sd.admin, sd.db)
					var n int
					if err := other.QueryRowContext(ctx, "SELECT COUNT(*) FROM chn WHERE id = 20").Scan(&n); err != nil {
						t.Fatal(err)
					}
					if want := map[string]int{"COMMIT RELEASE": 1, "ROLLBACK WORK RELEASE": 0}[stmt]; n != want {
						t.Errorf("%s: after %s the row is there %d times, want %d", sd.name, stmt, n, want)
					}
					if _, err := other.ExecContext(ctx, "DELETE FROM chn WHERE id = 20"); err != nil {
						t.Fatal(err)
					}
				}
			}
		})
	}
}

// TestCompletionType: SET completion_type = CHAIN makes a plain COMMIT or
// ROLLBACK chain the next transaction, = RELEASE makes it close the
// connection, as MariaDB does, in an unsharded and a sharded database;
// AND NO CHAIN and NO RELEASE override it. The proxy's own COMMITs to the
// shards never chain or release: a shard's connection is left in no
// transaction and stays open.
func TestCompletionType(t *testing.T) {
	sides := killSides(t)
	direct, proxy := sides[0], sides[1]
	proxy.addr = coordinatedProxy(t, "kq")
	for _, tc := range []struct{ name, directDB, proxyDB string }{
		{"unsharded", direct.db, proxy.db},
		{"sharded", direct.demo, proxy.demo},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := pair{direct: direct.open(t, direct.admin, tc.directDB), proxied: proxy.open(t, proxy.admin, tc.proxyDB)}
			p.same(t, tc.directDB, tc.proxyDB,
				"CREATE TABLE IF NOT EXISTS kq (id BIGINT PRIMARY KEY, v INT)",
				"DELETE FROM kq",
				"SET completion_type = 'CHAIN'",
				"SELECT @@completion_type",
				"BEGIN",
				"INSERT INTO kq (id, v) VALUES (1, 1), (2, 2), (3, 3)",
				"COMMIT",
				"SELECT @@in_transaction",
				"INSERT INTO kq (id, v) VALUES (4, 4), (5, 5), (6, 6)",
				"ROLLBACK",
				"SELECT @@in_transaction",
				"SELECT id FROM kq ORDER BY id",
				"INSERT INTO kq (id, v) VALUES (7, 7), (8, 8)",
				"COMMIT WORK",
				"UPDATE kq SET v = v + 10",
				"ROLLBACK AND NO CHAIN",
				"SELECT @@in_transaction",
				"SELECT id, v FROM kq ORDER BY id",
				"INSERT INTO kq (id, v) VALUES (9, 9), (10, 10)",
				"SELECT @@in_transaction",
				"SET completion_type = DEFAULT",
				"SELECT @@completion_type",
				"BEGIN",
				"INSERT INTO kq (id, v) VALUES (11, 11), (12, 12)",
				"COMMIT",
				"SELECT @@in_transaction",
				"INSERT INTO kq (id, v) VALUES (13, 13), (14, 14)",
				"ROLLBACK",
				"SELECT id FROM kq ORDER BY id",
				"SET completion_type = 1",
				"COMMIT AND NO CHAIN",
				"SELECT @@in_transaction",
				"SET completion_type = 'NO_CHAIN'",
				"SELECT @@completion_type",
				"SET completion_type = 'bogus'",
				"SET completion_type = 3",
				"SELECT @@completion_type",
			)
			// RELEASE: a plain COMMIT or ROLLBACK closes the connection, and
			// so does COMMIT AND CHAIN; NO RELEASE does not.
			for _, stmt := range []string{"COMMIT", "ROLLBACK", "COMMIT NO RELEASE", "COMMIT AND CHAIN"} {
				for _, sd := range []struct {
					side
					db string
				}{{direct, tc.directDB}, {proxy, tc.proxyDB}} {
					c := sd.open(t, sd.admin, sd.db)
					ctx := context.Background()
					for _, q := range []string{"SET completion_type = 'RELEASE'", "BEGIN", "INSERT INTO kq (id, v) VALUES (20, 20), (21, 21)", stmt} {
						if _, err := c.ExecContext(ctx, q); err != nil {
							t.Fatalf("%s: %s: %v", sd.name, q, err)
						}
					}
					err := c.QueryRowContext(ctx, "SELECT 1").Scan(new(int))
					// AND CHAIN begins the next transaction, then RELEASE
					// closes the connection all the same (MariaDB's order).
					closed := stmt != "COMMIT NO RELEASE"
					if closed && (err == nil || errNumber(err) != 0) {
						t.Errorf("%s: completion_type RELEASE: a statement after %s: %v, want a lost connection", sd.name, stmt, err)
					}
					if !closed && err != nil {
						t.Errorf("%s: completion_type RELEASE: a statement after %s: %v", sd.name, stmt, err)
					}
					if !closed {
						if _, err := c.ExecContext(ctx, "ROLLBACK NO RELEASE"); err != nil {
							t.Fatal(err)
						}
					}
					other := sd.open(t, sd.admin, sd.db)
					var n int
					if err := other.QueryRowContext(ctx, "SELECT COUNT(*) FROM kq WHERE id IN (20, 21)").Scan(&n); err != nil {
						t.Fatal(err)
					}
					if want := map[string]int{"COMMIT": 2, "ROLLBACK": 0, "COMMIT NO RELEASE": 2, "COMMIT AND CHAIN": 2}[stmt]; n != want {
						t.Errorf("%s: after %s the rows are there %d times, want %d", sd.name, stmt, n, want)
					}
					if _, err := other.ExecContext(ctx, "DELETE FROM kq WHERE id IN (20, 21)"); err != nil {
						t.Fatal(err)
					}
				}
			}
			// The shards' connections are in no transaction after all this.
			for _, sh := range env.topo.Shards() {
				n, err := sh.Primary().QueryString(context.Background(), "SELECT COUNT(*) FROM information_schema.INNODB_TRX")
				if err != nil {
					t.Fatal(err)
				}
				if n != "0" {
					t.Errorf("%s: %s transactions left open", sh.Name, n)
				}
			}
		})
	}
}

// coordinatedProxy starts a proxy of the test's own with a one-node
// coordinator and table sharded by id in demo (so that transactions there
// span shards, transaction_mode twopc), and returns its address.
func coordinatedProxy(t *testing.T, table string) string {
	t.Helper()
	g := txcoord.NewXATestGroup(t, 1)
	c := proxyConfig()
	c.Databases["demo"].Tables[table] = &config.Table{Kind: "sharded", Column: "id"}
	c.Transactions.Coordinator = g.GRPCAddrs()
	addr, stop, err := startProxy(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return addr
}
