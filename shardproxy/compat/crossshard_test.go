package compat

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"github.com/strata-db/strata/localdb"
	"github.com/strata-db/strata/shardproxy/config"
	"github.com/strata-db/strata/shardproxy/proxytest"
	"github.com/strata-db/strata/txcoord"
)

// The cross-shard tests: a proxy of the test's own with a coordinator
// (transaction_mode twopc) over the package's two shards, table xs
// sharded by id in demo; the direct side is direct_demo on s0's server.
// Statements that touch ids a and b (on different shards) span shards
// through the proxy.
var xsIDs struct {
	a, b   int // ids on s0 and s1
	a2, b2 int // others
}

const xsRows = 16

// xsProxyMode starts a coordinated proxy with tables xs, xs2, xs3 and
// xsub (4 sub-tables) sharded by id in demo, whose transaction_mode is
// mode ("": the default, twopc), and returns its address.
func xsProxyMode(t *testing.T, mode string) string {
	t.Helper()
	setup(t)
	g := txcoord.NewXATestGroup(t, 1)
	c := proxyConfig()
	for _, tb := range []string{"xs", "xs2", "xs3"} {
		c.Databases["demo"].Tables[tb] = &config.Table{Kind: "sharded", Column: "id"}
	}
	c.Databases["demo"].Tables["xsub"] = &config.Table{Kind: "sharded", Column: "id", SubTables: 4}
	c.Transactions.Coordinator = g.GRPCAddrs()
	c.Databases["demo"].TransactionMode = mode
	addr, stop, err := startProxy(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return addr
}

// xsPair is a pair on a coordinated proxy's demo and direct_demo, with
// table xs (id, v) holding ids 1..xsRows, v = id, on both sides.
func xsPair(t *testing.T) xsPairOf {
	t.Helper()
	return xsPairMode(t, "")
}

// xsPairMode is xsPair with demo's transaction_mode mode.
func xsPairMode(t *testing.T, mode string) xsPairOf {
	t.Helper()
	addr := xsProxyMode(t, mode)
	p := xsPairOf{pair: pair{direct: openOn(t, env.topo.Shards()[0].Primary().Addr(), "direct_demo", localdb.AppUser), proxied: openOn(t, addr, "demo", "root")}, proxyAddr: addr}
	var vals []string
	for i := 1; i <= xsRows; i++ {
		vals = append(vals, fmt.Sprintf("(%d, %d)", i, i))
	}
	p.same(t, "direct_demo", "demo",
		"CREATE TABLE IF NOT EXISTS xs (id BIGINT PRIMARY KEY, v INT NOT NULL)",
		"DELETE FROM xs",
		"INSERT INTO xs (id, v) VALUES "+strings.Join(vals, ", "),
	)
	if xsIDs.a == 0 {
		on := map[string][]int{}
		for _, sh := range env.topo.Shards() {
			for i := 1; i <= xsRows; i++ {
				n, err := sh.Primary().QueryString(context.Background(), fmt.Sprintf("SELECT COUNT(*) FROM demo.xs WHERE id = %d", i))
				if err != nil {
					t.Fatal(err)
				}
				if n == "1" {
					on[sh.Name] = append(on[sh.Name], i)
				}
			}
		}
		s0, s1 := on[env.topo.Shards()[0].Name], on[env.topo.Shards()[1].Name]
		if len(s0) < 2 || len(s1) < 2 {
			t.Fatalf("ids by shard: %v", on)
		}
		xsIDs.a, xsIDs.a2, xsIDs.b, xsIDs.b2 = s0[0], s0[1], s1[0], s1[1]
	}
	return p
}

// xsPairOf is a pair and the proxy's address.
type xsPairOf struct {
	pair
	proxyAddr string
}

// script replaces {a} {b} {a2} {b2} with ids on s0 and s1.
func xsScript(stmts ...string) []string {
	r := strings.NewReplacer("{a}", fmt.Sprint(xsIDs.a), "{b}", fmt.Sprint(xsIDs.b), "{a2}", fmt.Sprint(xsIDs.a2), "{b2}", fmt.Sprint(xsIDs.b2))
	out := make([]string, len(stmts))
	for i, s := range stmts {
		out[i] = r.Replace(s)
	}
	return out
}

func openOn(t *testing.T, addr, db, user string) *sql.Conn {
	t.Helper()
	return side{name: addr, addr: addr}.open(t, user, db)
}

// TestCrossShardImplicitCommit: in a transaction with writes open on two
// shards, DDL, SET autocommit = 1 (from 0) and BEGIN commit it, as on one
// server; START TRANSACTION READ ONLY stays read only on every shard it
// reaches (a write on the second shard got through and was committed).
func TestCrossShardImplicitCommit(t *testing.T) {
	p := xsPair(t)
	p.same(t, "direct_demo", "demo", xsScript(
		"BEGIN",
		"UPDATE xs SET v = v + 10 WHERE id = {a}",
		"UPDATE xs SET v = v + 10 WHERE id = {b}",
		"SELECT @@in_transaction",
		"CREATE TABLE IF NOT EXISTS xs2 (id BIGINT PRIMARY KEY)",
		"SELECT @@in_transaction",
		"ROLLBACK",
		"SELECT id, v FROM xs ORDER BY id",
		"SET autocommit = 0",
		"UPDATE xs SET v = v + 100 WHERE id = {a}",
		"UPDATE xs SET v = v + 100 WHERE id = {b}",
		"SELECT @@in_transaction",
		"SET autocommit = 1",
		"SELECT @@in_transaction",
		"ROLLBACK",
		"SELECT id, v FROM xs ORDER BY id",
		"BEGIN",
		"UPDATE xs SET v = v + 1000 WHERE id = {a}",
		"UPDATE xs SET v = v + 1000 WHERE id = {b}",
		"BEGIN",
		"SELECT @@in_transaction",
		"UPDATE xs SET v = v + 1000 WHERE id = {b2}",
		"ROLLBACK",
		"SELECT id, v FROM xs ORDER BY id",
		"START TRANSACTION READ ONLY",
		"SELECT v FROM xs WHERE id = {a}",
		"UPDATE xs SET v = v + 10 WHERE id = {b}",
		"INSERT INTO xs (id, v) VALUES (100, 1), (101, 1), (102, 1), (103, 1)",
		"SELECT v FROM xs WHERE id = {b}",
		"COMMIT",
		"SELECT id, v FROM xs ORDER BY id",
		"START TRANSACTION READ ONLY",
		"SELECT SUM(v) FROM xs",
		"UPDATE xs SET v = v + 10 WHERE id = {a}",
		"UPDATE xs SET v = v + 10 WHERE id = {b}",
		"COMMIT",
		"SELECT id, v FROM xs ORDER BY id",
	)...)
}

// TestCrossShardReadWrite: START TRANSACTION READ WRITE begins a
// transaction that can span shards and write on its first shard after it
// has (it got 1235, as a START TRANSACTION with options), also over a
// session whose transactions are read only by default.
func TestCrossShardReadWrite(t *testing.T) {
	p := xsPair(t)
	p.same(t, "direct_demo", "demo", xsScript(
		"START TRANSACTION READ WRITE",
		"UPDATE xs SET v = v + 1 WHERE id = {a}",
		"UPDATE xs SET v = v + 1 WHERE id = {b}",
		"UPDATE xs SET v = v + 1 WHERE id = {a}",
		"SELECT @@in_transaction",
		"COMMIT",
		"SELECT id, v FROM xs ORDER BY id",
		"SET SESSION TRANSACTION READ ONLY",
		"START TRANSACTION READ WRITE",
		"UPDATE xs SET v = v + 10 WHERE id = {b}",
		"UPDATE xs SET v = v + 10 WHERE id = {a}",
		"UPDATE xs SET v = v + 10 WHERE id = {b}",
		"COMMIT",
		"START TRANSACTION",
		"UPDATE xs SET v = v + 100 WHERE id = {a}",
		"ROLLBACK",
		"SET SESSION TRANSACTION READ WRITE",
		"SELECT id, v FROM xs ORDER BY id",
	)...)
}

// TestCrossShardStatementAtomic: a statement of a distributed transaction
// that fails on one shard leaves nothing of its other shards' parts (a
// scatter UPDATE out of range on one shard, a multi-row INSERT with a
// duplicate key on one shard: their rows on the other shard stayed and
// were committed), and the transaction goes on, as on one server.
func TestCrossShardStatementAtomic(t *testing.T) {
	p := xsPair(t)
	p.same(t, "direct_demo", "demo", xsScript(
		"UPDATE xs SET v = 2147483600 WHERE id = {b}",
		"BEGIN",
		"UPDATE xs SET v = v + 1 WHERE id = {a2}",
		"UPDATE xs SET v = v + 1 WHERE id = {b2}",
		"UPDATE xs SET v = v + 100",
		"SELECT id, v FROM xs ORDER BY id",
		"SELECT @@in_transaction",
		"COMMIT",
		"SELECT id, v FROM xs ORDER BY id",
		// The first shard plain until the statement: made an XA branch in
		// its middle, its savepoint with it.
		"BEGIN",
		"UPDATE xs SET v = v + 1 WHERE id = {a2}",
		"UPDATE xs SET v = v + 100",
		"UPDATE xs SET v = v + 1 WHERE id = {b2}",
		"COMMIT",
		"SELECT id, v FROM xs ORDER BY id",
		"BEGIN",
		"UPDATE xs SET v = v + 1 WHERE id = {a2}",
		"UPDATE xs SET v = v + 1 WHERE id = {b2}",
		"INSERT INTO xs (id, v) VALUES (100, 1), (101, 1), (102, 1), (103, 1), ({b}, 1)",
		"SELECT id, v FROM xs ORDER BY id",
		"INSERT INTO xs (id, v) VALUES (100, 1), (101, 1), (102, 1), (103, 1), ({a}, 1)",
		"INSERT INTO xs (id, v) VALUES (100, 1), (101, 1), (102, 1), (103, 1)",
		"SELECT @@in_transaction",
		"COMMIT",
		"SELECT id, v FROM xs ORDER BY id",
		// Autocommit: the same, as one distributed transaction.
		"INSERT INTO xs (id, v) VALUES (200, 1), (201, 1), (202, 1), (203, 1), ({b}, 1)",
		"UPDATE xs SET v = v + 100",
		"SELECT id, v FROM xs ORDER BY id",
	)...)
}

// TestCrossShardSessionState: ROW_COUNT() is 0 after the statements the
// proxy answers itself (BEGIN, SAVEPOINT, COMMIT, ROLLBACK, SET), a
// cross-shard COMMIT included (it kept the previous statement's);
// LAST_INSERT_ID() survives a distributed transaction; @@in_transaction
// with autocommit off is 0 until a statement begins the transaction and
// after COMMIT (the question itself began one on a shard).
func TestCrossShardSessionState(t *testing.T) {
	p := xsPair(t)
	p.same(t, "direct_demo", "demo", xsScript(
		"SELECT 1",
		"BEGIN",
		"SELECT ROW_COUNT()",
		"UPDATE xs SET v = v + 1 WHERE id = {a}",
		"SAVEPOINT x",
		"SELECT ROW_COUNT()",
		"UPDATE xs SET v = v + 1 WHERE id = {a}",
		"COMMIT",
		"SELECT ROW_COUNT()",
		"UPDATE xs SET v = v + 1 WHERE id = {a}",
		"SET @x = 1",
		"SELECT ROW_COUNT()",
		"UPDATE xs SET v = v + 1 WHERE id = {a}",
		"ROLLBACK",
		"SELECT ROW_COUNT()",
		"UPDATE xs SET v = v + 1 WHERE id = {a}",
		"DO 1",
		"SELECT ROW_COUNT()",
		"SELECT LAST_INSERT_ID(7)",
		"BEGIN",
		"UPDATE xs SET v = v + 1 WHERE id = {a}",
		"UPDATE xs SET v = v + 1 WHERE id = {b}",
		"SELECT LAST_INSERT_ID()",
		"COMMIT",
		"SELECT LAST_INSERT_ID(), ROW_COUNT(), @@in_transaction",
		"SET autocommit = 0",
		"SELECT @@in_transaction",
		"SELECT v FROM xs WHERE id = {a}",
		"SELECT @@in_transaction",
		"SELECT v FROM xs WHERE id = {b}",
		"UPDATE xs SET v = v + 1 WHERE id = {a}",
		"UPDATE xs SET v = v + 1 WHERE id = {b}",
		"COMMIT",
		"SELECT @@in_transaction",
		"UPDATE xs SET v = v + 1 WHERE id = {a}",
		"UPDATE xs SET v = v + 1 WHERE id = {b}",
		"ROLLBACK",
		"SET autocommit = 1",
		"SELECT id, v FROM xs ORDER BY id",
	)...)
}

// TestSubTableStatementAtomic: a statement that writes through several
// queries on one shard (sub-tables) and fails on one of them leaves
// nothing of the others, in autocommit (they committed one by one) and in
// a transaction (they stayed in it), as on one server.
func TestSubTableStatementAtomic(t *testing.T) {
	p := xsPair(t)
	p.same(t, "direct_demo", "demo",
		"DROP TABLE IF EXISTS xsub",
		"CREATE TABLE xsub (id BIGINT PRIMARY KEY, v INT NOT NULL)",
		"INSERT INTO xsub (id, v) VALUES (1,1),(2,2),(3,3),(4,4),(5,5),(6,6),(7,7),(8,8),(9,9),(10,10),(11,11),(12,12),(13,13),(14,14),(15,15),(16,16)",
		// 1, 2, 3 and 6 are on s1, each in a sub-table of its own.
		"UPDATE xsub SET v = 2147483000 WHERE id = 2",
		"UPDATE xsub SET v = v + 1000 WHERE id IN (6, 2, 3, 1)",
		"SELECT id, v FROM xsub ORDER BY id",
		"INSERT INTO xsub (id, v) VALUES (1,1),(2,2),(3,3),(4,4),(5,5),(6,6),(7,7),(8,8),(9,9),(10,10),(11,11),(12,12),(13,13),(14,14),(15,15),(16,16)",
		"SELECT id, v FROM xsub ORDER BY id",
		"BEGIN",
		"UPDATE xsub SET v = v + 1000 WHERE id IN (6, 2, 3, 1)",
		"COMMIT",
		"SELECT id, v FROM xsub ORDER BY id",
	)
}

// TestCrossShardUpgradeRetry: a transaction whose first shard took an
// AUTO_INCREMENT value before it spanned shards cannot be made
// distributed (run again, the INSERT takes another value): 1213, retry.
// The retry must succeed (it failed the same way every time): the
// session's next transaction begins as an XA branch.
func TestCrossShardUpgradeRetry(t *testing.T) {
	p := xsPair(t)
	c := p.proxied
	for _, q := range xsScript(
		"DROP TABLE IF EXISTS xs3",
		"CREATE TABLE xs3 (id BIGINT PRIMARY KEY, seq BIGINT AUTO_INCREMENT, UNIQUE KEY (seq))",
		"BEGIN",
		"INSERT INTO xs3 (id) VALUES ({a})",
	) {
		if a := ask(t, c, q); a.Err != 0 {
			t.Fatalf("%s: %d %s", q, a.Err, a.Msg)
		}
	}
	if a := ask(t, c, xsScript("UPDATE xs SET v = v + 1 WHERE id = {b}")[0]); a.Err != 1213 {
		t.Errorf("the first shard's AUTO_INCREMENT value changed when run again: %v, want 1213", a)
	}
	for _, q := range xsScript(
		"ROLLBACK",
		"BEGIN",
		"INSERT INTO xs3 (id) VALUES ({a})",
		"UPDATE xs SET v = v + 1 WHERE id = {b}",
		"COMMIT",
	) {
		if a := ask(t, c, q); a.Err != 0 {
			t.Errorf("the retry: %s: %d %s", q, a.Err, a.Msg)
		}
	}
	for q, want := range map[string]string{
		"SELECT v - {b} FROM xs WHERE id = {b}":   "1",
		"SELECT COUNT(*) FROM xs3 WHERE id = {a}": "1",
	} {
		if a := ask(t, c, xsScript(q)[0]); a.Err != 0 || len(a.Rows) != 1 || a.Rows[0][0] != want {
			t.Errorf("after the retry: %s: %v, want %s", q, a, want)
		}
	}
}

// TestCrossShardStatusFlags: the SERVER_STATUS_IN_TRANS and AUTOCOMMIT
// bits of the OK packets of a transaction that spans shards, of its
// COMMIT, of one ended by DDL, and with autocommit off, are MariaDB's.
func TestCrossShardStatusFlags(t *testing.T) {
	p := xsPair(t)
	script := xsScript(
		"BEGIN",
		"UPDATE xs SET v = v + 1 WHERE id = {a}",
		"UPDATE xs SET v = v + 1 WHERE id = {b}",
		"UPDATE xs SET v = v + 1",
		"INSERT INTO xs (id, v) VALUES ({a}, 1), (500, 1)",
		"COMMIT",
		"SET autocommit = 0",
		"UPDATE xs SET v = v + 1 WHERE id = {a}",
		"UPDATE xs SET v = v + 1 WHERE id = {b}",
		"COMMIT",
		"UPDATE xs SET v = v + 1 WHERE id = {b}",
		"CREATE TABLE IF NOT EXISTS xs2 (id BIGINT PRIMARY KEY)",
		"UPDATE xs SET v = v + 1 WHERE id = {a}",
		"ROLLBACK",
		"SET autocommit = 1",
		"BEGIN",
		"UPDATE xs SET v = v + 1 WHERE id = {a}",
		"UPDATE xs SET v = v + 1 WHERE id = {b}",
		"BEGIN",
		"UPDATE xs SET v = v + 1 WHERE id = {b}",
		"ROLLBACK",
	)
	// flags is the IN_TRANS and AUTOCOMMIT bits of each OK, or the
	// error's number.
	flags := func(c *proxytest.Raw) []string {
		var out []string
		for _, q := range script {
			c.Send(0, append([]byte{0x03}, q...))
			pkt := c.Recv()
			switch pkt[0] {
			case 0x00:
				rest := pkt[1:]
				for range 2 { // affected rows, insert id
					_, n := lenencInt(rest)
					rest = rest[n:]
				}
				out = append(out, fmt.Sprintf("%#x", binary.LittleEndian.Uint16(rest)&0x3))
			case 0xff:
				out = append(out, fmt.Sprintf("error %d", binary.LittleEndian.Uint16(pkt[1:])))
			default:
				t.Fatalf("%s: %q", q, pkt)
			}
		}
		return out
	}
	direct := flags(proxytest.Login(t, env.topo.Shards()[0].Primary().Addr(), localdb.AppUser, "direct_demo"))
	proxied := flags(proxytest.Login(t, p.proxyAddr, "root", "demo"))
	for i, q := range script {
		if direct[i] != proxied[i] {
			t.Errorf("%s: MariaDB %s, proxy %s", q, direct[i], proxied[i])
		} else {
			t.Logf("%s: %s", q, direct[i])
		}
	}
}

// lenencInt reads a length-encoded integer: its value and size.
func lenencInt(b []byte) (uint64, int) {
	switch b[0] {
	case 0xfc:
		return uint64(binary.LittleEndian.Uint16(b[1:])), 3
	case 0xfd:
		return uint64(b[1]) | uint64(b[2])<<8 | uint64(b[3])<<16, 4
	case 0xfe:
		return binary.LittleEndian.Uint64(b[1:]), 9
	}
	return uint64(b[0]), 1
}

// TestCrossShardHeldConnAtomic: a session that holds a connection on a
// shard (a named lock) gets atomic multi-shard autocommit statements too
// (they ran shard by shard, each committing: a failure on one shard left
// the others' rows), and keeps its lock.
func TestCrossShardHeldConnAtomic(t *testing.T) {
	p := xsPair(t)
	p.same(t, "direct_demo", "demo", xsScript(
		"SELECT GET_LOCK('{db}', 1) AS got",
		"UPDATE xs SET v = 2147483600 WHERE id = {b}",
		"UPDATE xs SET v = v + 100",
		"SELECT id, v FROM xs ORDER BY id",
		"INSERT INTO xs (id, v) VALUES (100, 1), (101, 1), (102, 1), (103, 1), ({b}, 1)",
		"SELECT id, v FROM xs ORDER BY id",
		"BEGIN",
		"UPDATE xs SET v = v + 1 WHERE id = {a}",
		"UPDATE xs SET v = v + 1 WHERE id = {b2}",
		"UPDATE xs SET v = v + 100",
		"COMMIT",
		"SELECT id, v FROM xs ORDER BY id",
		"SELECT RELEASE_LOCK('{db}') AS released",
	)...)
}

// TestCrossShardSavepoints: savepoints work while a transaction is on
// one shard (as a plain transaction and as one begun as an XA branch),
// and give MariaDB's answers there; once it spans shards SAVEPOINT,
// ROLLBACK TO and RELEASE get 1235 (README: a limit of the proxy), a
// savepoint taken before the second shard joined included, and the
// transaction stays as it was: COMMIT commits all of it.
func TestCrossShardSavepoints(t *testing.T) {
	p := xsPair(t)
	p.same(t, "direct_demo", "demo", xsScript(
		"BEGIN",
		"SAVEPOINT s1",
		"UPDATE xs SET v = v + 1 WHERE id = {a}",
		"SAVEPOINT s2",
		"UPDATE xs SET v = v + 1 WHERE id = {a2}",
		"ROLLBACK TO SAVEPOINT s2",
		"RELEASE SAVEPOINT s2",
		"ROLLBACK TO SAVEPOINT s2",
		"SELECT id, v FROM xs WHERE id IN ({a}, {a2}) ORDER BY id",
		"COMMIT",
		// The session's transactions span shards: the next begins as an
		// XA branch.
		"BEGIN",
		"UPDATE xs SET v = v + 1 WHERE id = {a}",
		"UPDATE xs SET v = v + 1 WHERE id = {b}",
		"COMMIT",
		"BEGIN",
		"SAVEPOINT s1",
		"UPDATE xs SET v = v + 1 WHERE id = {a}",
		"SAVEPOINT s2",
		"UPDATE xs SET v = v + 1 WHERE id = {a2}",
		"ROLLBACK TO SAVEPOINT s2",
		"ROLLBACK TO SAVEPOINT s1",
		"COMMIT",
		"SELECT id, v FROM xs ORDER BY id",
	)...)
	c := p.proxied
	for _, q := range xsScript(
		"BEGIN",
		"SAVEPOINT s1",
		"UPDATE xs SET v = v + 10 WHERE id = {a}",
		"UPDATE xs SET v = v + 10 WHERE id = {b}",
	) {
		if a := ask(t, c, q); a.Err != 0 {
			t.Fatalf("%s: %v %s", q, a, a.Msg)
		}
	}
	for _, q := range []string{"ROLLBACK TO SAVEPOINT s1", "SAVEPOINT s2", "RELEASE SAVEPOINT s1"} {
		if a := ask(t, c, q); a.Err != 1235 {
			t.Errorf("%s in a transaction that spans shards: %v, want 1235", q, a)
		}
	}
	if a := ask(t, c, "COMMIT"); a.Err != 0 {
		t.Fatalf("COMMIT: %v %s", a, a.Msg)
	}
	if a := ask(t, p.direct, xsScript("UPDATE xs SET v = v + 10 WHERE id IN ({a}, {b})")[0]); a.Err != 0 {
		t.Fatal(a)
	}
	p.same(t, "direct_demo", "demo", "SELECT id, v FROM xs ORDER BY id")
}

// TestCrossShardMultiMode: in transaction_mode multi (plain
// transactions, committed one by one) START TRANSACTION READ ONLY is read
// only on every shard (the second shard's BEGIN dropped it), and a
// statement failing on one shard leaves nothing on the others.
// (Autocommit statements over several shards are not atomic in multi
// mode, by design: README.)
func TestCrossShardMultiMode(t *testing.T) {
	p := xsPairMode(t, "multi")
	p.same(t, "direct_demo", "demo", xsScript(
		"START TRANSACTION READ ONLY",
		"SELECT v FROM xs WHERE id = {a}",
		"UPDATE xs SET v = v + 10 WHERE id = {b}",
		"UPDATE xs SET v = v + 10 WHERE id = {a}",
		"COMMIT",
		"UPDATE xs SET v = 2147483600 WHERE id = {b}",
		"BEGIN",
		"UPDATE xs SET v = v + 1 WHERE id = {a2}",
		"UPDATE xs SET v = v + 1 WHERE id = {b2}",
		"UPDATE xs SET v = v + 100",
		"INSERT INTO xs (id, v) VALUES (100, 1), (101, 1), (102, 1), (103, 1), ({b}, 1)",
		"COMMIT",
		"SELECT id, v FROM xs ORDER BY id",
	)...)
}

// TestCrossShardPrepared: prepared statements (COM_STMT_EXECUTE) in a
// transaction that spans shards give MariaDB's answers: writes on both
// shards, a multi-row INSERT failing on one shard (nothing of it stays),
// reads of the transaction's own writes, FOR UPDATE, COMMIT.
func TestCrossShardPrepared(t *testing.T) {
	p := xsPair(t)
	run := func(c *sql.Conn) []string {
		ctx := context.Background()
		var out []string
		note := func(q string, err error) {
			out = append(out, fmt.Sprintf("%s: %d", q, errNumber(err)))
		}
		for _, st := range []struct {
			q    string
			args []any
		}{
			{"BEGIN", nil},
			{"UPDATE xs SET v = v + ? WHERE id = ?", []any{5, xsIDs.a}},
			{"UPDATE xs SET v = v + ? WHERE id = ?", []any{5, xsIDs.b}},
			{"INSERT INTO xs (id, v) VALUES (?, ?), (?, ?), (?, ?)", []any{300, 1, 301, 2, 302, 3}},
			{"INSERT INTO xs (id, v) VALUES (?, ?), (?, ?), (?, ?)", []any{303, 1, 304, 2, xsIDs.b, 3}},
			{"UPDATE xs SET v = ? WHERE id = ?", []any{2147483000, xsIDs.b}},
			{"UPDATE xs SET v = v + ? WHERE id IN (?, ?)", []any{1000, xsIDs.a, xsIDs.b}},
		} {
			_, err := c.ExecContext(ctx, st.q, st.args...)
			note(st.q, err)
		}
		read := func(q string, args ...any) {
			rows, err := c.QueryContext(ctx, q, args...)
			if err != nil {
				note(q, err)
				return
			}
			defer rows.Close()
			for rows.Next() {
				var a, b string
				if err := rows.Scan(&a, &b); err != nil {
					t.Fatal(err)
				}
				out = append(out, q+": "+a+" "+b)
			}
		}
		read("SELECT SUM(v), COUNT(*) FROM xs WHERE id > ?", 0)
		read("SELECT id, v FROM xs WHERE id IN (?, ?) ORDER BY id FOR UPDATE", xsIDs.a, xsIDs.b)
		_, err := c.ExecContext(ctx, "COMMIT")
		note("COMMIT", err)
		read("SELECT SUM(v), COUNT(*) FROM xs WHERE id > ?", 0)
		return out
	}
	direct, proxied := run(p.direct), run(p.proxied)
	if strings.Join(direct, "\n") != strings.Join(proxied, "\n") {
		t.Errorf("MariaDB:\n%s\nthrough the proxy:\n%s", strings.Join(direct, "\n"), strings.Join(proxied, "\n"))
	}
}
