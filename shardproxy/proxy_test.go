package shardproxy_test

import (
	"testing"

	"github.com/strata-db/strata/shardproxy/proxytest"
)

func TestSmoke(t *testing.T) {
	topo := proxytest.SharedTopology(t)
	p := proxytest.Start(t, topo, nil)
	db := p.Open(t, p.Test)
	// The topology is shared by the package's tests (and by -count runs).
	proxytest.MustExec(t, db, "DROP TABLE IF EXISTS kv")
	proxytest.MustExec(t, db, "CREATE TABLE kv (id INT PRIMARY KEY, v VARCHAR(20))")
	proxytest.MustExec(t, db, "INSERT INTO kv VALUES (1, 'a'), (2, 'b')")
	var v string
	if err := db.QueryRow("SELECT v FROM kv WHERE id = ?", 2).Scan(&v); err != nil || v != "b" {
		t.Fatalf("got %q, %v", v, err)
	}
	var ver, dbname string
	if err := db.QueryRow("SELECT @@version, DATABASE()").Scan(&ver, &dbname); err != nil {
		t.Fatal(err)
	}
	t.Logf("version %s db %s", ver, dbname)
	demo := p.Open(t, p.Demo)
	proxytest.MustExec(t, demo, "DROP TABLE IF EXISTS customers")
	proxytest.MustExec(t, demo, "CREATE TABLE customers (id BIGINT PRIMARY KEY, name VARCHAR(40))")
	for i := 1; i <= 20; i++ {
		proxytest.MustExec(t, demo, "INSERT INTO customers (id, name) VALUES (?, ?)", i, "c")
	}
	var n int
	if err := demo.QueryRow("SELECT COUNT(*) FROM customers").Scan(&n); err != nil || n != 20 {
		t.Fatalf("count %d %v", n, err)
	}
	for _, sh := range topo.Shards() {
		sdb, _ := sh.Primary().Open(p.Demo)
		var k int
		sdb.QueryRow("SELECT COUNT(*) FROM customers").Scan(&k)
		sdb.Close()
		t.Logf("%s holds %d", sh.Name, k)
		if k == 0 || k == 20 {
			t.Errorf("%s holds %d of 20 rows: not sharded", sh.Name, k)
		}
	}
	rows, err := demo.Query("EXPLAIN SELECT name FROM customers WHERE id = 5")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int
		var op, shards, q, d string
		rows.Scan(&id, &op, &shards, &q, &d)
		t.Logf("explain: %d %s %s %s %s", id, op, shards, q, d)
	}
	rows.Close()
}
