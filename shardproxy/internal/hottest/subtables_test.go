package hottest

import (
	"context"
	"database/sql"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/strata-db/strata/shardproxy/config"
)

// TestSubTablesDDLAndShow: through the proxy, DDL on a sub-tabled table
// reaches every sub-table of every shard (CREATE, ALTER, CREATE INDEX,
// TRUNCATE, DROP); SHOW TABLES and SHOW CREATE TABLE show the logical
// table; EXPLAIN shows the physical ones; the month table's months exist.
func TestSubTablesDDLAndShow(t *testing.T) {
	topo := sharedTopo(t)
	ctx := context.Background()
	for _, sh := range topo.Shards() {
		if err := sh.Primary().Exec(ctx, "CREATE DATABASE IF NOT EXISTS ddl"); err != nil {
			t.Fatal(err)
		}
	}
	cfg := config.DefaultConfig()
	cfg.Databases = map[string]*config.Database{
		"ddl": {Sharded: true, Tables: map[string]*config.Table{
			"orders": {Kind: "sharded", Column: "customer_id", SubTables: 4},
			"visits": {Kind: "sharded", Column: "user_id", SubTableBy: "month", SubTableColumn: "day", SubTableFrom: "2026-10"},
		}},
	}
	useTopo(cfg, topo)
	p := launch(t, cfg)
	c := mysql.NewConfig()
	c.User, c.Net, c.Addr, c.DBName = "root", "tcp", p.srv.Addr(), "ddl"
	db, err := sql.Open("mysql", c.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	exec := func(q string) {
		t.Helper()
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	// physical lists the tables of ddl on every shard.
	physical := func() map[string]int {
		out := map[string]int{}
		for _, sh := range topo.Shards() {
			sdb, err := sh.Primary().Open("ddl")
			if err != nil {
				t.Fatal(err)
			}
			rows, err := sdb.Query("SHOW TABLES")
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var n string
				rows.Scan(&n)
				out[n]++
			}
			rows.Close()
			sdb.Close()
		}
		return out
	}
	exec("DROP TABLE IF EXISTS orders")
	exec("DROP TABLE IF EXISTS visits")
	exec("CREATE TABLE orders (id BIGINT NOT NULL, customer_id BIGINT NOT NULL, total INT, PRIMARY KEY (customer_id, id))")
	exec("CREATE TABLE visits (id BIGINT PRIMARY KEY, user_id BIGINT NOT NULL, day DATE NOT NULL)")
	ph := physical()
	for _, n := range []string{"orders", "orders_0000", "orders_0001", "orders_0002", "orders_0003", "visits", "visits_202610", "visits_202611", "visits_202612", "visits_202701"} {
		if ph[n] != 2 {
			t.Errorf("table %s on %d of 2 shards (%v)", n, ph[n], ph)
		}
	}
	var names []string
	rows, err := db.Query("SHOW TABLES")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n string
		rows.Scan(&n)
		names = append(names, n)
	}
	rows.Close()
	if strings.Join(names, ",") != "orders,visits" {
		t.Errorf("SHOW TABLES: %v, want orders, visits", names)
	}
	var tn, ddl string
	if err := db.QueryRow("SHOW CREATE TABLE orders").Scan(&tn, &ddl); err != nil || tn != "orders" || !strings.Contains(ddl, "CREATE TABLE `orders`") {
		t.Errorf("SHOW CREATE TABLE orders: %s %s %v", tn, ddl, err)
	}
	exec("ALTER TABLE orders ADD COLUMN note VARCHAR(20)")
	exec("CREATE INDEX by_total ON orders (total)")
	exec("INSERT INTO orders (id, customer_id, total, note) VALUES (1, 1, 5, 'a'), (2, 2, 6, 'b'), (3, 3, 7, 'c'), (4, 4, 8, 'd'), (5, 5, 9, 'e')")
	exec("INSERT INTO visits (id, user_id, day) VALUES (1, 1, '2026-10-05'), (2, 2, '2026-12-31')")
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM orders WHERE note IS NOT NULL AND total > 0").Scan(&n); err != nil || n != 5 {
		t.Errorf("count after ALTER: %d %v", n, err)
	}
	if _, err := db.Exec("INSERT INTO visits (id, user_id, day) VALUES (3, 3, '2025-01-01')"); err == nil || !strings.Contains(err.Error(), "1526") {
		t.Errorf("a month before the first: %v, want error 1526", err)
	}
	var explain []string
	rows, err = db.Query("EXPLAIN SELECT * FROM orders WHERE total > 5 ORDER BY total")
	if err != nil {
		t.Fatal(err)
	}
	cols, _ := rows.Columns()
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		rows.Scan(ptrs...)
		for _, v := range vals {
			explain = append(explain, v.String)
		}
	}
	rows.Close()
	if e := strings.Join(explain, " "); !strings.Contains(e, "orders_NNNN") || !strings.Contains(e, "orders_0000..orders_0003") {
		t.Errorf("EXPLAIN does not show the sub-tables: %s", e)
	}
	exec("TRUNCATE TABLE orders")
	if err := db.QueryRow("SELECT COUNT(*) FROM orders").Scan(&n); err != nil || n != 0 {
		t.Errorf("count after TRUNCATE: %d %v", n, err)
	}
	exec("DROP TABLE orders")
	exec("DROP TABLE visits")
	if ph := physical(); len(ph) != 0 {
		t.Errorf("tables left after DROP: %v", ph)
	}
}
