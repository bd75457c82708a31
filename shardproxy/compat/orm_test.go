package compat

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/strata-db/strata/localdb"
	"github.com/strata-db/strata/shardproxy/config"
)

// The ORM tests: what an application on an ORM (GORM, Hibernate,
// SQLAlchemy, ActiveRecord through go-sql-driver here) sends, to MariaDB
// directly and through a proxy of their own with tables orm_* sharded by
// id in demo (orm_ref a reference table). Answers compare more than
// same does: an OK's affected rows and insert id, the warnings after
// each statement, and the result's column types as the driver reads them.

// ormTables are the tables the ORM tests declare in demo.
var ormTables = map[string]*config.Table{
	"orm_a":   {Kind: "sharded", Column: "id"},
	"orm_b":   {Kind: "sharded", Column: "id"},
	"orm_c":   {Kind: "sharded", Column: "id"},
	"orm_t":   {Kind: "sharded", Column: "id"},
	"orm_s":   {Kind: "sharded", Column: "name", Type: "string"},
	"orm_ref": {Kind: "reference"},
}

// ormProxy starts a proxy of the test's own with proxyConfig's databases
// and ormTables, and returns its address.
func ormProxy(t *testing.T) string {
	t.Helper()
	setup(t)
	c := proxyConfig()
	for n, tb := range ormTables {
		c.Databases["demo"].Tables[n] = tb
	}
	addr, stop, err := startProxy(c)
	if err != nil {
		t.Fatalf("orm proxy: %v", err)
	}
	t.Cleanup(stop)
	return addr
}

// ormPair opens a pair on direct_demo and the ORM proxy's demo with DSN
// parameters params.
func ormPair(t *testing.T, params ...string) ormSides {
	t.Helper()
	addr := ormProxy(t)
	q := "?" + strings.Join(append([]string{"timeout=5s"}, params...), "&")
	open := func(dsn string) *sql.Conn { return openConn(t, dsn) }
	return ormSides{
		direct:  open(localdb.AppUser + "@tcp(" + env.topo.Shards()[0].Primary().Addr() + ")/direct_demo" + q),
		proxied: open("root@tcp(" + addr + ")/demo" + q),
		types:   true,
	}
}

type ormSides struct {
	direct, proxied *sql.Conn
	// types: compare the result's column types as the driver reads them
	// (type name, precision, nullability), not only their names.
	types bool
}

// ormAnswer is one side's answer, written out in full.
func ormAsk(t *testing.T, c *sql.Conn, types bool, q string, args ...any) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out string
	word := strings.ToUpper(strings.Fields(strings.TrimLeft(q, "( "))[0])
	switch word {
	case "INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER", "SET", "BEGIN", "COMMIT", "ROLLBACK", "START", "TRUNCATE", "SAVEPOINT", "RELEASE", "DO":
		if !strings.Contains(strings.ToUpper(q), "RETURNING") {
			res, err := c.ExecContext(ctx, q, args...)
			if err != nil {
				return ormErr(t, q, err)
			}
			n, _ := res.RowsAffected()
			id, _ := res.LastInsertId()
			out = fmt.Sprintf("ok affected=%d id=%d", n, id)
			break
		}
		fallthrough
	default:
		rows, err := c.QueryContext(ctx, q, args...)
		if err != nil {
			return ormErr(t, q, err)
		}
		out = ormRows(t, q, rows, types)
	}
	// The warnings the statement left.
	if word != "SHOW" {
		rows, err := c.QueryContext(ctx, "SHOW WARNINGS")
		if err != nil {
			t.Fatalf("SHOW WARNINGS after %s: %v", q, err)
		}
		if w := ormRows(t, "SHOW WARNINGS", rows, false); !strings.HasSuffix(w, "[]") {
			out += " warnings " + w
		}
	}
	return out
}

func ormErr(t *testing.T, q string, err error) string {
	t.Helper()
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return fmt.Sprintf("error %d: %s", me.Number, me.Message)
	}
	t.Fatalf("%s: %v", q, err)
	return ""
}

func ormRows(t *testing.T, q string, rows *sql.Rows, types bool) string {
	t.Helper()
	defer rows.Close()
	cts, err := rows.ColumnTypes()
	if err != nil {
		t.Fatal(err)
	}
	var cols []string
	for _, ct := range cts {
		s := ct.Name()
		if !types {
			cols = append(cols, s)
			continue
		}
		s += " " + ct.DatabaseTypeName()
		if p, sc, ok := ct.DecimalSize(); ok {
			s += fmt.Sprintf("(%d,%d)", p, sc)
		}
		if n, ok := ct.Nullable(); ok && !n {
			s += " NOT NULL"
		}
		s += " " + ct.ScanType().String()
		cols = append(cols, s)
	}
	var out [][]string
	for rows.Next() {
		vals := make([]sql.RawBytes, len(cts))
		ptrs := make([]any, len(cts))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		r := make([]string, len(cts))
		for i, v := range vals {
			if v == nil {
				r[i] = "NULL"
			} else {
				r[i] = string(v)
			}
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return ormErr(t, q, err)
	}
	return fmt.Sprintf("%q %q", cols, out)
}

// same runs each statement on both sides and reports every answer that
// differs; it returns whether all were the same.
func (p ormSides) same(t *testing.T, stmts ...string) bool {
	t.Helper()
	ok := true
	for _, q := range stmts {
		d := strings.ReplaceAll(ormAsk(t, p.direct, p.types, strings.ReplaceAll(q, "{db}", "direct_demo")), "direct_demo", "demo")
		x := ormAsk(t, p.proxied, p.types, strings.ReplaceAll(q, "{db}", "demo"))
		if d != x {
			ok = false
			t.Errorf("%s\n  MariaDB:       %s\n  through proxy: %s", q, d, x)
		}
	}
	return ok
}

// sameArgs runs one statement with arguments on both sides.
func (p ormSides) sameArgs(t *testing.T, q string, args ...any) bool {
	t.Helper()
	d := strings.ReplaceAll(ormAsk(t, p.direct, p.types, q, args...), "direct_demo", "demo")
	x := ormAsk(t, p.proxied, p.types, q, args...)
	if d != x {
		t.Errorf("%s %v\n  MariaDB:       %s\n  through proxy: %s", q, args, d, x)
		return false
	}
	return true
}

// TestORMConnectionIDName: a select-list expression around CONNECTION_ID()
// (which the proxy answers) is named by the client's text, as on MariaDB,
// text and prepared; it was named by the normalized text the proxy plans
// ("CONNECTION_ID() > :vtg1 /* INT64 */").
func TestORMConnectionIDName(t *testing.T) {
	for _, interp := range []string{"false", "true"} {
		t.Run("interpolate="+interp, func(t *testing.T) {
			p := ormPair(t, "interpolateParams="+interp)
			p.sameNames(t,
				"SELECT CONNECTION_ID() > 0, CONNECTION_ID() = CONNECTION_ID(), 1 + CONNECTION_ID() > 1 AS x, CONNECTION_ID() IS NOT NULL, CONNECTION_ID()",
				"SELECT CONNECTION_ID() - CONNECTION_ID(), connection_id()+0",
			)
			p.sameNamesArgs(t, "SELECT CONNECTION_ID() > ?, (CONNECTION_ID()) + ?", 0, 1)
		})
	}
}

// TestORMUpsertLastInsertID: INSERT ... ON DUPLICATE KEY UPDATE id =
// LAST_INSERT_ID(id), the idiom that returns the existing row's id as the
// insert id (and LAST_INSERT_ID()), and id = id, keep the row's shard key
// and run as on MariaDB; they got 1235 "ON DUPLICATE KEY UPDATE of shard
// key". An update that changes the key stays refused, and so does the
// idiom in a multi-row INSERT (one server reports the last updated row's
// id, which the proxy cannot tell over shards).
func TestORMUpsertLastInsertID(t *testing.T) {
	for _, interp := range []string{"false", "true"} {
		t.Run("interpolate="+interp, func(t *testing.T) {
			p := ormPair(t, "interpolateParams="+interp)
			// LAST_INSERT_ID()'s column type is the proxy's (see the report
			// of TestORMProbe): compare values.
			p.types = false
			p.same(t,
				"DROP TABLE IF EXISTS orm_c",
				"CREATE TABLE orm_c (id BIGINT NOT NULL PRIMARY KEY, name VARCHAR(40), qty INT NOT NULL DEFAULT 0, UNIQUE KEY uk_name (name))",
				"INSERT INTO orm_c (id, name, qty) VALUES (100, 'e', 1), (101, 'f', 1), (102, 'g', 1)",
				"INSERT INTO orm_c (id, name, qty) VALUES (100, 'e', 1) ON DUPLICATE KEY UPDATE id = LAST_INSERT_ID(id), qty = qty + 1",
				"SELECT LAST_INSERT_ID()",
				"INSERT INTO orm_c (id, name, qty) VALUES (101, 'f', 1) ON DUPLICATE KEY UPDATE qty = qty + 1, id = LAST_INSERT_ID(orm_c.id)",
				"SELECT LAST_INSERT_ID()",
				"INSERT INTO orm_c (id, name, qty) VALUES (102, 'g', 7) ON DUPLICATE KEY UPDATE id = id, qty = VALUES(qty)",
				// GORM's clause.OnConflict{DoNothing: true}, one row and several.
				"INSERT INTO `orm_c` (`id`,`name`,`qty`) VALUES (100,'e',9) ON DUPLICATE KEY UPDATE `id`=`id`",
				"INSERT INTO `orm_c` (`id`,`name`,`qty`) VALUES (100,'e',9),(101,'f',9),(103,'h',9) ON DUPLICATE KEY UPDATE `id`=`orm_c`.`id`",
				"SELECT id, name, qty FROM orm_c ORDER BY id",
			)
			p.sameArgs(t, "INSERT INTO orm_c (id, name, qty) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE id = LAST_INSERT_ID(id), qty = qty + ?", 101, "f", 1, 5)
			p.sameArgs(t, "SELECT LAST_INSERT_ID(), id, qty FROM orm_c WHERE id = ?", 101)
			for _, q := range []string{
				"INSERT INTO orm_c (id, name, qty) VALUES (102, 'g', 1), (100, 'e', 1) ON DUPLICATE KEY UPDATE id = LAST_INSERT_ID(id), qty = qty + 1",
				"INSERT INTO orm_c (id, name, qty) VALUES (101, 'f', 5) ON DUPLICATE KEY UPDATE id = VALUES(id)",
				"INSERT INTO orm_c (id, name, qty) VALUES (101, 'f', 5) ON DUPLICATE KEY UPDATE id = LAST_INSERT_ID(id + 1)",
			} {
				if got := ormAsk(t, p.proxied, false, q); !strings.HasPrefix(got, "error 1235: ") || !strings.Contains(got, "ON DUPLICATE KEY UPDATE") {
					t.Errorf("%s: %s, want 1235 naming ON DUPLICATE KEY UPDATE", q, got)
				}
			}
		})
	}
}

// TestORMTablelessFirstInTx: a transaction whose first statement names no
// table (SELECT 1, SELECT @@tx_isolation, SELECT NOW(): what drivers,
// pools and ORMs send as a transaction begins) goes on to the shard of its
// first row, as on one server. That statement used to pin the transaction
// to a shard picked at random, and the next statement, on the other
// shard, got 1235 ("transaction on shard s0 cannot also touch shard s1")
// about one time in two.
func TestORMTablelessFirstInTx(t *testing.T) {
	for _, interp := range []string{"false", "true"} {
		t.Run("interpolate="+interp, func(t *testing.T) {
			p := ormPair(t, "interpolateParams="+interp)
			p.types = false
			p.same(t,
				"DROP TABLE IF EXISTS orm_a",
				"CREATE TABLE orm_a (id BIGINT NOT NULL PRIMARY KEY, n INT NOT NULL)",
				"INSERT INTO orm_a (id, n) VALUES (1, 0), (2, 0), (3, 0), (4, 0), (5, 0), (6, 0), (7, 0), (8, 0)",
			)
			for id := 1; id <= 8; id++ {
				first := []string{"SELECT 1", "SELECT @@session.tx_isolation", "SELECT NOW() IS NOT NULL", "SELECT DATABASE()"}[id%4]
				begin, end := "BEGIN", "COMMIT"
				if id%3 == 0 {
					begin, end = "SET autocommit = 0", "COMMIT"
				}
				p.same(t, begin, first)
				if id%2 == 0 {
					p.sameArgs(t, "SELECT ?, @@session.tx_read_only", id)
				}
				p.sameArgs(t, "SELECT id, n FROM orm_a WHERE id = ? FOR UPDATE", id)
				p.sameArgs(t, "UPDATE orm_a SET n = n + ? WHERE id = ?", id, id)
				p.sameArgs(t, "SELECT ? + 1", id)
				p.same(t, "SELECT @@in_transaction", end, "SET autocommit = 1")
			}
			p.same(t, "SELECT id, n FROM orm_a ORDER BY id")
		})
	}
}

// TestORMHexStringKey: a hexadecimal or bit literal compared with (or
// stored into) a string shard key is the string of its bytes, as MariaDB
// reads it (x'42494e' is 'BIN', equal to 'bin' under utf8mb4_general_ci).
// The proxy hashed its text ("x'42494e'"): a read went to the wrong shard
// and found nothing, and an insert put the row where reads by its text
// never look.
func TestORMHexStringKey(t *testing.T) {
	for _, interp := range []string{"false", "true"} {
		t.Run("interpolate="+interp, func(t *testing.T) {
			p := ormPair(t, "interpolateParams="+interp)
			p.same(t,
				"DROP TABLE IF EXISTS orm_s",
				"CREATE TABLE orm_s (name VARCHAR(20) NOT NULL PRIMARY KEY, v INT NOT NULL)",
				"INSERT INTO orm_s (name, v) VALUES ('alice', 1), ('Bob', 2), ('carol', 3), ('dave', 4), ('bin', 5), ('zed', 6)",
				// 'ERIN', 'frank', 'Gus', 'hé' as hex and bits.
				"INSERT INTO orm_s (name, v) VALUES (x'4552494e', 7), (0x6672616e6b, 8), (b'010001110111010101110011', 9), (x'68c3a9', 10)",
			)
			for _, q := range []string{
				"SELECT name, v FROM orm_s WHERE name = x'42494e'",
				"SELECT name, v FROM orm_s WHERE name = 0x414c494345",
				"SELECT name, v FROM orm_s WHERE name = b'01111010011001010110010000100000'",
				"SELECT name, v FROM orm_s WHERE name IN (x'626f62', x'4341524f4c', 'DAVE') ORDER BY v",
				"SELECT name, v FROM orm_s WHERE name = 'erin'",
				"SELECT name, v FROM orm_s WHERE name = 'FRANK'",
				"SELECT name, v FROM orm_s WHERE name = 'gus'",
				"SELECT name, v FROM orm_s WHERE name = 'HÉ'",
				"SELECT name, v FROM orm_s WHERE name = x'e9'",
				"UPDATE orm_s SET v = v + 100 WHERE name = x'424f42'",
				"DELETE FROM orm_s WHERE name = 0x44415645",
				"SELECT name, v FROM orm_s ORDER BY v",
			} {
				p.same(t, q)
			}
			p.sameArgs(t, "SELECT name, v FROM orm_s WHERE name = ?", "Erin")
		})
	}
}

// TestORMBadPosition: ORDER BY or GROUP BY a position beyond the select
// list across shards is MariaDB's 1054 "Unknown column '5' in 'ORDER BY'",
// not 1235.
func TestORMBadPosition(t *testing.T) {
	p := ormPair(t, "interpolateParams=false")
	p.same(t,
		"DROP TABLE IF EXISTS orm_a",
		"CREATE TABLE orm_a (id BIGINT NOT NULL PRIMARY KEY, g INT)",
		"INSERT INTO orm_a (id, g) VALUES (1, 1), (2, 2), (3, 1), (4, 2)",
		"SELECT id FROM orm_a ORDER BY 5",
		"SELECT id FROM orm_a ORDER BY 0",
		"SELECT id, g FROM orm_a ORDER BY 3 DESC",
		"SELECT g, COUNT(*) FROM orm_a GROUP BY 3",
		"SELECT g, COUNT(*) FROM orm_a GROUP BY 1 ORDER BY 4",
		"SELECT DISTINCT g FROM orm_a ORDER BY 2",
		"SELECT id, g FROM orm_a ORDER BY 2, 1",
	)
}

// TestORMMariaDBSyntax: in a sharded database, a statement vitess's parser
// does not read but MariaDB does (Hibernate's FOR UPDATE WAIT n and LOCK
// IN SHARE MODE NOWAIT, CREATE INDEX IF NOT EXISTS, CAST(x AS INTEGER))
// is refused with 1235 saying so; it got 1064, telling the client its SQL
// was wrong. A real syntax error still gets 1064, now MariaDB's own
// message, text and prepared.
func TestORMMariaDBSyntax(t *testing.T) {
	for _, interp := range []string{"false", "true"} {
		t.Run("interpolate="+interp, func(t *testing.T) {
			p := ormPair(t, "interpolateParams="+interp)
			p.types = false
			p.same(t,
				"DROP TABLE IF EXISTS orm_a",
				"CREATE TABLE orm_a (id BIGINT NOT NULL PRIMARY KEY, g INT)",
				"INSERT INTO orm_a (id, g) VALUES (1, 1), (2, 2)",
				"SELEC id FROM orm_a",
				"SELECT id FROM orm_a WHERE",
				"SELECT id FROM orm_a WHERE id = 1 FOR UPDATE WAIT",
				"SELECT 'a",
				"SELECT id FROM orm_a LIMIT 1 2",
				"INSERT INTO orm_a (id, g) VALUES (1, 2",
				"UPDATE orm_a SET g = WHERE id = 1",
			)
			p.sameArgs(t, "SELECT id FROM orm_a WHERE id = ? AND", 1)
			for _, q := range []string{
				"SELECT id FROM orm_a WHERE id = 1 FOR UPDATE WAIT 5",
				"SELECT id FROM orm_a WHERE id = 1 LOCK IN SHARE MODE NOWAIT",
				"SELECT CAST(g AS INTEGER) FROM orm_a WHERE id = 1",
				"CREATE INDEX IF NOT EXISTS idx_g ON orm_a (g)",
			} {
				if d := ormAsk(t, p.direct, false, q); strings.HasPrefix(d, "error") {
					t.Fatalf("%s: MariaDB: %s", q, d)
				}
				x := ormAsk(t, p.proxied, false, q)
				if !strings.HasPrefix(x, "error 1235: ") || !strings.Contains(x, "MariaDB syntax that the proxy's SQL parser does not read (near '") {
					t.Errorf("%s: through the proxy %s, want 1235 naming MariaDB syntax", q, x)
				}
			}
			x := ormAsk(t, p.proxied, false, "SELECT id FROM orm_a WHERE id = ? FOR UPDATE WAIT 5", 1)
			if !strings.HasPrefix(x, "error 1235: ") {
				t.Errorf("prepared FOR UPDATE WAIT 5: through the proxy %s, want 1235", x)
			}
		})
	}
}

// TestORMReferenceReadFirstInTx: a transaction that begins with plain
// reads of a reference table (a lookup before the write, as ORMs do) goes
// on to the shard of its first row: it was pinned to the shard that
// answered the lookup, and a statement for the other shard got 1235
// ("transaction on shard s0 cannot also touch shard s1") in
// transaction_mode single. The moved transaction keeps its
// characteristics (READ ONLY, SET TRANSACTION); a transaction that wrote
// or locked on its shard still does not move.
func TestORMReferenceReadFirstInTx(t *testing.T) {
	p := ormPair(t, "interpolateParams=false")
	p.types = false
	p.same(t,
		"DROP TABLE IF EXISTS orm_a",
		"DROP TABLE IF EXISTS orm_ref",
		"CREATE TABLE orm_a (id BIGINT NOT NULL PRIMARY KEY, g INT NOT NULL)",
		"CREATE TABLE orm_ref (id INT PRIMARY KEY, name VARCHAR(10))",
		"INSERT INTO orm_ref (id, name) VALUES (1, 'x'), (2, 'y')",
		"INSERT INTO orm_a (id, g) VALUES (1, 0), (2, 0), (3, 0), (4, 0), (5, 0), (6, 0), (7, 0), (8, 0)",
	)
	// An id on each shard.
	var on []int
	for _, sh := range env.topo.Shards() {
		n, err := sh.Primary().QueryString(context.Background(), "SELECT MIN(id) FROM demo.orm_a")
		if err != nil {
			t.Fatal(err)
		}
		var id int
		fmt.Sscan(n, &id)
		on = append(on, id)
	}
	for _, id := range []int{on[0], on[1], on[1], on[0]} {
		p.same(t, "BEGIN", "SELECT name FROM orm_ref WHERE id = 1", "SELECT COUNT(*) FROM orm_ref")
		p.sameArgs(t, "SELECT name FROM orm_ref WHERE id = ?", 2)
		p.sameArgs(t, "UPDATE orm_a SET g = g + 1 WHERE id = ?", id)
		p.same(t, "SELECT @@in_transaction", "COMMIT")
	}
	for _, id := range on {
		p.same(t, "SET autocommit = 0", "SELECT name FROM orm_ref WHERE id = 1")
		p.sameArgs(t, "SELECT id, g FROM orm_a WHERE id = ? FOR UPDATE", id)
		p.sameArgs(t, "UPDATE orm_a SET g = g + 10 WHERE id = ?", id)
		p.same(t, "ROLLBACK", "SET autocommit = 1")
		p.same(t, "START TRANSACTION READ ONLY", "SELECT name FROM orm_ref WHERE id = 1")
		p.sameArgs(t, "UPDATE orm_a SET g = g + 100 WHERE id = ?", id)
		// (A statement naming a table clears the 1792 on both sides: one
		// without keeps it on MariaDB, which the proxy does not mimic.)
		p.same(t, "SELECT COUNT(*) FROM orm_ref", "COMMIT")
		p.same(t, "SET TRANSACTION READ ONLY", "BEGIN", "SELECT name FROM orm_ref WHERE id = 1")
		p.sameArgs(t, "UPDATE orm_a SET g = g + 100 WHERE id = ?", id)
		// (A statement naming a table clears the 1792 on both sides: one
		// without keeps it on MariaDB, which the proxy does not mimic.)
		p.same(t, "SELECT COUNT(*) FROM orm_ref", "COMMIT")
	}
	p.same(t, "SELECT id, g FROM orm_a ORDER BY id")
	// A locking read or a write pins it: of two updates, on each shard,
	// the one on the other shard is refused, and the writes stay the
	// transaction's (rolled back below).
	for _, first := range []string{"SELECT name FROM orm_ref WHERE id = 1 FOR UPDATE", fmt.Sprintf("UPDATE orm_a SET g = g + 1000 WHERE id = %d", on[0])} {
		for _, q := range []string{"BEGIN", "SELECT name FROM orm_ref WHERE id = 2", first} {
			if got := ormAsk(t, p.proxied, false, q); strings.HasPrefix(got, "error") {
				t.Errorf("%s: %s", q, got)
			}
		}
		refused := 0
		for _, id := range on {
			got := ormAsk(t, p.proxied, false, fmt.Sprintf("UPDATE orm_a SET g = g + 1000 WHERE id = %d", id))
			switch {
			case strings.HasPrefix(got, "error 1235: transaction on shard"):
				refused++
			case strings.HasPrefix(got, "error"):
				t.Errorf("after %s: %s", first, got)
			}
		}
		if refused != 1 {
			t.Errorf("after %s: %d of the updates on two shards refused, want 1", first, refused)
		}
		ormAsk(t, p.proxied, false, "ROLLBACK")
	}
	if got := ormAsk(t, p.proxied, false, "SELECT COUNT(*) FROM orm_a WHERE g >= 1000"); !strings.Contains(got, `[["0"]]`) {
		t.Errorf("rolled back writes: %s", got)
	}
}

// sameNames runs each statement on both sides and compares the result's
// column names and rows only.
func (p ormSides) sameNames(t *testing.T, stmts ...string) {
	t.Helper()
	for _, q := range stmts {
		p.sameNamesArgs(t, q)
	}
}

func (p ormSides) sameNamesArgs(t *testing.T, q string, args ...any) {
	t.Helper()
	names := func(c *sql.Conn) string {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		rows, err := c.QueryContext(ctx, q, args...)
		if err != nil {
			return ormErr(t, q, err)
		}
		defer rows.Close()
		cols, err := rows.Columns()
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for rows.Next() {
			n++
		}
		return fmt.Sprintf("%q, %d rows", cols, n)
	}
	if d, x := names(p.direct), names(p.proxied); d != x {
		t.Errorf("%s %v\n  MariaDB:       %s\n  through proxy: %s", q, args, d, x)
	}
}
