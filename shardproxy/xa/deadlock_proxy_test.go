package xa_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/strata-db/strata/localdb"
)

// TestCrossShardDeadlock: two transactions that each hold a row on one
// shard and wait for the other's row on the other shard form a cycle no
// shard's server can see; the proxy's deadlock check finds it and rolls
// back the younger transaction (1213, as MariaDB answers its own
// deadlocks' victims) long before innodb_lock_wait_timeout, and the other
// commits. The same holds when one side is an autocommit statement over
// both shards. A long wait that is no cycle is left alone.
func TestCrossShardDeadlock(t *testing.T) {
	topo := localdb.StartForTest(t, localdb.TestConfig(2, 0))
	g := coordGroup(t, 1)
	cfg := bankConfig(topo, g.GRPCAddrs(), "127.0.0.1:0")
	cfg.Transactions.DeadlockCheck = 300 * time.Millisecond
	p := startProxy(t, cfg, nil)
	ids := createBank(t, p, topo, 20, 100)
	a, b := ids["s0"][0], ids["s1"][0]
	c, d := ids["s0"][1], ids["s1"][1]
	db := p.open(t, "bank")
	ctx := context.Background()
	exec := func(cn *sql.Conn, q string, args ...any) error {
		_, err := cn.ExecContext(ctx, q, args...)
		return err
	}
	must := func(cn *sql.Conn, q string, args ...any) {
		t.Helper()
		if err := exec(cn, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	// Two sessions whose last transaction spanned shards, so that the next
	// begins as an XA branch at once (the lock order below is then the
	// statements' own; a first shard made distributed later would give its
	// lock up and take it again).
	session := func() *sql.Conn {
		cn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cn.Close() })
		// Far above the check's time: a 1213 within it is the proxy's; a
		// cycle left alone would end in 1205 after this.
		must(cn, "SET SESSION innodb_lock_wait_timeout = 30")
		must(cn, "BEGIN")
		must(cn, "UPDATE accounts SET balance = balance WHERE id = ?", c)
		must(cn, "UPDATE accounts SET balance = balance WHERE id = ?", d)
		must(cn, "COMMIT")
		return cn
	}
	s1, s2 := session(), session()
	bal := func(id int) int {
		var v int
		if err := db.QueryRowContext(ctx, "SELECT balance FROM accounts WHERE id = ?", id).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	inTx := func(cn *sql.Conn) int {
		var v int
		if err := cn.QueryRowContext(ctx, "SELECT @@in_transaction").Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}

	// s1 holds a (s0) and waits for b (s1); s2 holds b and waits for a.
	must(s1, "BEGIN")
	must(s1, "UPDATE accounts SET balance = balance - 10 WHERE id = ?", a)
	must(s2, "BEGIN")
	must(s2, "UPDATE accounts SET balance = balance - 1 WHERE id = ?", b)
	first := make(chan error, 1)
	go func() { first <- exec(s1, "UPDATE accounts SET balance = balance + 10 WHERE id = ?", b) }()
	time.Sleep(200 * time.Millisecond) // s1 waits for b
	start := time.Now()
	err := exec(s2, "UPDATE accounts SET balance = balance + 1 WHERE id = ?", a)
	took := time.Since(start)
	if sqlErrNum(err) != 1213 {
		t.Fatalf("the younger transaction of the cycle: %v, want 1213", err)
	}
	if took > 10*time.Second {
		t.Errorf("the deadlock was broken after %v: the check should find it within a few of its 300ms rounds", took)
	}
	if err := <-first; err != nil {
		t.Fatalf("the older transaction, once the cycle was broken: %v", err)
	}
	if inTx(s2) != 0 {
		t.Errorf("the victim is still in a transaction: it should have been rolled back whole, as on MariaDB")
	}
	must(s1, "COMMIT")
	if got := p.metric("strata_xa_deadlocks_total"); got != 1 {
		t.Errorf("strata_xa_deadlocks_total = %v, want 1", got)
	}
	if bal(a) != 90 || bal(b) != 110 {
		t.Errorf("balances a %d b %d, want 90 110: the older transaction whole, nothing of the victim", bal(a), bal(b))
	}

	// An autocommit statement over both shards: its part on s1 holds b
	// while its part on s0 waits for a, held by s1's transaction, which
	// then waits for b.
	must(s1, "BEGIN")
	must(s1, "UPDATE accounts SET balance = balance - 10 WHERE id = ?", a)
	atomic := make(chan error, 1)
	go func() {
		atomic <- exec(s2, "UPDATE accounts SET balance = balance + 1000 WHERE id IN (?, ?)", a, b)
	}()
	time.Sleep(500 * time.Millisecond) // its part on s1 ran, the one on s0 waits
	err = exec(s1, "UPDATE accounts SET balance = balance + 10 WHERE id = ?", b)
	aerr := <-atomic
	switch {
	case err == nil && sqlErrNum(aerr) == 1213:
		must(s1, "COMMIT")
		if bal(a) != 80 || bal(b) != 120 {
			t.Errorf("balances a %d b %d, want 80 120 (the statement rolled back on both shards)", bal(a), bal(b))
		}
	default:
		t.Fatalf("the transaction: %v; the autocommit statement (the younger): %v, want it to get 1213", err, aerr)
	}
	if got := p.metric("strata_xa_deadlocks_total"); got != 2 {
		t.Errorf("strata_xa_deadlocks_total = %v, want 2", got)
	}

	// A wait longer than the check that is no cycle: left to end.
	must(s1, "BEGIN")
	must(s1, "UPDATE accounts SET balance = balance - 10 WHERE id = ?", a)
	must(s2, "BEGIN")
	must(s2, "UPDATE accounts SET balance = balance - 1 WHERE id = ?", b)
	waited := make(chan error, 1)
	go func() { waited <- exec(s2, "UPDATE accounts SET balance = balance + 1 WHERE id = ?", a) }()
	time.Sleep(1500 * time.Millisecond)
	must(s1, "COMMIT")
	if err := <-waited; err != nil {
		t.Fatalf("a plain lock wait across the check: %v", err)
	}
	must(s2, "COMMIT")
	if got := p.metric("strata_xa_deadlocks_total"); got != 2 {
		t.Errorf("after a wait that is no cycle: strata_xa_deadlocks_total = %v, want 2", got)
	}
	if bal(a) != 71 || bal(b) != 119 {
		t.Errorf("balances a %d b %d, want 71 119", bal(a), bal(b))
	}
}
