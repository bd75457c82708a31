package shardproxy_test

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"

	"github.com/strata-db/strata/shardproxy/config"
	"github.com/strata-db/strata/shardproxy/proxytest"
)

// Session settings against MariaDB's own answers: each transcript runs on a
// connection to the first shard's MariaDB directly and on one through the
// proxy (database test lives on that shard), and the two must read alike.

// direct opens a pool on the first shard's MariaDB, database test.
func directDB(t *testing.T, p *proxytest.Proxy, params ...string) *sql.DB {
	t.Helper()
	dsn := p.Topo.Shards()[0].Primary().DSN(p.Test)
	for _, q := range params {
		dsn += "&" + q
	}
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// transcript runs statements on one connection and writes down what each
// gave: rows for a query, ok or the error number otherwise. A statement
// starting with "other:" runs on a second connection.
func transcript(t *testing.T, db *sql.DB, stmts []string) string {
	t.Helper()
	c, o := conn(t, db), conn(t, db)
	var b strings.Builder
	ctx := context.Background()
	for _, q := range stmts {
		on := c
		if rest, ok := strings.CutPrefix(q, "other:"); ok {
			on, q = o, rest
		}
		fmt.Fprintf(&b, "%s -> ", q)
		up := strings.ToUpper(strings.TrimSpace(q))
		if strings.HasPrefix(up, "SELECT") {
			rows, err := on.QueryContext(ctx, q)
			if err != nil {
				fmt.Fprintf(&b, "err %d\n", proxytest.SQLErr(err))
				continue
			}
			cols, _ := rows.Columns()
			vals := make([]sql.NullString, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			for rows.Next() {
				if err := rows.Scan(ptrs...); err != nil {
					b.WriteString("scan " + err.Error())
					break
				}
				for _, v := range vals {
					b.WriteString(v.String + ";")
				}
			}
			if err := rows.Err(); err != nil {
				fmt.Fprintf(&b, "err %d", proxytest.SQLErr(err))
			}
			rows.Close()
			b.WriteString("\n")
			continue
		}
		if _, err := on.ExecContext(ctx, q); err != nil {
			fmt.Fprintf(&b, "err %d\n", proxytest.SQLErr(err))
		} else {
			b.WriteString("ok\n")
		}
	}
	return b.String()
}

// withSharded adds sharded tables (by id) of the test's own to database
// demo: the shared topology's t1..t4 have other tests' columns.
func withSharded(names ...string) func(*config.Config) {
	return func(c *config.Config) {
		for _, n := range names {
			c.Databases["demo"].Tables[n] = &config.Table{Kind: "sharded", Column: "id"}
		}
	}
}

// freshTable drops and creates a table through the proxy (on every shard
// that holds it).
func freshTable(t *testing.T, db *sql.DB, name, cols string) {
	t.Helper()
	proxytest.MustExec(t, db, "DROP TABLE IF EXISTS "+name)
	proxytest.MustExec(t, db, "CREATE TABLE "+name+" "+cols)
	t.Cleanup(func() { _, _ = db.Exec("DROP TABLE IF EXISTS " + name) })
}

// sameAsMariaDB runs the transcript on MariaDB and on the proxy.
func sameAsMariaDB(t *testing.T, p *proxytest.Proxy, stmts []string) string {
	t.Helper()
	want := transcript(t, directDB(t, p), stmts)
	got := transcript(t, p.Open(t, p.Test), stmts)
	if got != want {
		t.Errorf("proxy:\n%s\nMariaDB:\n%s", got, want)
	} else {
		t.Logf("proxy and MariaDB:\n%s", got)
	}
	return got
}

// TestSessionVarsTransaction: SET TRANSACTION (the next transaction) and
// SET SESSION TRANSACTION (every one after), isolation seen by what a
// transaction reads after another client's change (READ COMMITTED sees it,
// REPEATABLE READ does not), READ ONLY by the writes refused.
func TestSessionVarsTransaction(t *testing.T) {
	p := proxytest.Start(t, proxytest.SharedTopology(t), nil)
	// A transaction's two reads of v, with another client's change between.
	tx := func(begin ...string) []string {
		s := append([]string{"other:UPDATE sv_iso SET v = 1"}, begin...)
		return append(s, "SELECT v FROM sv_iso", "other:UPDATE sv_iso SET v = 2", "SELECT v FROM sv_iso", "COMMIT")
	}
	var stmts []string
	add := func(s ...string) { stmts = append(stmts, s...) }
	add("DROP TABLE IF EXISTS sv_iso", "CREATE TABLE sv_iso (id INT PRIMARY KEY, v INT)", "INSERT INTO sv_iso VALUES (1, 0)")
	add("SELECT @@tx_isolation", "SELECT @@transaction_isolation", "SELECT @@tx_read_only", "SELECT @@transaction_read_only")
	// Next transaction only.
	add("SET TRANSACTION ISOLATION LEVEL READ COMMITTED", "SELECT @@tx_isolation")
	add(tx("BEGIN")...)
	add(tx("BEGIN")...)
	add("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
	add(tx("START TRANSACTION")...)
	add("SET @@tx_isolation = 'READ-COMMITTED'", "SELECT @@tx_isolation")
	add(tx("BEGIN")...)
	add(tx("BEGIN")...)
	// The session's.
	add("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED", "SELECT @@tx_isolation", "SELECT @@session.tx_isolation")
	add(tx("BEGIN")...)
	add(tx("BEGIN")...)
	add("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
	add(tx("BEGIN")...)
	add(tx("BEGIN")...)
	add("SET SESSION tx_isolation = 'REPEATABLE-READ'", "SELECT @@tx_isolation")
	add(tx("BEGIN")...)
	add("SET tx_isolation = 'SOMETIMES'", "SET SESSION TRANSACTION ISOLATION LEVEL SERIALIZABLE", "SELECT @@tx_isolation",
		"SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
	// With autocommit off, the next statement opens the transaction.
	add("SET autocommit = 0", "SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
	add(tx()...)
	add(tx()...)
	add("SET autocommit = 1")
	// READ ONLY: refused writes, in and out of BEGIN; used up by a
	// transaction's end or a read of a table.
	add("SET TRANSACTION READ ONLY", "SELECT @@tx_read_only", "INSERT INTO sv_iso VALUES (2, 0)", "INSERT INTO sv_iso VALUES (3, 0)",
		"SELECT 1", "UPDATE sv_iso SET v = 5", "SELECT COUNT(*) FROM sv_iso", "INSERT INTO sv_iso VALUES (4, 0)")
	add("SET TRANSACTION READ ONLY", "BEGIN", "SELECT COUNT(*) FROM sv_iso", "INSERT INTO sv_iso VALUES (5, 0)", "COMMIT", "INSERT INTO sv_iso VALUES (6, 0)")
	add("SET TRANSACTION READ ONLY", "BEGIN", "COMMIT", "INSERT INTO sv_iso VALUES (7, 0)")
	add("START TRANSACTION READ ONLY", "INSERT INTO sv_iso VALUES (8, 0)", "ROLLBACK")
	add("SET SESSION TRANSACTION READ ONLY", "SELECT @@tx_read_only", "INSERT INTO sv_iso VALUES (9, 0)",
		"SET TRANSACTION READ WRITE", "BEGIN", "INSERT INTO sv_iso VALUES (10, 0)", "COMMIT", "INSERT INTO sv_iso VALUES (11, 0)",
		"SET SESSION TRANSACTION READ WRITE", "INSERT INTO sv_iso VALUES (12, 0)")
	add("SET @@tx_read_only = 1", "SELECT @@tx_read_only", "BEGIN", "INSERT INTO sv_iso VALUES (13, 0)", "ROLLBACK")
	add("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ ONLY", "BEGIN", "INSERT INTO sv_iso VALUES (14, 0)", "ROLLBACK")
	// Not while a transaction is open.
	add("BEGIN", "SET TRANSACTION READ WRITE", "SET SESSION TRANSACTION READ WRITE", "SELECT COUNT(*) FROM sv_iso", "SET TRANSACTION READ WRITE", "COMMIT")
	add("SELECT id FROM sv_iso ORDER BY id", "DROP TABLE sv_iso")
	out := sameAsMariaDB(t, p, stmts)
	// The transcript is only as good as what it shows: both levels and
	// both access modes.
	for _, want := range []string{"SELECT v FROM sv_iso -> 2;", "SELECT v FROM sv_iso -> 1;", "err 1792", "err 1568", "err 1193"} {
		if !strings.Contains(out, want) {
			t.Errorf("transcript lacks %q:\n%s", want, out)
		}
	}
}

// TestSessionVarsBeginTx: database/sql's BeginTx options through
// go-sql-driver (SET TRANSACTION ISOLATION LEVEL, START TRANSACTION READ
// ONLY), as MariaDB answers them.
func TestSessionVarsBeginTx(t *testing.T) {
	p := proxytest.Start(t, proxytest.SharedTopology(t), nil)
	run := func(db *sql.DB) string {
		ctx := context.Background()
		proxytest.MustExec(t, db, "CREATE TABLE IF NOT EXISTS sv_btx (id INT PRIMARY KEY, v INT)")
		proxytest.MustExec(t, db, "REPLACE INTO sv_btx VALUES (1, 1)")
		var out []string
		for _, opt := range []sql.TxOptions{
			{Isolation: sql.LevelReadCommitted}, {}, {Isolation: sql.LevelRepeatableRead}, {Isolation: sql.LevelSerializable},
			{Isolation: sql.LevelReadUncommitted}, {ReadOnly: true}, {Isolation: sql.LevelReadCommitted, ReadOnly: true},
		} {
			tx, err := db.BeginTx(ctx, &opt)
			if err != nil {
				out = append(out, fmt.Sprintf("%+v: begin err %d %v", opt, proxytest.SQLErr(err), err))
				continue
			}
			var v int
			if err := tx.QueryRow("SELECT v FROM sv_btx WHERE id = 1").Scan(&v); err != nil {
				t.Fatal(err)
			}
			// Another client's change: seen under READ COMMITTED and
			// below, not under REPEATABLE READ (and waiting for the
			// transaction's lock under SERIALIZABLE: not tried).
			if opt.Isolation != sql.LevelSerializable {
				proxytest.MustExec(t, db, "UPDATE sv_btx SET v = v + 1 WHERE id = 1")
			}
			var v2 int
			if err := tx.QueryRow("SELECT v FROM sv_btx WHERE id = 1").Scan(&v2); err != nil {
				t.Fatal(err)
			}
			_, werr := tx.Exec("INSERT INTO sv_btx VALUES (2, 0)")
			_ = tx.Rollback()
			out = append(out, fmt.Sprintf("%+v: saw change %v, insert err %d", opt, v2 != v, proxytest.SQLErr(werr)))
		}
		proxytest.MustExec(t, db, "DROP TABLE sv_btx")
		return strings.Join(out, "\n")
	}
	want := run(directDB(t, p))
	got := run(p.Open(t, p.Test))
	if got != want {
		t.Errorf("proxy:\n%s\nMariaDB:\n%s", got, want)
	}
	if !strings.Contains(got, "saw change true") || !strings.Contains(got, "insert err 1792") {
		t.Errorf("the options made no difference:\n%s", got)
	}
}

// TestSessionVarsHandshakeCollation: the collation a client names in its
// handshake is the connection's, as on MariaDB.
func TestSessionVarsHandshakeCollation(t *testing.T) {
	p := proxytest.Start(t, proxytest.SharedTopology(t), nil)
	const q = "SELECT CONCAT(@@collation_connection, ' ', @@character_set_client, ' ', 'a' = 'A', ' ', 'ä' = 'a')"
	for _, coll := range []string{"utf8mb4_general_ci", "utf8mb4_unicode_ci", "utf8mb4_bin", "latin1_swedish_ci", "latin1_bin", "utf8mb3_general_ci", "utf8mb4_unicode_520_ci"} {
		want := query1(t, directDB(t, p, "collation="+coll), q)
		db := p.Open(t, p.Test, "collation="+coll)
		if got := query1(t, db, q); got != want {
			t.Errorf("collation %s: proxy %q, MariaDB %q", coll, got, want)
		}
	}
}

// TestSessionVarsInsertID: SET insert_id serves the next INSERT that
// generates a value, once, as on MariaDB; another session never sees it.
func TestSessionVarsInsertID(t *testing.T) {
	p := proxytest.Start(t, proxytest.SharedTopology(t), func(c *config.Config) { c.Backend.MaxOpen = 1; c.Backend.MaxIdle = 1 })
	sameAsMariaDB(t, p, []string{
		"DROP TABLE IF EXISTS sv_ai", "CREATE TABLE sv_ai (id INT AUTO_INCREMENT PRIMARY KEY, v INT)",
		"SET insert_id = 5000", "SELECT @@insert_id", "SELECT 1", "SELECT COUNT(*) FROM sv_ai", "UPDATE sv_ai SET v = 0",
		"INSERT INTO sv_ai (v) VALUES (1)", "SELECT LAST_INSERT_ID(), @@insert_id", "INSERT INTO sv_ai (v) VALUES (2)",
		"SET insert_id = 6000", "INSERT INTO sv_ai (id, v) VALUES (5000, 3)", "SELECT @@insert_id", "INSERT INTO sv_ai (v) VALUES (4)",
		"SET insert_id = 7000", "SET insert_id = DEFAULT", "INSERT INTO sv_ai (v) VALUES (5)",
		"SET insert_id = 5000", "INSERT INTO sv_ai (v) VALUES (6)",
		"SET insert_id = 8000", "BEGIN", "INSERT INTO sv_ai (v) VALUES (7)", "INSERT INTO sv_ai (v) VALUES (8)", "COMMIT",
		"SELECT id FROM sv_ai ORDER BY id", "DROP TABLE sv_ai",
	})

	// Two sessions on one backend connection per server.
	db := p.Open(t, p.Test)
	proxytest.MustExec(t, db, "CREATE TABLE IF NOT EXISTS sv_ai2 (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")
	defer proxytest.MustExec(t, db, "DROP TABLE sv_ai2")
	a, b := conn(t, db), conn(t, db)
	execC(t, a, "SET insert_id = 5000")
	if got := query1(t, b, "SELECT @@insert_id"); got != "0" {
		t.Errorf("another session sees insert_id %s", got)
	}
	execC(t, b, "INSERT INTO sv_ai2 (v) VALUES (1)")
	execC(t, a, "INSERT INTO sv_ai2 (v) VALUES (2)")
	execC(t, b, "INSERT INTO sv_ai2 (v) VALUES (3)")
	execC(t, a, "INSERT INTO sv_ai2 (v) VALUES (4)")
	execC(t, a, "SET insert_id = 5000") // again: taken from a used-up one
	if got := query1(t, a, "SELECT @@insert_id"); got != "5000" {
		t.Errorf("insert_id after a second SET = %s", got)
	}
	if _, err := a.ExecContext(context.Background(), "INSERT INTO sv_ai2 (v) VALUES (5)"); proxytest.SQLErr(err) != 1062 {
		t.Errorf("INSERT with insert_id 5000 taken: %v, want 1062", err)
	}
	execC(t, a, "SET insert_id = DEFAULT")
	rows := ""
	for _, c := range []string{"1", "2", "3", "4"} {
		rows += query1(t, db, "SELECT id FROM sv_ai2 WHERE v = "+c) + " "
	}
	if rows != "1 5000 5001 5002 " {
		t.Errorf("ids %s, want 1 5000 5001 5002", rows)
	}
}

// TestSessionVarsLastInsertIDExpr: LAST_INSERT_ID(expr) in a SELECT sets
// the value LAST_INSERT_ID() returns, as on MariaDB.
func TestSessionVarsLastInsertIDExpr(t *testing.T) {
	p := proxytest.Start(t, proxytest.SharedTopology(t), withSharded("sv_li2"))
	sameAsMariaDB(t, p, []string{
		"DROP TABLE IF EXISTS sv_li", "CREATE TABLE sv_li (id INT PRIMARY KEY, n INT)", "INSERT INTO sv_li VALUES (1, 10), (2, 20), (3, 30)",
		"SELECT LAST_INSERT_ID(42)", "SELECT LAST_INSERT_ID()", "SELECT LAST_INSERT_ID(42)", "SELECT LAST_INSERT_ID()",
		"SELECT LAST_INSERT_ID(n) FROM sv_li ORDER BY id", "SELECT LAST_INSERT_ID()",
		"SELECT LAST_INSERT_ID(n) FROM sv_li WHERE id = 99", "SELECT LAST_INSERT_ID()",
		"UPDATE sv_li SET n = LAST_INSERT_ID(n + 1) WHERE id = 1", "SELECT LAST_INSERT_ID()",
		"DROP TABLE sv_li",
	})
	// Prepared, on a sharded table.
	db := p.Open(t, p.Demo)
	freshTable(t, db, "sv_li2", "(id BIGINT PRIMARY KEY, v INT)")
	proxytest.MustExec(t, db, "INSERT INTO sv_li2 (id, v) VALUES (7, 77)")
	c := conn(t, db)
	if got := query1(t, c, "SELECT LAST_INSERT_ID(v) FROM sv_li2 WHERE id = ?", 7); got != "77" {
		t.Fatalf("SELECT LAST_INSERT_ID(v) = %s", got)
	}
	if got := query1(t, c, "SELECT LAST_INSERT_ID()"); got != "77" {
		t.Errorf("LAST_INSERT_ID() after a prepared SELECT LAST_INSERT_ID(v) = %s, want 77", got)
	}
}

// TestSessionVarsSelectLimit: sql_select_limit bounds what a top-level
// SELECT returns, once for a scatter too; a LIMIT of the statement wins.
func TestSessionVarsSelectLimit(t *testing.T) {
	p := proxytest.Start(t, proxytest.SharedTopology(t), withSharded("sv_sl2"))
	db := p.Open(t, p.Demo)
	freshTable(t, db, "sv_sl2", "(id BIGINT PRIMARY KEY, v INT)")
	for i := 1; i <= 10; i++ {
		proxytest.MustExec(t, db, "INSERT INTO sv_sl2 (id, v) VALUES (?, ?)", i, i)
	}
	c := conn(t, db)
	count := func(q string, args ...any) int {
		t.Helper()
		rows, err := c.QueryContext(context.Background(), q, args...)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		defer rows.Close()
		n := 0
		for rows.Next() {
			n++
		}
		return n
	}
	if got := query1(t, c, "SELECT @@sql_select_limit"); got != "18446744073709551615" {
		t.Errorf("default @@sql_select_limit = %s", got)
	}
	execC(t, c, "SET sql_select_limit = 3")
	if got := query1(t, c, "SELECT @@sql_select_limit"); got != "3" {
		t.Errorf("@@sql_select_limit = %s", got)
	}
	for _, tc := range []struct {
		q    string
		args []any
		want int
	}{
		{"SELECT id FROM sv_sl2", nil, 3},
		{"SELECT id FROM sv_sl2 ORDER BY id", nil, 3},
		{"SELECT id FROM sv_sl2 WHERE id = 4", nil, 1},
		{"SELECT id FROM sv_sl2 WHERE id IN (1, 2, 3, 4, 5)", nil, 3},
		{"SELECT COUNT(*) FROM sv_sl2", nil, 1},
		{"SELECT id FROM sv_sl2 ORDER BY id LIMIT 5", nil, 5},
		{"SELECT id FROM sv_sl2 WHERE id > ?", []any{0}, 3},
		{"SELECT id FROM sv_sl2 WHERE id = ?", []any{2}, 1},
	} {
		for i := 0; i < 3; i++ { // a known shape may take the fast lane
			if n := count(tc.q, tc.args...); n != tc.want {
				t.Errorf("%s with sql_select_limit 3 (run %d): %d rows, want %d", tc.q, i, n, tc.want)
			}
		}
	}
	if got := query1(t, c, "SELECT MAX(id) FROM sv_sl2"); got != "10" {
		t.Errorf("MAX(id) = %s", got)
	}
	execC(t, c, "SET sql_select_limit = 0")
	execC(t, c, "SET @sv = 1 + 1") // the proxy's own evaluation is no SELECT of the client's
	execC(t, c, "SET sql_select_limit = DEFAULT")
	if got := query1(t, c, "SELECT @sv"); got != "2" {
		t.Errorf("@sv = %s", got)
	}
	if n := count("SELECT id FROM sv_sl2"); n != 10 {
		t.Errorf("after SET sql_select_limit = DEFAULT: %d rows", n)
	}
	if _, err := c.ExecContext(context.Background(), "SET sql_select_limit = 'abc'"); proxytest.SQLErr(err) != 1232 {
		t.Errorf("SET sql_select_limit = 'abc': %v, want 1232", err)
	}
	// On one shard, against MariaDB.
	sameAsMariaDB(t, p, []string{
		"DROP TABLE IF EXISTS sv_sl", "CREATE TABLE sv_sl (id INT PRIMARY KEY)", "INSERT INTO sv_sl VALUES (1), (2), (3), (4)",
		"SET sql_select_limit = 2", "SELECT id FROM sv_sl ORDER BY id", "SELECT id FROM sv_sl ORDER BY id LIMIT 3",
		"SELECT id FROM sv_sl WHERE id IN (SELECT id FROM sv_sl) ORDER BY id", "SELECT 1 UNION SELECT 2 UNION SELECT 3",
		"INSERT INTO sv_sl SELECT id + 10 FROM sv_sl", "SELECT COUNT(*) FROM sv_sl", "SET sql_select_limit = 0", "SELECT id FROM sv_sl",
		"SET sql_select_limit = DEFAULT", "SELECT COUNT(*) FROM sv_sl", "DROP TABLE sv_sl",
	})
}

// TestSessionVarsFoundRows: FOUND_ROWS() after SELECT SQL_CALC_FOUND_ROWS
// ... LIMIT counts the rows without the LIMIT, as on MariaDB; across shards
// the proxy refuses the statement rather than answer wrong.
func TestSessionVarsFoundRows(t *testing.T) {
	p := proxytest.Start(t, proxytest.SharedTopology(t), withSharded("sv_fr2"))
	sameAsMariaDB(t, p, []string{
		"DROP TABLE IF EXISTS sv_fr", "CREATE TABLE sv_fr (id INT PRIMARY KEY, g INT)", "INSERT INTO sv_fr VALUES (1, 1), (2, 1), (3, 2), (4, 2), (5, 3)",
		"SELECT SQL_CALC_FOUND_ROWS id FROM sv_fr ORDER BY id LIMIT 1", "SELECT FOUND_ROWS()",
		"SELECT SQL_CALC_FOUND_ROWS id FROM sv_fr WHERE id > 1 ORDER BY id LIMIT 2, 1", "SELECT FOUND_ROWS()",
		"SELECT SQL_CALC_FOUND_ROWS g FROM sv_fr GROUP BY g LIMIT 1", "SELECT FOUND_ROWS()",
		"SELECT SQL_CALC_FOUND_ROWS id FROM sv_fr LIMIT 10, 1", "SELECT FOUND_ROWS()",
		"SELECT SQL_CALC_FOUND_ROWS id FROM sv_fr WHERE id = 1 UNION SELECT id FROM sv_fr WHERE id = 2 UNION SELECT id FROM sv_fr WHERE id = 3 LIMIT 1", "SELECT FOUND_ROWS()",
		"SELECT id FROM sv_fr WHERE id < 3", "SELECT FOUND_ROWS()",
		"BEGIN", "SELECT SQL_CALC_FOUND_ROWS id FROM sv_fr ORDER BY id LIMIT 1", "SELECT FOUND_ROWS()", "COMMIT",
		"DROP TABLE sv_fr",
	})
	db := p.Open(t, p.Demo)
	freshTable(t, db, "sv_fr2", "(id BIGINT PRIMARY KEY, v INT)")
	for i := 1; i <= 6; i++ {
		proxytest.MustExec(t, db, "INSERT INTO sv_fr2 (id, v) VALUES (?, ?)", i, i%2)
	}
	c := conn(t, db)
	// One shard: its own count.
	if got := query1(t, c, "SELECT SQL_CALC_FOUND_ROWS id FROM sv_fr2 WHERE id = 3 LIMIT 1"); got != "3" {
		t.Fatalf("got %s", got)
	}
	if got := query1(t, c, "SELECT FOUND_ROWS()"); got != "1" {
		t.Errorf("FOUND_ROWS() on one shard = %s, want 1", got)
	}
	if got := query1(t, c, "SELECT SQL_CALC_FOUND_ROWS id FROM sv_fr2 WHERE id = ? LIMIT 1", 3); got != "3" {
		t.Fatalf("prepared: got %s", got)
	}
	if got := query1(t, c, "SELECT FOUND_ROWS()"); got != "1" {
		t.Errorf("FOUND_ROWS() after a prepared one = %s, want 1", got)
	}
	// Across shards: refused, never a wrong count.
	if _, err := c.QueryContext(context.Background(), "SELECT SQL_CALC_FOUND_ROWS id FROM sv_fr2 ORDER BY id LIMIT 1"); proxytest.SQLErr(err) != 1235 {
		t.Errorf("SQL_CALC_FOUND_ROWS across shards: %v, want 1235", err)
	}
}

// TestSessionVarsColumnNames: the columns of statements one shard answers
// whole (no table, a system database) are named as MariaDB names them, as
// text and prepared, on the ordinary path and the fast lane alike.
func TestSessionVarsColumnNames(t *testing.T) {
	p := proxytest.Start(t, proxytest.SharedTopology(t), nil)
	db := p.Open(t, p.Test)
	proxytest.MustExec(t, db, "CREATE TABLE IF NOT EXISTS sv_cn (id INT PRIMARY KEY)")
	direct := directDB(t, p)
	names := func(db *sql.DB, q string, args ...any) string {
		rows, err := db.Query(q, args...)
		if err != nil {
			return "error " + err.Error()
		}
		defer rows.Close()
		cols, _ := rows.Columns()
		return strings.Join(cols, "|")
	}
	for _, q := range []string{"SELECT 1", "SELECT 1/0", "SELECT 1+1", "SELECT 'a' AS x, 2*3", "SELECT id+1 FROM sv_cn WHERE id = 1", "SELECT COUNT(*)+1 FROM sv_cn",
		"SELECT 1 /*c*/ + 1", "SELECT CONCAT('a', 'b')", "SELECT -1, 1.5, 1e0, 0x41", "SELECT @@session.sql_mode", "SELECT @@SQL_MODE", "SELECT @@version_comment",
		"SELECT DATABASE(), USER()", "select ID from sv_cn where id = 1", "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'test'",
		"SELECT table_name FROM information_schema.tables WHERE table_schema = 'test' LIMIT 1", "SELECT NOW() - INTERVAL 1 DAY > 0",
		"SELECT 'it''s'", "SELECT X'41'", "SELECT TRUE, NULL", "SELECT 1 UNION SELECT 2", "SELECT LAST_INSERT_ID(5)"} {
		want := names(direct, q)
		for i := 0; i < 3; i++ { // the third run may take the fast lane
			if got := names(db, q); got != want {
				t.Errorf("%s (run %d): columns %q, MariaDB %q", q, i, got, want)
			}
		}
	}
	for _, q := range []string{"SELECT ?, ? + 1", "SELECT 1.5 * ?", "SELECT CONCAT(?, 'x')", "SELECT ? FROM sv_cn"} {
		args := []any{2, 3}[:strings.Count(q, "?")]
		want := names(direct, q, args...)
		for i := 0; i < 3; i++ {
			if got := names(db, q, args...); got != want {
				t.Errorf("prepared %s (run %d): columns %q, MariaDB %q", q, i, got, want)
			}
		}
	}
}
