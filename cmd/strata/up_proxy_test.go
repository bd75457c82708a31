package main

import (
	"database/sql"
	"regexp"
	"strings"
	"testing"
)

var proxyLine = regexp.MustCompile(`Shard proxy on (127\.0\.0\.1:\d+) .*\n\s+mariadb -h127\.0\.0\.1 -P(\d+) -uroot\n`)

// TestUpProxy runs `strata up` and uses its proxy as a client would: the
// demo tables exist and rows spread over both shards, an INSERT without the
// shard key gets keys from `strata up`'s ID service, and the unsharded test
// database takes any table.
func TestUpProxy(t *testing.T) {
	data := t.TempDir()
	out, stop := startUp(t, "--data", data, "--mariadb-port", "0", "--innodb-buffer-pool", "32M", "--replicas", "0")
	m := proxyLine.FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no proxy banner in:\n%s", out)
	}
	checkUpTLS(t, out.String(), data, m[1])
	demo, err := sql.Open("mysql", "root@tcp("+m[1]+")/demo")
	if err != nil {
		t.Fatal(err)
	}
	defer demo.Close()
	if !strings.Contains(out.String(), "keys     left out of an INSERT come from the ID service at ") {
		t.Errorf("the banner does not say where generated keys come from:\n%s", out)
	}
	res, err := demo.Exec("INSERT INTO customers (name, country) VALUES ('gen-a', 'JP'), ('gen-b', 'JP'), ('gen-c', 'JP')")
	if err != nil {
		t.Fatalf("INSERT without the shard key through strata up: %v", err)
	}
	first, err := res.LastInsertId()
	if err != nil || first < 1 {
		t.Fatalf("LastInsertId %d, %v", first, err)
	}
	var name string
	if err := demo.QueryRow("SELECT name FROM customers WHERE id = ?", first).Scan(&name); err != nil || name != "gen-a" {
		t.Fatalf("row of the first generated key %d: %q, %v", first, name, err)
	}
	var gen, distinct int
	if err := demo.QueryRow("SELECT COUNT(*), COUNT(DISTINCT id) FROM customers WHERE country = 'JP' AND id >= ?", first).Scan(&gen, &distinct); err != nil || gen != 3 || distinct != 3 {
		t.Fatalf("generated rows: %d with %d distinct keys, %v; want 3", gen, distinct, err)
	}
	// Explicit keys well above the generated ones (the ID service does not
	// know keys given by clients).
	for i := 1001; i <= 1010; i++ {
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
