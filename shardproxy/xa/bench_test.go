package xa_test

import (
	"database/sql"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/strata-db/strata/localdb"
	"github.com/strata-db/strata/shardproxy/config"
)

// BenchmarkTransfer moves money through the proxy over two shards, the
// transfer log sharded by source account so that a transfer touches one
// shard when both accounts are on it and two otherwise:
//
//   - cross: accounts on different shards (two-phase commit);
//   - single/twopc: both on one shard, transaction_mode twopc (XA START,
//     XA COMMIT ONE PHASE);
//   - single/plain: both on one shard, transaction_mode single (BEGIN,
//     COMMIT): the proxy before cross-shard transactions.
//
// go test -run XXX -bench Transfer -benchtime 10s ./shardproxy/xa
// reports transfers/s and, for cross, the decision's share of the commit.
func BenchmarkTransfer(b *testing.B) {
	topo := localdb.StartForTest(b, localdb.TestConfig(2, 0))
	g := coordGroup(b, 3)
	cfg := bankConfig(topo, g.GRPCAddrs(), "127.0.0.1:0")
	tables := map[string]*config.Table{
		"accounts":  {Kind: "sharded", Column: "id"},
		"transfers": {Kind: "sharded", Column: "src"},
	}
	cfg.Databases = map[string]*config.Database{
		"bank":   {Sharded: true, Tables: tables},
		"single": {Sharded: true, Tables: tables, TransactionMode: config.TxSingle},
	}
	p := startProxy(b, cfg, nil)
	const n = 2000
	ids := map[string][]int{}
	for _, dbName := range []string{"bank", "single"} {
		db := p.open(b, dbName)
		mustExec(b, db, "CREATE TABLE accounts (id BIGINT PRIMARY KEY, balance BIGINT NOT NULL)")
		mustExec(b, db, "CREATE TABLE transfers (id BIGINT NOT NULL, src BIGINT NOT NULL, dst BIGINT NOT NULL, amount BIGINT NOT NULL, PRIMARY KEY (src, id))")
		var vals []string
		for i := 1; i <= n; i++ {
			vals = append(vals, fmt.Sprintf("(%d, 1000000)", i))
		}
		mustExec(b, db, "INSERT INTO accounts (id, balance) VALUES "+strings.Join(vals, ","))
	}
	for _, sh := range topo.Shards() {
		d, _ := sh.Primary().Open("bank")
		rows, err := d.Query("SELECT id FROM accounts")
		if err != nil {
			b.Fatal(err)
		}
		for rows.Next() {
			var id int
			rows.Scan(&id)
			ids[sh.Name] = append(ids[sh.Name], id)
		}
		rows.Close()
		d.Close()
	}
	var seq atomic.Int64
	run := func(b *testing.B, dbName string, cross bool) {
		db := p.open(b, dbName)
		db.SetMaxIdleConns(64)
		b.SetParallelism(8) // 16 sessions on 2 CPUs
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			r := rand.New(rand.NewPCG(uint64(seq.Add(1)), 1))
			for pb.Next() {
				from, to := ids["s0"], ids["s1"]
				if r.IntN(2) == 0 {
					from, to = to, from
				}
				if !cross {
					to = from
				}
				a, c := from[r.IntN(len(from))], to[r.IntN(len(to))]
				for a == c {
					c = to[r.IntN(len(to))]
				}
				for try := 0; ; try++ {
					err := benchTransfer(db, seq.Add(1), a, c)
					if err == nil {
						break
					}
					if n := sqlErrNum(err); (n != 1213 && n != 1205) || try > 20 {
						b.Error(err)
						return
					}
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "transfers/s")
	}
	b.Run("cross", func(b *testing.B) {
		d0, c0 := p.metric("strata_xa_decision_seconds_sum"), p.metric("strata_xa_commit_seconds_sum")
		run(b, "bank", true)
		d1, c1 := p.metric("strata_xa_decision_seconds_sum"), p.metric("strata_xa_commit_seconds_sum")
		if c1 > c0 {
			b.ReportMetric(100*(d1-d0)/(c1-c0), "decision%")
		}
	})
	b.Run("single/twopc", func(b *testing.B) { run(b, "bank", false) })
	b.Run("single/plain", func(b *testing.B) { run(b, "single", false) })
}

func benchTransfer(db *sql.DB, id int64, a, c int) error {
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	if _, err := tx.Exec("UPDATE accounts SET balance = balance - 1 WHERE id = ? AND balance >= 1", a); err != nil {
		tx.Rollback()
		return err
	}
	if _, err := tx.Exec("UPDATE accounts SET balance = balance + 1 WHERE id = ?", c); err != nil {
		tx.Rollback()
		return err
	}
	if _, err := tx.Exec("INSERT INTO transfers (id, src, dst, amount) VALUES (?, ?, ?, 1)", id, a, c); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}
