package shardproxy_test

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-db/strata/shardproxy/config"
	"github.com/strata-db/strata/shardproxy/proxytest"
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
	p := proxytest.Start(t, proxytest.SharedTopology(t), withTables(map[string]*config.Table{"pc": {Kind: "sharded", Column: "id"}}))
	const sessions, rounds = 12, 20
	db := p.Open(t, p.Demo, "interpolateParams=false", "readTimeout=30s", "writeTimeout=30s")
	db.SetMaxOpenConns(sessions)
	db.SetMaxIdleConns(sessions)
	proxytest.MustExec(t, db, "DROP TABLE IF EXISTS pc")
	proxytest.MustExec(t, db, "CREATE TABLE pc (id BIGINT PRIMARY KEY, name VARCHAR(20))")
	proxytest.MustExec(t, db, "INSERT INTO pc (id, name) VALUES (1, 'one'), (2, 'two'), (3, 'three')")
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
	topo := proxytest.SharedTopology(t)
	p := proxytest.Start(t, topo, nil)
	direct, err := topo.Shards()[0].Primary().Open(p.Test)
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	proxy := p.Open(t, p.Demo, "interpolateParams=false")
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

// TestPreparedUnsigned: an unsigned parameter (go-sql-driver sends a uint64
// with the protocol's unsigned flag) reaches the plan and the shards as the
// client's number, on the fast lane and on the ordinary path: a BIGINT
// UNSIGNED maximum is stored and found again, and BETWEEN 1 AND
// 18446744073709551615 counts what one MariaDB holding the same rows counts,
// on a hash-sharded and on a range-sharded table.
func TestPreparedUnsigned(t *testing.T) {
	topo := proxytest.SharedTopology(t)
	s0, s1 := topo.Shards()[0].Name, topo.Shards()[1].Name
	upper := int64(100)
	p := proxytest.Start(t, topo, withTables(map[string]*config.Table{
		"uh": {Kind: "sharded", Column: "id"},
		"ur": {Kind: "sharded", Column: "id", Function: "range", Ranges: []config.Range{{Shard: s0, Upper: &upper}, {Shard: s1}}},
	}))
	direct, err := topo.Shards()[0].Primary().Open(p.Test)
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	proxy := p.Open(t, p.Demo, "interpolateParams=false")
	proxy.SetMaxOpenConns(1)
	const maxU = uint64(math.MaxUint64)
	ids := []uint64{maxU, 1<<63 + 7}
	for id := uint64(1); id <= 30; id++ {
		ids = append(ids, id)
	}
	for _, x := range []struct {
		db    *sql.DB
		table string
	}{{proxy, "uh"}, {proxy, "ur"}, {direct, "direct_uh"}, {direct, "direct_ur"}} {
		typ := "BIGINT UNSIGNED"
		if strings.HasSuffix(x.table, "ur") {
			typ = "BIGINT"
		}
		proxytest.MustExec(t, x.db, "DROP TABLE IF EXISTS "+x.table)
		proxytest.MustExec(t, x.db, "CREATE TABLE "+x.table+" (id "+typ+" PRIMARY KEY, v INT)")
		if typ == "BIGINT" {
			for id := 1; id <= 200; id++ {
				proxytest.MustExec(t, x.db, "INSERT INTO "+x.table+" (id, v) VALUES (?, ?)", uint64(id), id)
			}
			continue
		}
		for _, id := range ids {
			proxytest.MustExec(t, x.db, "INSERT INTO "+x.table+" (id, v) VALUES (?, ?)", id, 1)
		}
	}
	var got uint64
	if err := proxy.QueryRow("SELECT id FROM uh WHERE id = ?", maxU).Scan(&got); err != nil || got != maxU {
		t.Fatalf("SELECT id = %d: %d %v", maxU, got, err)
	}
	stored := 0
	for _, sh := range topo.Shards() {
		sdb, err := sh.Primary().Open(p.Demo)
		if err != nil {
			t.Fatal(err)
		}
		var n int
		err = sdb.QueryRow("SELECT COUNT(*) FROM uh WHERE id IN (18446744073709551615, 9223372036854775815)").Scan(&n)
		sdb.Close()
		if err != nil {
			t.Fatal(err)
		}
		stored += n
	}
	if stored != 2 {
		t.Errorf("the shards hold %d of the 2 large keys", stored)
	}
	cases := []struct {
		q    string
		args []any
	}{
		{"SELECT count(*) FROM %s WHERE id BETWEEN ? AND ?", []any{1, maxU}},
		{"SELECT count(*), max(id) FROM %s WHERE id BETWEEN ? AND ?", []any{uint64(5), uint64(50)}},
		{"SELECT count(*) FROM %s WHERE id > ? AND id <= ?", []any{int8(-1), maxU}},
		{"SELECT id, v FROM %s WHERE id = ?", []any{maxU}},
		{"SELECT id, v FROM %s WHERE id IN (?, ?)", []any{uint16(7), maxU}},
		{"SELECT id FROM %s WHERE id BETWEEN ? AND ?", []any{1, maxU}},
		{"SELECT id, v FROM %s WHERE id BETWEEN ? AND ?", []any{uint64(5), uint64(50)}},
		{"SELECT count(*) FROM %s WHERE id BETWEEN ? AND ?", []any{uint8(1), uint32(150)}},
	}
	for _, table := range []string{"uh", "ur"} {
		for _, c := range cases {
			// As multisets: without ORDER BY, shards answer in any order.
			want := queryRows(t, direct, fmt.Sprintf(c.q, "direct_"+table), c.args...)
			slices.Sort(want)
			for round := 0; round < 3; round++ { // learned, then the fast lane where it applies
				got := queryRows(t, proxy, fmt.Sprintf(c.q, table), c.args...)
				if slices.Sort(got); !reflect.DeepEqual(got, want) {
					t.Errorf("%s %v (round %d): %v\nMariaDB: %v", fmt.Sprintf(c.q, table), c.args, round, got, want)
				}
			}
		}
	}
}
