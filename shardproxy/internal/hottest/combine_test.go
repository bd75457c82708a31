package hottest

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/strata-db/strata/shardproxy/config"
)

// TestCombineWritesThroughProxy: 64 sessions increment one row, through
// the proxy, of a table that combines writes (hot) and of one that does
// not (cold), for the same time each; every row ends with the sum of the
// increments whose OK its clients received. Then 30 sessions take one
// each of 10 in stock under CHECK (n >= 0): exactly 20 get the error.
// The rates are logged, not asserted: the machine is shared. To measure on
// a quiet one: go test -run TestCombineWritesThroughProxy -v ./shardproxy/internal/hottest/
func TestCombineWritesThroughProxy(t *testing.T) {
	topo := sharedTopo(t)
	ctx := context.Background()
	for _, sh := range topo.Shards() {
		if err := sh.Primary().Exec(ctx, "CREATE DATABASE IF NOT EXISTS shop"); err != nil {
			t.Fatal(err)
		}
	}
	cfg := config.DefaultConfig()
	cfg.Databases = map[string]*config.Database{
		"shop": {Sharded: true, Tables: map[string]*config.Table{
			"hot":  {Kind: "sharded", Column: "id", CombineWrites: true},
			"cold": {Kind: "sharded", Column: "id"},
		}},
	}
	useTopo(cfg, topo)
	p := launch(t, cfg)
	c := mysql.NewConfig()
	c.User, c.Net, c.Addr, c.DBName = "root", "tcp", p.srv.Addr(), "shop"
	// Parameters interpolated by the client, as most ORMs and JDBC send
	// them: one COM_QUERY per statement.
	c.InterpolateParams = true
	db, err := sql.Open("mysql", c.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const sessions = 64
	db.SetMaxOpenConns(sessions)
	db.SetMaxIdleConns(sessions)
	for _, q := range []string{
		"DROP TABLE IF EXISTS hot",
		"DROP TABLE IF EXISTS cold",
		"CREATE TABLE hot (id BIGINT PRIMARY KEY, n BIGINT NOT NULL, m BIGINT NOT NULL DEFAULT 0, CHECK (n >= 0))",
		"CREATE TABLE cold (id BIGINT PRIMARY KEY, n BIGINT NOT NULL, m BIGINT NOT NULL DEFAULT 0, CHECK (n >= 0))",
		"INSERT INTO hot (id, n) VALUES (1, 0), (2, 10)",
		"INSERT INTO cold (id, n) VALUES (1, 0)",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	rate := func(table string) (float64, int64) {
		var acked, sum atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for s := 0; s < sessions; s++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := int64(1); time.Since(start) < 2*time.Second; i++ {
					d := 1 + i%3
					r, err := db.Exec("UPDATE "+table+" SET n = n + ?, m = m - ? WHERE id = ?", d, 1, 1)
					if err != nil {
						t.Errorf("%s: %v", table, err)
						return
					}
					if n, _ := r.RowsAffected(); n != 1 {
						t.Errorf("%s: %d rows affected", table, n)
						return
					}
					acked.Add(1)
					sum.Add(d)
				}
			}()
		}
		wg.Wait()
		var n, m int64
		if err := db.QueryRow("SELECT n, m FROM "+table+" WHERE id = 1").Scan(&n, &m); err != nil {
			t.Fatal(err)
		}
		if n != sum.Load() || -m != acked.Load() {
			t.Errorf("%s: n = %d, m = %d; the acknowledged increments sum to %d in %d statements", table, n, m, sum.Load(), acked.Load())
		}
		return float64(acked.Load()) / time.Since(start).Seconds(), acked.Load()
	}
	plain, _ := rate("cold")
	combined, _ := rate("hot")
	rounds := metricValue(t, p, "strata_proxy_hot_row_rounds_total")
	t.Logf("%d sessions incrementing one row: %.0f/s plain, %.0f/s combined (%.1fx); %0.f rounds, %0.f fallbacks (shared machine: re-run on a quiet one)", sessions, plain, combined, combined/plain, rounds, metricValue(t, p, "strata_proxy_hot_row_fallbacks_total"))

	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	for s := 0; s < 30; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := db.Exec("UPDATE hot SET n = n - 1 WHERE id = 2")
			var me *mysql.MySQLError
			switch {
			case err == nil:
				ok.Add(1)
			case errors.As(err, &me) && me.Number == 4025:
				failed.Add(1)
			default:
				t.Errorf("take one: %v", err)
			}
		}()
	}
	wg.Wait()
	var left int64
	if err := db.QueryRow("SELECT n FROM hot WHERE id = 2").Scan(&left); err != nil {
		t.Fatal(err)
	}
	if ok.Load() != 10 || failed.Load() != 20 || left != 0 {
		t.Errorf("%d took one, %d failed the CHECK, %d left; want 10, 20, 0", ok.Load(), failed.Load(), left)
	}
}
