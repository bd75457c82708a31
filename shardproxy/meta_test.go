package shardproxy_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/strata-db/strata/shardproxy/proxytest"
)

func columnStrings(t *testing.T, db interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, q string) [][]string {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out [][]string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		row := make([]string, len(cols))
		for i, v := range vals {
			row[i] = v.String
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return out
}

func firstCol(rows [][]string) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r[0])
	}
	return out
}

// TestMetadata covers what ORMs and GUI clients ask at connect.
func TestMetadata(t *testing.T) {
	p := proxytest.Start(t, proxytest.SharedTopology(t), nil)
	db := p.Open(t, p.Demo)
	proxytest.MustExec(t, db, "CREATE TABLE IF NOT EXISTS countries (code CHAR(2) PRIMARY KEY, name VARCHAR(40), KEY by_name (name))")
	proxytest.MustExec(t, db, "CREATE TABLE IF NOT EXISTS orders (id BIGINT, customer_id BIGINT, PRIMARY KEY (customer_id, id))")

	if got := strings.Join(firstCol(columnStrings(t, db, "SHOW DATABASES")), ","); got != p.Demo+",information_schema,"+p.Test {
		t.Errorf("SHOW DATABASES: %s", got)
	}
	if got := strings.Join(firstCol(columnStrings(t, db, "SHOW DATABASES LIKE 'de%'")), ","); got != p.Demo {
		t.Errorf("SHOW DATABASES LIKE: %s", got)
	}
	tables := strings.Join(firstCol(columnStrings(t, db, "SHOW TABLES")), ",")
	if !strings.Contains(tables, "countries") || !strings.Contains(tables, "orders") {
		t.Errorf("SHOW TABLES: %s", tables)
	}
	if full := columnStrings(t, db, "SHOW FULL TABLES FROM "+p.Demo+" LIKE 'countr%'"); len(full) != 1 || full[0][1] != "BASE TABLE" {
		t.Errorf("SHOW FULL TABLES: %v", full)
	}
	if ct := columnStrings(t, db, "SHOW CREATE TABLE countries"); len(ct) != 1 || !strings.Contains(ct[0][1], "CREATE TABLE `countries`") {
		t.Errorf("SHOW CREATE TABLE: %v", ct)
	}
	if cols := firstCol(columnStrings(t, db, "SHOW COLUMNS FROM countries")); strings.Join(cols, ",") != "code,name" {
		t.Errorf("SHOW COLUMNS: %v", cols)
	}
	if cols := firstCol(columnStrings(t, db, "DESCRIBE "+p.Demo+".orders")); strings.Join(cols, ",") != "id,customer_id" {
		t.Errorf("DESCRIBE: %v", cols)
	}
	if idx := columnStrings(t, db, "SHOW INDEX FROM countries"); len(idx) != 2 {
		t.Errorf("SHOW INDEX: %v", idx)
	}
	if v := columnStrings(t, db, "SHOW VARIABLES LIKE 'max_allowed_packet'"); len(v) != 1 {
		t.Errorf("SHOW VARIABLES: %v", v)
	}
	if got := query1(t, db, "SELECT DATABASE()"); got != p.Demo {
		t.Errorf("DATABASE(): %s", got)
	}
	if got := query1(t, db, "SELECT @@version"); !strings.Contains(got, "MariaDB") {
		t.Errorf("@@version: %s", got)
	}
	if got := query1(t, db, "SELECT @@version_comment"); !strings.Contains(got, "Strata") {
		t.Errorf("@@version_comment: %s", got)
	}
	if got := query1(t, db, "SELECT 1+1"); got != "2" {
		t.Errorf("SELECT 1+1: %s", got)
	}
	is := columnStrings(t, db, "SELECT table_name FROM information_schema.tables WHERE table_schema = '"+p.Demo+"' ORDER BY table_name")
	if got := strings.Join(firstCol(is), ","); !strings.Contains(got, "countries") {
		t.Errorf("information_schema.tables: %s", got)
	}
	if got := query1(t, db, "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = '"+p.Test+"'"); got != "1" {
		t.Errorf("information_schema.schemata: %s", got)
	}
	c := conn(t, db)
	// SHOW WARNINGS answers for the session's last statement, wherever it ran.
	if _, err := c.ExecContext(context.Background(), "INSERT INTO countries (code, name) VALUES ('XX', 'x') ON DUPLICATE KEY UPDATE name = 'x'"); err != nil {
		t.Fatal(err)
	}
	query1(t, c, "SELECT CAST('12abc' AS UNSIGNED)")
	w := columnStrings(t, c, "SHOW WARNINGS")
	if len(w) != 1 || w[0][0] != "Warning" || w[0][1] != "1292" {
		t.Errorf("SHOW WARNINGS: %v", w)
	}
	if _, err := c.ExecContext(context.Background(), "SELECT * FROM nosuch"); err == nil {
		t.Fatal("no error for an unknown table")
	}
	if e := columnStrings(t, c, "SHOW ERRORS"); len(e) != 1 || e[0][1] != "1146" {
		t.Errorf("SHOW ERRORS: %v", e)
	}
	if pl := columnStrings(t, c, "SHOW PROCESSLIST"); len(pl) < 1 {
		t.Errorf("SHOW PROCESSLIST: %v", pl)
	}
	if g := columnStrings(t, c, "SHOW GRANTS"); len(g) != 1 {
		t.Errorf("SHOW GRANTS: %v", g)
	}
	execC(t, c, "USE "+p.Test)
	if got := query1(t, c, "SELECT DATABASE()"); got != p.Test {
		t.Errorf("after USE: %s", got)
	}
	_, err := c.ExecContext(context.Background(), "USE nosuchdb")
	if proxytest.SQLErr(err) != 1049 {
		t.Errorf("USE unknown: %v", err)
	}
	execC(t, c, "USE information_schema")
	if got := query1(t, c, "SELECT COUNT(*) FROM schemata WHERE schema_name = '"+p.Demo+"'"); got != "1" {
		t.Errorf("unqualified information_schema: %s", got)
	}
	// A database named at connect that the proxy does not have is 1049.
	bad, _ := sql.Open("mysql", p.DSN("nosuchdb"))
	defer bad.Close()
	if err := bad.Ping(); proxytest.SQLErr(err) != 1049 {
		t.Errorf("connect to unknown db: %v", err)
	}
}

// TestErrors: bad statements get MySQL's errors, and the connection and the
// proxy keep going.
func TestErrors(t *testing.T) {
	p := proxytest.Start(t, proxytest.SharedTopology(t), nil)
	db := p.Open(t, p.Demo)
	c := conn(t, db)
	cases := []struct {
		q    string
		code uint16
		msg  string
	}{
		{"SELEC 1", 1064, "You have an error in your SQL syntax; check the manual that corresponds to your MariaDB server version for the right syntax to use near 'SELEC 1' at line 1"},
		{"SELECT * FROM customers WHERE\nid = = 3", 1064, "near '= 3' at line 2"},
		{"SELECT * FROM no_such_table", 1146, "Table '" + p.Demo + ".no_such_table' doesn't exist"},
		{"INSERT INTO customers (name) VALUES ('no key')", 1235, "doesn't yet support"},
		{"LOCK TABLES customers READ", 1235, "LOCK TABLES"},
		{"", 1065, "Query was empty"},
		{" ; ", 1065, "Query was empty"}, // only comments is an OK on MariaDB (TestProtocolQueryErrors)
		{"SELECT 1; SELECT 2", 1064, "near 'SELECT 2'"},
		{"CREATE DATABASE other", 1235, "not in the proxy's configuration"},
	}
	for _, tc := range cases {
		_, err := c.ExecContext(context.Background(), tc.q)
		var me *mysql.MySQLError
		if !errors.As(err, &me) || me.Number != tc.code || !strings.Contains(me.Message, tc.msg) {
			t.Errorf("%q: got %v, want %d containing %q", tc.q, err, tc.code, tc.msg)
		}
		if got := query1(t, c, "SELECT 7"); got != "7" {
			t.Fatalf("connection unusable after %q", tc.q)
		}
	}
}

// TestMultiStatements: one COM_QUERY with several statements gives one
// result per statement, and stops at the first error.
func TestMultiStatements(t *testing.T) {
	p := proxytest.Start(t, proxytest.SharedTopology(t), nil)
	db := p.Open(t, p.Demo, "multiStatements=true")
	c := conn(t, db)
	rows, err := c.QueryContext(context.Background(), "SELECT 1; SET @m = 5; SELECT @m + 1, 'x;y'")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		for rows.Next() {
			cols, _ := rows.Columns()
			vals := make([]sql.NullString, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for _, v := range vals {
				got = append(got, v.String)
			}
		}
		if !rows.NextResultSet() {
			break
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	if strings.Join(got, ",") != "1,6,x;y" {
		t.Errorf("results %v", got)
	}
	_, err = c.ExecContext(context.Background(), "SET @n = 1; SELECT * FROM nosuch; SET @n = 2")
	if proxytest.SQLErr(err) != 1146 {
		t.Errorf("error in the middle: %v", err)
	}
	if got := query1(t, c, "SELECT @n"); got != "1" {
		t.Errorf("statements after the error ran: @n = %s", got)
	}
}
