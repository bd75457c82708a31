package shardproxy

import (
	"context"
	"database/sql"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-db/strata/shardproxy/config"
)

// withTables declares more tables of database demo.
func withTables(tables map[string]*config.Table) func(*config.Config) {
	return func(c *config.Config) {
		for name, t := range tables {
			c.Databases["demo"].Tables[name] = t
		}
	}
}

// TestPrepareConcurrently: sessions preparing one SELECT at the same time
// each get the statement's columns. The columns are found once per plan and
// shared, and vitess rewrites the ones it is given while writing the
// prepare response: run with -race, a shared copy is a data race.
func TestPrepareConcurrently(t *testing.T) {
	p := startProxy(t, sharedTopo(t), withTables(map[string]*config.Table{"pc": {Kind: "sharded", Column: "id"}}))
	const sessions, rounds = 12, 20
	db := p.open(t, "demo", "interpolateParams=false", "readTimeout=30s", "writeTimeout=30s")
	db.SetMaxOpenConns(sessions)
	db.SetMaxIdleConns(sessions)
	mustExec(t, db, "DROP TABLE IF EXISTS pc")
	mustExec(t, db, "CREATE TABLE pc (id BIGINT PRIMARY KEY, name VARCHAR(20))")
	mustExec(t, db, "INSERT INTO pc (id, name) VALUES (1, 'one'), (2, 'two'), (3, 'three')")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const q = "SELECT id, name, '?' AS mark FROM pc WHERE id = ?"
	start := make(chan struct{})
	errs := make(chan error, sessions)
	var wg sync.WaitGroup
	for i := 0; i < sessions; i++ {
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conn.Close()
			<-start
			for r := 0; r < rounds; r++ {
				id := 1 + (i+r)%3
				stmt, err := conn.PrepareContext(ctx, q)
				if err != nil {
					errs <- err
					return
				}
				rows, err := stmt.QueryContext(ctx, id)
				if err != nil {
					stmt.Close()
					errs <- err
					return
				}
				cols, _ := rows.Columns()
				var gotID int
				var name, mark string
				n := 0
				for rows.Next() {
					n++
					err = rows.Scan(&gotID, &name, &mark)
				}
				if err == nil {
					err = rows.Err()
				}
				rows.Close()
				stmt.Close()
				switch {
				case err != nil:
					errs <- err
					return
				case !reflect.DeepEqual(cols, []string{"id", "name", "mark"}) || n != 1 || gotID != id || mark != "?":
					errs <- fmt.Errorf("id %d: columns %q, %d rows, got %d %q %q", id, cols, n, gotID, name, mark)
					return
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestPreparedDoubleParameter: a prepared statement's DOUBLE parameter reads
// back as a DOUBLE where the proxy writes parameters into SQL itself: a
// SELECT with no table run on the ordinary path (in a transaction, where
// the fast lane does not take it) and a SET of a user variable (a statement
// the proxy runs as text). Compared with the same client on one MariaDB.
func TestPreparedDoubleParameter(t *testing.T) {
	topo := sharedTopo(t)
	p := startProxy(t, topo, nil)
	direct, err := topo.Shards()[0].Primary().Open("test")
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	proxy := p.open(t, "demo", "interpolateParams=false")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run := func(db *sql.DB) []string {
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		var out []string
		one := func(q string, args ...any) {
			cols, rows := connQuery(t, conn, q, args...)
			out = append(out, q+" -> "+strings.Join(append(cols, rows...), "; "))
		}
		exec := func(q string, args ...any) {
			if _, err := conn.ExecContext(ctx, q, args...); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		one("SELECT ? / 3 AS q", float64(1))
		exec("BEGIN")
		one("SELECT ? / 3 AS q", float64(1))
		one("SELECT ? * 2 AS q, ? AS f", 1.5, float32(2))
		exec("COMMIT")
		exec("SET @d = ?", float64(1))
		one("SELECT @d / 3 AS q")
		return out
	}
	want, got := run(direct), run(proxy)
	if !strings.Contains(want[0], "DOUBLE") || !strings.Contains(want[0], "0.3333333333333333") {
		t.Fatalf("MariaDB itself: %s", want[0])
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("through the proxy:\n %s\nMariaDB:\n %s", got[i], want[i])
		}
	}
}

// queryRows runs a query and returns its rows as text.
func queryRows(t *testing.T, db *sql.DB, q string, args ...any) []string {
	t.Helper()
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, rows := connQuery(t, conn, q, args...)
	return rows
}

// connQuery runs a query on one connection and returns its columns (name
// and type) and its rows as text.
func connQuery(t *testing.T, conn *sql.Conn, q string, args ...any) (cols, out []string) {
	t.Helper()
	rows, err := conn.QueryContext(context.Background(), q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cts, err := rows.ColumnTypes()
	if err != nil {
		t.Fatal(err)
	}
	for _, ct := range cts {
		cols = append(cols, ct.Name()+" "+ct.DatabaseTypeName())
	}
	vals := make([]sql.RawBytes, len(cts))
	ptrs := make([]any, len(cts))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		var r []string
		for _, v := range vals {
			if v == nil {
				r = append(r, "<NULL>")
			} else {
				r = append(r, string(v))
			}
		}
		out = append(out, strings.Join(r, "|"))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return cols, out
}
