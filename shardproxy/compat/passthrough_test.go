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
)

// TestUnshardedPassthrough: in an unsharded database every statement
// MariaDB accepts answers as MariaDB answers, including those vitess's
// parser does not read or the planner does not plan.
func TestUnshardedPassthrough(t *testing.T) {
	p := connect(t, "direct", "test", "multiStatements=true")
	p.same(t, "direct", "test",
		"DO 1",
		"DO 1, SLEEP(0)",
		"DROP PROCEDURE IF EXISTS p1",
		"CREATE PROCEDURE p1(IN a INT, OUT b INT) BEGIN SET b = a * 2; END",
		"SET @res = 0",
		"CALL p1(21, @res)",
		"SELECT @res",
		"DROP FUNCTION IF EXISTS f1",
		"CREATE FUNCTION f1(x INT) RETURNS INT DETERMINISTIC RETURN x + 1",
		"SELECT f1(41)",
		"DROP TABLE IF EXISTS pt",
		"CREATE TABLE pt (id INT PRIMARY KEY, v INT)",
		"DROP TRIGGER IF EXISTS pt_bi",
		"CREATE TRIGGER pt_bi BEFORE INSERT ON pt FOR EACH ROW SET NEW.v = NEW.id * 100",
		"INSERT INTO pt (id) VALUES (1), (2)",
		"SELECT * FROM pt ORDER BY id",
		"DROP VIEW IF EXISTS pv",
		"CREATE VIEW pv AS SELECT id, v FROM pt WHERE id > 1",
		"SELECT * FROM pv",
		"DROP EVENT IF EXISTS pe",
		"CREATE EVENT pe ON SCHEDULE EVERY 1 DAY DISABLE DO DELETE FROM pt",
		"SET STATEMENT max_statement_time = 10 FOR SELECT COUNT(*) FROM pt",
		"SELECT @r := 0",
		"SELECT @r := @r + 1 AS rank, id FROM pt ORDER BY id",
		"SELECT @r",
		"SELECT id INTO @x FROM pt WHERE id = 2",
		"SELECT @x",
		"PREPARE ps FROM 'SELECT v FROM pt WHERE id = ?'",
		"SET @id = 1",
		"EXECUTE ps USING @id",
		"DEALLOCATE PREPARE ps",
		"HANDLER pt OPEN",
		"HANDLER pt READ FIRST",
		"HANDLER pt CLOSE",
		"SELECT NEXTVAL(s)",
		"DROP SEQUENCE IF EXISTS sq",
		"CREATE SEQUENCE sq START WITH 10",
		"SELECT NEXTVAL(sq), NEXT VALUE FOR sq",
		"INSERT INTO pt VALUES (1, 5) ON DUPLICATE KEY UPDATE v = VALUES(v) + 1",
		"SELECT id, v, ROW_NUMBER() OVER (ORDER BY v DESC) FROM pt",
		"SELEKT 1",
		"DROP EVENT pe",
		"DROP VIEW pv",
		"DROP TRIGGER pt_bi",
		"DROP TABLE pt",
		"DROP SEQUENCE sq",
		"DROP FUNCTION f1",
		"DROP PROCEDURE p1",
	)
}

// allResults reads every result set of a statement (with arguments: a
// prepared statement).
func allResults(t *testing.T, c *sql.Conn, q string, args ...any) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rows, err := c.QueryContext(ctx, q, args...)
	if err != nil {
		return "error: " + errText(err)
	}
	defer rows.Close()
	var b strings.Builder
	for {
		cols, _ := rows.Columns()
		fmt.Fprintf(&b, "%q:", cols)
		for rows.Next() {
			vals := make([]sql.NullString, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, " %v", vals)
		}
		if err := rows.Err(); err != nil {
			b.WriteString(" error: " + errText(err))
			return b.String()
		}
		if !rows.NextResultSet() {
			break
		}
		b.WriteString(" | ")
	}
	if err := rows.Err(); err != nil {
		b.WriteString(" error: " + errText(err))
	}
	return b.String()
}

func errText(err error) string {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return fmt.Sprintf("%d", me.Number)
	}
	return err.Error()
}

// TestCallResultSets: CALL of a procedure with several result sets, and
// one that signals an error after a result, answer as MariaDB answers;
// so does a procedure created in a multi-statement text.
func TestCallResultSets(t *testing.T) {
	p := connect(t, "direct", "test", "multiStatements=true")
	p.same(t, "direct", "test",
		"DROP PROCEDURE IF EXISTS rs2",
		"CREATE PROCEDURE rs2() BEGIN SELECT 1 AS a, 2 AS b; SELECT 'x' AS c UNION SELECT 'y'; END",
		"DROP PROCEDURE IF EXISTS sig",
	)
	for _, q := range []string{
		"CREATE PROCEDURE sig(r INT) BEGIN SELECT r; SIGNAL SQLSTATE '45001' SET MESSAGE_TEXT = 'boom', MYSQL_ERRNO = 45001; END",
		"CALL rs2()",
		"CALL sig(42)",
		"CALL rs2(); SELECT 3",
		"DROP PROCEDURE IF EXISTS ms; CREATE PROCEDURE ms() BEGIN SELECT 5; END; CALL ms()",
		"CALL nosuch()",
	} {
		d, x := allResults(t, p.direct, q), allResults(t, p.proxied, q)
		if d != x {
			t.Errorf("%s\n  MariaDB: %s\n  proxy:   %s", q, d, x)
		}
	}
	p.same(t, "direct", "test", "DROP PROCEDURE rs2", "DROP PROCEDURE sig", "DROP PROCEDURE ms")
}

// TestPreparedCall: CALL as a prepared statement (go-sql-driver sends a
// query with arguments as COM_STMT_PREPARE/EXECUTE) answers with every
// result set, and the error after a result of one that signals, as MariaDB
// does; in the sharded database a CALL that names none of its tables runs
// on its home shard (the first).
func TestPreparedCall(t *testing.T) {
	p := connect(t, "direct", "test")
	p.same(t, "direct", "test",
		"DROP PROCEDURE IF EXISTS prs",
		"CREATE PROCEDURE prs(a INT) BEGIN SELECT a AS x, 2 AS y UNION SELECT 3, 4; SELECT 'z' AS c; END",
		"DROP PROCEDURE IF EXISTS psig",
		"CREATE PROCEDURE psig(r INT) BEGIN SELECT r; SIGNAL SQLSTATE '45001' SET MESSAGE_TEXT = 'boom', MYSQL_ERRNO = 45001; END",
	)
	for _, q := range []string{"CALL prs(?)", "CALL psig(?)", "CALL nosuch(?)"} {
		d, x := allResults(t, p.direct, q, 1), allResults(t, p.proxied, q, 1)
		if d != x {
			t.Errorf("%s\n  MariaDB: %s\n  proxy:   %s", q, d, x)
		}
	}
	p.same(t, "direct", "test", "DROP PROCEDURE prs", "DROP PROCEDURE psig")

	// Sharded: the procedure lives on the home shard's copy of the
	// database (created there directly for the test).
	setup(t)
	home, err := sql.Open("mysql", env.topo.Shards()[0].Primary().DSN("demo"))
	if err != nil {
		t.Fatal(err)
	}
	defer home.Close()
	for _, q := range []string{"DROP PROCEDURE IF EXISTS pshard", "CREATE PROCEDURE pshard(a INT) BEGIN SELECT a + 1 AS n; SELECT @@server_id = @@server_id AS ok; END"} {
		if _, err := home.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	defer home.Exec("DROP PROCEDURE IF EXISTS pshard")
	sh := connect(t, "demo", "demo")
	if d, x := allResults(t, sh.direct, "CALL pshard(?)", 41), allResults(t, sh.proxied, "CALL pshard(?)", 41); d != x {
		t.Errorf("sharded CALL pshard(?)\n  MariaDB (home shard): %s\n  proxy:                %s", d, x)
	}
	// A CALL naming a sharded table is not run on one shard.
	if x := allResults(t, sh.proxied, "CALL pshard((SELECT COUNT(*) FROM items WHERE id = ?))", 1); !strings.Contains(x, "error") {
		t.Errorf("a prepared CALL naming a sharded table: %s, want an error", x)
	}
}
