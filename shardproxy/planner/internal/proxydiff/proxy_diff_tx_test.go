package proxydiff_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/strata-db/strata/localdb"
	"github.com/strata-db/strata/shardproxy/planner/internal/difftest"
	"github.com/strata-db/strata/shardproxy/proxytest"
	"github.com/strata-db/strata/txcoord"
)

// TestProxyDifferentialInTransaction runs the corpus inside one
// transaction through the proxy (transaction_mode twopc, a coordinator)
// and inside one on a single server: reads that span shards, then writes
// that span shards (an UPDATE without the shard key, a multi-row INSERT
// over both shards, a DELETE), the corpus again (the transaction reads its
// own writes on every shard), ROLLBACK, and the same writes committed.
// Every answer must be the single server's.
func TestProxyDifferentialInTransaction(t *testing.T) {
	topo := localdb.StartForTest(t, localdb.TestConfig(3, 0))
	shards := topo.Shards()
	ctx := context.Background()
	for _, sh := range shards {
		if err := sh.Primary().Exec(ctx, "CREATE DATABASE IF NOT EXISTS demo", "CREATE DATABASE IF NOT EXISTS test"); err != nil {
			t.Fatal(err)
		}
	}
	g := txcoord.NewXATestGroup(t, 1)
	addr := startTxProxy(t, shards[0], shards[1], g.GRPCAddrs())
	open := func(dsn string) *sql.DB {
		db, err := sql.Open("mysql", dsn)
		if err != nil {
			t.Fatal(err)
		}
		db.SetMaxOpenConns(1)
		t.Cleanup(func() { db.Close() })
		return db
	}
	pc := mysql.NewConfig()
	pc.User, pc.Net, pc.Addr, pc.DBName, pc.InterpolateParams = "root", "tcp", addr, "demo", true
	sc, err := mysql.ParseDSN(shards[2].Primary().DSN("demo"))
	if err != nil {
		t.Fatal(err)
	}
	sc.InterpolateParams = true
	proxy, one := open(pc.FormatDSN()), open(sc.FormatDSN())
	for _, s := range append(difftest.Schema(), difftest.Data()...) {
		if _, err := proxy.Exec(s); err != nil {
			t.Fatalf("through the proxy: %.120s: %v", s, err)
		}
		if _, err := one.Exec(s); err != nil {
			t.Fatalf("on the single server: %.120s: %v", s, err)
		}
	}
	diff := difftest.DiffIgnoringNames
	corpus := func(t *testing.T, ptx, otx *sql.Tx) {
		failed := 0
		for _, c := range difftest.Corpus() {
			wrows, err := otx.Query(c.Q, c.Args...)
			if err != nil {
				continue // the single server refuses it too
			}
			want, err := difftest.FromRows(wrows)
			if err != nil {
				continue
			}
			grows, err := ptx.Query(c.Q, c.Args...)
			if err != nil {
				t.Errorf("%s %v: through the proxy in a transaction: %v", c.Q, c.Args, err)
				failed++
				continue
			}
			got, err := difftest.FromRows(grows)
			if err != nil {
				t.Errorf("%s: %v", c.Q, err)
				failed++
				continue
			}
			if d := diff(c.Q, want, got); d != "" {
				t.Errorf("%s %v:\n%s", c.Q, c.Args, d)
				failed++
			}
		}
		t.Logf("%d queries in a transaction, %d differ", len(difftest.Corpus()), failed)
	}
	writes := []string{
		"UPDATE users SET score = score + 7 WHERE active = 1",
		"INSERT INTO users (id, name, score, active) VALUES (9001, 'x1', 1, 1), (9002, 'x2', 2, 1), (9003, 'x3', 3, 0), (9004, 'x4', 4, 1)",
		"DELETE FROM orders WHERE qty > 3",
		"UPDATE events SET amount = amount * 2",
	}
	run := func(t *testing.T, commit bool) {
		ptx, err := proxy.Begin()
		if err != nil {
			t.Fatal(err)
		}
		otx, err := one.Begin()
		if err != nil {
			t.Fatal(err)
		}
		corpus(t, ptx, otx)
		for _, w := range writes {
			pr, perr := ptx.Exec(w)
			or, oerr := otx.Exec(w)
			if perr != nil || oerr != nil {
				t.Errorf("%s: proxy %v, single server %v", w, perr, oerr)
				ptx.Rollback()
				otx.Rollback()
				return
			}
			pn, _ := pr.RowsAffected()
			on, _ := or.RowsAffected()
			if pn != on {
				t.Errorf("%s: %d rows affected through the proxy, %d on the single server", w, pn, on)
			}
		}
		corpus(t, ptx, otx)
		if commit {
			if err := ptx.Commit(); err != nil {
				t.Errorf("commit through the proxy: %v", err)
				otx.Rollback()
				return
			}
			otx.Commit()
		} else {
			if err := ptx.Rollback(); err != nil {
				t.Errorf("rollback through the proxy: %v", err)
			}
			otx.Rollback()
		}
		// Outside a transaction now: the same answers.
		ptx2, _ := proxy.Begin()
		otx2, _ := one.Begin()
		corpus(t, ptx2, otx2)
		ptx2.Rollback()
		otx2.Rollback()
	}
	t.Run("rollback", func(t *testing.T) { run(t, false) })
	t.Run("commit", func(t *testing.T) { run(t, true) })
}

// startTxProxy starts the proxy of TestProxyDifferential with the
// coordinator at coord.
func startTxProxy(t *testing.T, s0, s1 *localdb.Shard, coord []string) string {
	t.Helper()
	cfg := diffConfig(difftest.Tables(), s0, s1)
	cfg.Transactions.Coordinator = coord
	return proxytest.StartConfig(t, cfg).Server.Addr()
}
