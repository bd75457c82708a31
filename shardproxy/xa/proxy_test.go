package xa_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-db/strata/localdb"
	"github.com/strata-db/strata/shardproxy"
	"github.com/strata-db/strata/shardproxy/config"
	"github.com/strata-db/strata/txcoord"
)

// coordGroup starts an n-node coordinator group.
func coordGroup(t testing.TB, n int) *txcoord.TestGroup {
	t.Helper()
	return txcoord.NewTestGroup(t, n, func(int) []txcoord.Module {
		x, err := txcoord.NewXA(txcoord.DefaultXAConfig())
		if err != nil {
			panic(err)
		}
		return []txcoord.Module{x}
	})
}

// bankConfig is a proxy config over topo with database bank (accounts and
// transfers sharded by id), a second database single in transaction_mode
// single, and the coordinator at coord.
func bankConfig(topo *localdb.Topology, coord []string, listen string) *config.Config {
	c := config.DefaultConfig()
	c.Listen, c.AdminListen = listen, "off"
	c.Backend.User = localdb.AppUser
	c.Backend.HealthCheckInterval = 200 * time.Millisecond
	for _, sh := range topo.Shards() {
		s := config.Shard{Name: sh.Name, Primary: sh.Primary().Addr()}
		for _, r := range sh.Replicas() {
			s.Replicas = append(s.Replicas, r.Addr())
		}
		c.Shards = append(c.Shards, s)
	}
	tables := map[string]*config.Table{
		"accounts":  {Kind: "sharded", Column: "id"},
		"transfers": {Kind: "sharded", Column: "id"},
	}
	c.Databases = map[string]*config.Database{
		"bank":   {Sharded: true, Tables: tables},
		"single": {Sharded: true, Tables: tables, TransactionMode: config.TxSingle},
	}
	c.Transactions.Coordinator = coord
	c.Transactions.ResolveInterval = 500 * time.Millisecond
	c.Transactions.AbandonAfter = 3 * time.Second
	c.Transactions.DecisionTimeout = 5 * time.Second
	return c
}

type proxy struct {
	srv  *shardproxy.Server
	reg  *prometheus.Registry
	stop func()
}

func startProxy(t testing.TB, cfg *config.Config, fp func(string, uint64) error) *proxy {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = localdb.TestLogger(t)
	}
	srv, err := shardproxy.New(ctx, shardproxy.Options{Config: cfg, Registry: reg, Logger: log, XAFailpoint: fp})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ctx) }()
	var once sync.Once
	p := &proxy{srv: srv, reg: reg, stop: func() { once.Do(func() { cancel(); <-done }) }}
	t.Cleanup(p.stop)
	return p
}

func (p *proxy) open(t testing.TB, db string) *sql.DB {
	t.Helper()
	mc := mysql.NewConfig()
	mc.User, mc.Net, mc.Addr, mc.DBName = "root", "tcp", p.srv.Addr(), db
	mc.Timeout, mc.ReadTimeout, mc.WriteTimeout = 5*time.Second, 30*time.Second, 30*time.Second
	mc.Params = map[string]string{"innodb_lock_wait_timeout": "2"}
	conn, err := mysql.NewConnector(mc)
	if err != nil {
		t.Fatal(err)
	}
	d := sql.OpenDB(conn)
	t.Cleanup(func() { d.Close() })
	return d
}

func (p *proxy) metric(name string) float64 {
	mfs, _ := p.reg.Gather()
	for _, mf := range mfs {
		if base, ok := strings.CutSuffix(name, "_count"); ok && mf.GetName() == base {
			n := 0.0
			for _, m := range mf.GetMetric() {
				n += float64(m.GetHistogram().GetSampleCount())
			}
			return n
		}
		if base, ok := strings.CutSuffix(name, "_sum"); ok && mf.GetName() == base {
			sum := 0.0
			for _, m := range mf.GetMetric() {
				sum += m.GetHistogram().GetSampleSum()
			}
			return sum
		}
		if mf.GetName() == name {
			sum := 0.0
			for _, m := range mf.GetMetric() {
				if c := m.GetCounter(); c != nil {
					sum += c.GetValue()
				} else if g := m.GetGauge(); g != nil {
					sum += g.GetValue()
				}
			}
			return sum
		}
	}
	return 0
}

func mustExec(t testing.TB, db interface {
	Exec(string, ...any) (sql.Result, error)
}, q string, args ...any) sql.Result {
	t.Helper()
	r, err := db.Exec(q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return r
}

func sqlErrNum(err error) uint16 {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}

// createBank creates the tables and n accounts of balance each, and
// returns the account ids on each shard.
func createBank(t testing.TB, p *proxy, topo *localdb.Topology, n, balance int) map[string][]int {
	t.Helper()
	for _, dbName := range []string{"bank", "single"} {
		db := p.open(t, dbName)
		mustExec(t, db, "CREATE TABLE IF NOT EXISTS accounts (id BIGINT PRIMARY KEY, balance BIGINT NOT NULL)")
		mustExec(t, db, "CREATE TABLE IF NOT EXISTS transfers (id BIGINT PRIMARY KEY, src BIGINT NOT NULL, dst BIGINT NOT NULL, amount BIGINT NOT NULL)")
		var vals []string
		for i := 1; i <= n; i++ {
			vals = append(vals, fmt.Sprintf("(%d, %d)", i, balance))
		}
		mustExec(t, db, "INSERT INTO accounts (id, balance) VALUES "+strings.Join(vals, ","))
	}
	out := map[string][]int{}
	for _, sh := range topo.Shards() {
		db, err := sh.Primary().Open("bank")
		if err != nil {
			t.Fatal(err)
		}
		rows, err := db.Query("SELECT id FROM accounts ORDER BY id")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id int
			rows.Scan(&id)
			out[sh.Name] = append(out[sh.Name], id)
		}
		rows.Close()
		db.Close()
	}
	return out
}

func freeAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestProxyCrossShardTransactions: through the proxy, a transaction over
// two shards commits or rolls back whole; reads across shards work in a
// transaction; an autocommit UPDATE over every shard is one distributed
// transaction; transaction_mode single refuses the second shard; a
// client's XA statement gets 1235; SHOW STRATA TRANSACTIONS answers.
func TestProxyCrossShardTransactions(t *testing.T) {
	topo := localdb.StartForTest(t, localdb.TestConfig(2, 0))
	g := coordGroup(t, 1)
	p := startProxy(t, bankConfig(topo, g.GRPCAddrs(), "127.0.0.1:0"), nil)
	ids := createBank(t, p, topo, 20, 100)
	a, b := ids["s0"][0], ids["s1"][0]
	// One session, so that which transaction follows which on it is known;
	// db2 for what runs beside it.
	db, db2 := p.open(t, "bank"), p.open(t, "bank")
	db.SetMaxOpenConns(1)
	ctx := context.Background()

	base := p.metric("strata_xa_commits_total") // the multi-row INSERT was one
	if base != 1 {
		t.Errorf("the INSERT over both shards: strata_xa_commits_total = %v, want 1", base)
	}
	wantSum, logID := 2000, 1000
	transfer := func(commit bool) error {
		logID++
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		mustExec(t, tx, "UPDATE accounts SET balance = balance - 10 WHERE id = ? AND balance >= 10", a)
		mustExec(t, tx, "UPDATE accounts SET balance = balance + 10 WHERE id = ?", b)
		var sum int
		if err := tx.QueryRow("SELECT SUM(balance) FROM accounts").Scan(&sum); err != nil || sum != wantSum {
			t.Fatalf("sum across shards in the transaction: %d %v", sum, err)
		}
		mustExec(t, tx, "INSERT INTO transfers (id, src, dst, amount) VALUES (?, ?, ?, 10)", logID, a, b)
		if commit {
			return tx.Commit()
		}
		return tx.Rollback()
	}
	bal := func(id int) int {
		var v int
		if err := db2.QueryRow("SELECT balance FROM accounts WHERE id = ?", id).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	if err := transfer(false); err != nil {
		t.Fatal(err)
	}
	if bal(a) != 100 || bal(b) != 100 {
		t.Fatalf("after rollback: %d %d", bal(a), bal(b))
	}
	if err := transfer(true); err != nil {
		t.Fatal(err)
	}
	if bal(a) != 90 || bal(b) != 110 {
		t.Fatalf("after commit: %d %d", bal(a), bal(b))
	}
	if got := p.metric("strata_xa_commits_total"); got != base+1 {
		t.Errorf("strata_xa_commits_total = %v, want %v", got, base+1)
	}
	// A single-shard transaction commits in one phase, no decision. The
	// session's last transaction spanned shards, so this one began as an
	// XA branch, as the second transfer did.
	tx, _ := db.Begin()
	mustExec(t, tx, "UPDATE accounts SET balance = balance + 1 WHERE id = ?", a)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := p.metric("strata_xa_early_branches_total"); got != 2 {
		t.Errorf("strata_xa_early_branches_total = %v, want 2 (the second transfer, spanned; this one, one_shard)", got)
	}
	if bal(a) != 91 {
		t.Errorf("after the one-shard XA transaction: %d, want 91", bal(a))
	}
	wantSum++
	// Rolled back, such a transaction leaves nothing.
	if err := transfer(true); err != nil { // upgrade: the session spans again
		t.Fatal(err)
	}
	tx, _ = db.Begin()
	mustExec(t, tx, "UPDATE accounts SET balance = balance + 1 WHERE id = ?", a)
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if bal(a) != 81 || bal(b) != 120 {
		t.Errorf("after a rolled back one-shard XA transaction: %d %d, want 81 120", bal(a), bal(b))
	}
	// Autocommit over every shard: atomic.
	mustExec(t, db, "UPDATE accounts SET balance = balance + 1")
	if got := p.metric("strata_xa_commits_total"); got != base+3 {
		t.Errorf("after a multi-shard UPDATE: strata_xa_commits_total = %v, want %v", got, base+3)
	}
	var total int
	db.QueryRow("SELECT SUM(balance) FROM accounts").Scan(&total)
	if total != 2000+1+20 {
		t.Errorf("total %d", total)
	}

	// A transaction that wrote on its first shard is made distributed when
	// it reaches a second: its first shard's statements run again under XA.
	// If another transaction changed the row meanwhile, it fails with a
	// serialization error (1213) and nothing of it is left. (The session's
	// last transaction stayed on one shard: this one begins plain.)
	mustExec(t, db, "UPDATE accounts SET balance = 100 WHERE id = ?", a)
	tx, _ = db.Begin()
	mustExec(t, tx, "UPDATE accounts SET balance = balance - 10 WHERE id = ? AND balance >= 10", a)
	other := make(chan error, 1)
	go func() {
		_, err := db2.Exec("UPDATE accounts SET balance = 5 WHERE id = ?", a) // waits for tx's lock
		other <- err
	}()
	time.Sleep(500 * time.Millisecond)
	bBefore := bal(b)
	_, err := tx.Exec("UPDATE accounts SET balance = balance + 10 WHERE id = ?", b)
	if sqlErrNum(err) != 1213 {
		t.Errorf("the first shard changed under the transaction: %v, want 1213", err)
	}
	tx.Rollback()
	if err := <-other; err != nil {
		t.Fatal(err)
	}
	if bal(a) != 5 || bal(b) != bBefore {
		t.Errorf("after the failed upgrade: a %d (want 5), b %d (want %d)", bal(a), bal(b), bBefore)
	}
	// Three first shards ran again: the first and third transfers and the
	// one told to retry.
	if got := p.metric("strata_xa_upgrades_total"); got != 3 {
		t.Errorf("strata_xa_upgrades_total = %v, want 3", got)
	}

	// single mode: 1235 naming the mode.
	sdb := p.open(t, "single")
	stx, _ := sdb.Begin()
	mustExec(t, stx, "UPDATE accounts SET balance = balance - 1 WHERE id = ?", a)
	_, err = stx.Exec("UPDATE accounts SET balance = balance + 1 WHERE id = ?", b)
	if sqlErrNum(err) != 1235 || !strings.Contains(err.Error(), "transaction_mode is single") {
		t.Errorf("single mode: %v", err)
	}
	stx.Rollback()

	// A client's XA statement: 1235 saying the proxy coordinates.
	_, err = db.Exec("XA START 'mine'")
	if sqlErrNum(err) != 1235 || !strings.Contains(err.Error(), "coordinates cross-shard transactions itself") {
		t.Errorf("client XA: %v", err)
	}
	rows, err := db.Query("SHOW STRATA TRANSACTIONS")
	if err != nil {
		t.Fatal(err)
	}
	cols, _ := rows.Columns()
	rows.Close()
	if strings.Join(cols, ",") != "id,source,shards,state,age_ms,detail" {
		t.Errorf("SHOW STRATA TRANSACTIONS columns %v", cols)
	}
}
