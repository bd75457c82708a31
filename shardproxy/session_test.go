package shardproxy_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
	"vitess.io/vitess/go/sqltypes"

	"github.com/strata-db/strata/shardproxy/config"
	"github.com/strata-db/strata/shardproxy/proxytest"
	"github.com/strata-db/strata/shardproxy/vschema"
)

func conn(t *testing.T, db *sql.DB) *sql.Conn {
	t.Helper()
	c, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func query1(t *testing.T, c interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, q string, args ...any) string {
	t.Helper()
	var v sql.NullString
	if err := c.QueryRowContext(context.Background(), q, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	if !v.Valid {
		return "NULL"
	}
	return v.String
}

func execC(t *testing.T, c *sql.Conn, q string, args ...any) {
	t.Helper()
	if _, err := c.ExecContext(context.Background(), q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// TestSessionStateNoLeak forces two sessions onto one backend connection
// per server (max_open 1): each sees its own variables every time, however
// their statements interleave.
func TestSessionStateNoLeak(t *testing.T) {
	p := proxytest.Start(t, proxytest.SharedTopology(t), func(c *config.Config) { c.Backend.MaxOpen = 1; c.Backend.MaxIdle = 1 })
	db := p.Open(t, p.Demo)
	a, b := conn(t, db), conn(t, db)
	execC(t, a, "SET NAMES latin1")
	execC(t, a, "SET @@session.sql_mode = 'ANSI_QUOTES', time_zone = '+05:00'")
	execC(t, a, "SET @x = 42, @s = 'hello'")
	execC(t, b, "SET SESSION sql_mode = 'NO_ZERO_DATE'")
	for i := 0; i < 3; i++ {
		if got := query1(t, a, "SELECT @@session.sql_mode"); got != "ANSI_QUOTES" {
			t.Fatalf("a sql_mode %q", got)
		}
		if got := query1(t, b, "SELECT @@session.sql_mode"); got != "NO_ZERO_DATE" {
			t.Fatalf("b sql_mode %q", got)
		}
		if got := query1(t, a, "SELECT @@character_set_client"); got != "latin1" {
			t.Fatalf("a charset %q", got)
		}
		if got := query1(t, b, "SELECT @@character_set_client"); got != "utf8mb4" {
			t.Fatalf("b charset %q", got)
		}
		if got := query1(t, a, "SELECT @@time_zone"); got != "+05:00" {
			t.Fatalf("a time_zone %q", got)
		}
		if got := query1(t, b, "SELECT @@time_zone"); got == "+05:00" {
			t.Fatalf("b got a's time_zone")
		}
		if got := query1(t, a, "SELECT @x + 1"); got != "43" {
			t.Fatalf("a @x+1 = %q", got)
		}
		if got := query1(t, b, "SELECT @x"); got != "NULL" {
			t.Fatalf("b sees a's @x: %q", got)
		}
	}
	// A user variable in a routed statement, and one set from an expression.
	execC(t, a, "SET @y = @x * 2")
	if got := query1(t, a, "SELECT @y"); got != "84" {
		t.Fatalf("@y %q", got)
	}
	// Back to the default; a bad value fails and changes nothing.
	execC(t, a, "SET sql_mode = DEFAULT")
	if got := query1(t, a, "SELECT @@session.sql_mode"); got == "ANSI_QUOTES" {
		t.Fatal("sql_mode not reset")
	}
	_, err := a.ExecContext(context.Background(), "SET sql_mode = 'NOT_A_MODE'")
	if proxytest.SQLErr(err) != 1231 {
		t.Fatalf("bad sql_mode: %v", err)
	}
	if _, err := a.ExecContext(context.Background(), "SET GLOBAL max_connections = 10"); proxytest.SQLErr(err) != 1227 {
		t.Fatalf("SET GLOBAL: %v", err)
	}
	if got := query1(t, a, "SELECT @@autocommit"); got != "1" {
		t.Fatalf("autocommit %q", got)
	}
}

// shardOf is the shard the vschema puts an id of demo.customers on.
func shardOf(t *testing.T, p *proxytest.Proxy, id int64) string {
	t.Helper()
	tbl := p.Server.VSchema().Databases[p.Demo].Tables["customers"]
	sh, err := p.Server.VSchema().KeyShard(tbl, sqltypes.NewInt64(id), vschema.ForRead)
	if err != nil {
		t.Fatal(err)
	}
	return sh
}

// idsOnShards returns two ids on the same shard and one on another.
func idsOnShards(t *testing.T, p *proxytest.Proxy, base int64) (a, b, other int64) {
	a = base
	for id := base + 1; b == 0 || other == 0; id++ {
		if shardOf(t, p, id) == shardOf(t, p, a) {
			if b == 0 {
				b = id
			}
		} else if other == 0 {
			other = id
		}
	}
	return a, b, other
}

func TestTransactions(t *testing.T) {
	p := proxytest.Start(t, proxytest.SharedTopology(t), nil)
	db := p.Open(t, p.Demo)
	proxytest.MustExec(t, db, "CREATE TABLE IF NOT EXISTS customers (id BIGINT PRIMARY KEY, name VARCHAR(40))")
	proxytest.MustExec(t, db, "DELETE FROM customers WHERE id BETWEEN 1000 AND 2000")
	a, b, other := idsOnShards(t, p, 1000)
	count := func(ids ...any) string {
		return query1(t, db, "SELECT COUNT(*) FROM customers WHERE id IN (?, ?, ?)", ids...)
	}

	c := conn(t, db)
	execC(t, c, "BEGIN")
	execC(t, c, "INSERT INTO customers (id, name) VALUES (?, 'a')", a)
	execC(t, c, "INSERT INTO customers (id, name) VALUES (?, 'b')", b)
	if got := count(a, b, other); got != "0" {
		t.Fatalf("uncommitted rows visible to another session: %s", got)
	}
	if got := query1(t, c, "SELECT COUNT(*) FROM customers WHERE id IN (?, ?)", a, b); got != "2" {
		t.Fatalf("own rows in tx: %s", got)
	}
	// A second shard is refused, naming both.
	_, err := c.ExecContext(context.Background(), "INSERT INTO customers (id, name) VALUES (?, 'x')", other)
	var me *mysql.MySQLError
	if !errors.As(err, &me) || me.Number != 1235 || !strings.Contains(me.Message, shardOf(t, p, a)) || !strings.Contains(me.Message, shardOf(t, p, other)) {
		t.Fatalf("cross-shard write: %v", err)
	}
	// Statements any shard can answer stay on the transaction's shard.
	if got := query1(t, c, "SELECT @@version_comment"); !strings.Contains(got, "Strata") {
		t.Fatalf("in tx: %s", got)
	}
	query1(t, c, "SELECT NOW(6)")
	query1(t, c, "SELECT COUNT(*) FROM information_schema.schemata")
	execC(t, c, "COMMIT")
	if got := count(a, b, other); got != "2" {
		t.Fatalf("after commit: %s", got)
	}
	// Pinned to the other shard than the database's home, too.
	execC(t, c, "BEGIN")
	execC(t, c, "UPDATE customers SET name = 'o2' WHERE id = ?", other)
	query1(t, c, "SELECT NOW(6)")
	execC(t, c, "ROLLBACK")

	execC(t, c, "START TRANSACTION")
	execC(t, c, "DELETE FROM customers WHERE id = ?", a)
	execC(t, c, "ROLLBACK")
	if got := count(a, b, other); got != "2" {
		t.Fatalf("after rollback: %s", got)
	}

	// autocommit=0: every statement is in a transaction.
	execC(t, c, "SET autocommit = 0")
	if got := query1(t, c, "SELECT @@autocommit"); got != "0" {
		t.Fatalf("@@autocommit %s", got)
	}
	execC(t, c, "INSERT INTO customers (id, name) VALUES (?, 'o')", other)
	execC(t, c, "ROLLBACK")
	if got := count(a, b, other); got != "2" {
		t.Fatalf("autocommit=0 rollback: %s", got)
	}
	execC(t, c, "INSERT INTO customers (id, name) VALUES (?, 'o')", other)
	execC(t, c, "COMMIT")
	execC(t, c, "SET autocommit = 1")
	if got := count(a, b, other); got != "3" {
		t.Fatalf("autocommit=0 commit: %s", got)
	}

	// Savepoints on the pinned connection.
	execC(t, c, "BEGIN")
	execC(t, c, "SAVEPOINT s1")
	execC(t, c, "UPDATE customers SET name = 'changed' WHERE id = ?", a)
	execC(t, c, "ROLLBACK TO SAVEPOINT s1")
	execC(t, c, "COMMIT")
	if got := query1(t, db, "SELECT name FROM customers WHERE id = ?", a); got != "a" {
		t.Fatalf("savepoint: %s", got)
	}

	// database/sql transactions (prepared statements inside).
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("UPDATE customers SET name = ? WHERE id = ?", "tx", b); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := query1(t, db, "SELECT name FROM customers WHERE id = ?", b); got != "tx" {
		t.Fatalf("database/sql tx: %s", got)
	}
}

// TestResetConnection: COM_RESET_CONNECTION drops the session's variables
// and transaction but keeps its database.
func TestResetConnection(t *testing.T) {
	p := proxytest.Start(t, proxytest.SharedTopology(t), nil)
	c := proxytest.Login(t, p.Server.Addr(), "root", p.Demo)
	// query returns the first row of a result (no CLIENT_DEPRECATE_EOF:
	// column count, definitions, EOF, rows, EOF), or nil for an OK.
	query := func(sql string) []byte {
		t.Helper()
		c.Send(0, append([]byte{0x03}, sql...))
		first := c.Recv()
		switch first[0] {
		case 0xff:
			t.Fatalf("%s: %q", sql, first)
		case 0x00:
			return nil
		}
		for i := 0; i < int(first[0]); i++ {
			c.Recv()
		}
		c.Recv() // EOF after the definitions
		var row []byte
		for {
			pkt := c.Recv()
			if pkt[0] == 0xfe && len(pkt) < 9 {
				return row
			}
			if row == nil {
				row = pkt
			}
		}
	}
	query("SET @x = 7")
	query("SET sql_mode = 'ANSI_QUOTES'")
	query("BEGIN")
	c.Send(0, []byte{0x1f}) // COM_RESET_CONNECTION
	if ok := c.Recv(); ok[0] != 0x00 {
		t.Fatalf("reset: %q", ok)
	}
	if row := query("SELECT @x"); string(row) != "\xfb" {
		t.Errorf("@x after reset: %q", row)
	}
	if row := query("SELECT @@session.sql_mode"); strings.Contains(string(row), "ANSI_QUOTES") {
		t.Errorf("sql_mode after reset: %q", row)
	}
	if row := query("SELECT DATABASE()"); !strings.Contains(string(row), p.Demo) {
		t.Errorf("database after reset: %q", row)
	}
}
