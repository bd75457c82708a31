package xa_test

import (
	"bytes"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

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
	run := func(b *testing.B, sessions int, dbName string, cross bool) {
		db := p.open(b, dbName)
		db.SetMaxIdleConns(sessions)
		procs := runtime.GOMAXPROCS(0)
		b.SetParallelism((sessions + procs - 1) / procs)
		sessions = procs * ((sessions + procs - 1) / procs)
		self0, db0 := cpuSeconds(topo)
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
		b.ReportMetric(float64(sessions)*b.Elapsed().Seconds()*1000/float64(b.N), "ms/transfer")
		self1, db1 := cpuSeconds(topo)
		b.ReportMetric((self1-self0)*1e6/float64(b.N), "proxy-cpu-us/transfer")
		b.ReportMetric((db1-db0)*1e6/float64(b.N), "mariadb-cpu-us/transfer")
	}
	for _, sessions := range []int{16, 64} {
		b.Run(fmt.Sprintf("sessions=%d/cross", sessions), func(b *testing.B) {
			d0, c0, n0 := p.metric("strata_xa_decision_seconds_sum"), p.metric("strata_xa_commit_seconds_sum"), p.metric("strata_xa_commit_seconds_count")
			run(b, sessions, "bank", true)
			d1, c1, n1 := p.metric("strata_xa_decision_seconds_sum"), p.metric("strata_xa_commit_seconds_sum"), p.metric("strata_xa_commit_seconds_count")
			if c1 > c0 {
				b.ReportMetric(100*(d1-d0)/(c1-c0), "decision%")
				b.ReportMetric(1000*(d1-d0)/(n1-n0), "decision-ms")
				b.ReportMetric(1000*(c1-c0)/(n1-n0), "commit-ms")
			}
		})
		b.Run(fmt.Sprintf("sessions=%d/single/twopc", sessions), func(b *testing.B) { run(b, sessions, "bank", false) })
		b.Run(fmt.Sprintf("sessions=%d/single/plain", sessions), func(b *testing.B) { run(b, sessions, "single", false) })
	}
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

// cpuSeconds is the CPU time used so far by this process (the proxy, the
// coordinator group and the clients) and by the topology's MariaDB
// servers: CPU per transfer is less distorted by other load on the
// machine than wall time, and on two cores it bounds throughput.
func cpuSeconds(topo *localdb.Topology) (self, servers float64) {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	total := 0.0
	for _, s := range topo.Servers() {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.Pid()))
		if err != nil {
			continue
		}
		// Fields after the command's closing parenthesis; utime and stime
		// are the 12th and 13th of them, in clock ticks (100 per second).
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) > 13 {
			u, _ := strconv.ParseFloat(f[11], 64)
			st, _ := strconv.ParseFloat(f[12], 64)
			total += (u + st) / 100
		}
	}
	return self, total
}
