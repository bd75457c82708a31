package main

import (
	"database/sql"
	"regexp"
	"testing"
)

var proxyLine = regexp.MustCompile(`Shard proxy on (127\.0\.0\.1:\d+) .*\n\s+mariadb -h127\.0\.0\.1 -P(\d+) -uroot\n`)

// TestUpProxy runs `strata up` and uses its proxy as a client would: the
// demo tables exist and rows spread over both shards, and the unsharded
// test database takes any table.
func TestUpProxy(t *testing.T) {
	out, stop := startUp(t, "--data", t.TempDir(), "--mariadb-port", "0", "--innodb-buffer-pool", "32M", "--replicas", "0")
	m := proxyLine.FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no proxy banner in:\n%s", out)
	}
	demo, err := sql.Open("mysql", "root@tcp("+m[1]+")/demo")
	if err != nil {
		t.Fatal(err)
	}
	defer demo.Close()
	for i := 1; i <= 10; i++ {
		if _, err := demo.Exec("INSERT INTO customers (id, name, country) VALUES (?, ?, 'DE')", i, "c"); err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := demo.QueryRow("SELECT COUNT(*) FROM customers c JOIN countries k ON k.code = c.country WHERE k.name = 'Germany'").Scan(&n); err != nil || n != 10 {
		t.Fatalf("join count %d, %v", n, err)
	}
	test, err := sql.Open("mysql", "root@tcp("+m[1]+")/test")
	if err != nil {
		t.Fatal(err)
	}
	defer test.Close()
	for _, q := range []string{"CREATE TABLE anything (a INT)", "INSERT INTO anything VALUES (1)"} {
		if _, err := test.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
