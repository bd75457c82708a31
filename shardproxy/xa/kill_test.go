package xa_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-db/strata/localdb"
)

// TestProxyCrossShardInterrupted: a distributed transaction whose client goes
// away (the connection dropped, or KILL CONNECTION from another session)
// leaves nothing: its rows are not committed, no branch stays prepared or
// open on a primary. KILL QUERY of a statement in it ends the statement
// only: the transaction goes on and commits on both shards. KILL
// CONNECTION while COMMIT runs, after the decision was recorded, loses
// nothing: the transaction is committed on both shards, no branch stays
// prepared. SHOW STRATA TRANSACTIONS lists it while active and while it
// commits, and an autocommit statement over both shards while it commits. A lock wait timeout (1205) on one shard ends the statement
// only, as on one server; a deadlock (1213) on one shard rolls the whole
// transaction back, on every shard, and the session is out of it.
func TestProxyCrossShardInterrupted(t *testing.T) {
	topo := localdb.StartForTest(t, localdb.TestConfig(2, 0))
	g := coordGroup(t, 1)
	var hold atomic.Bool // the failpoint "decided" waits while set
	decided := make(chan struct{}, 1)
	fp := func(step string, _ uint64) error {
		if step == "decided" && hold.Load() {
			decided <- struct{}{}
			time.Sleep(time.Second)
		}
		return nil
	}
	p := startProxy(t, bankConfig(topo, g.GRPCAddrs(), "127.0.0.1:0"), fp)
	ids := createBank(t, p, topo, 20, 100)
	a, b := ids["s0"][0], ids["s1"][0]
	ctx := context.Background()
	admin := p.open(t, "bank")
	bal := func(id int) int {
		t.Helper()
		var v int
		if err := admin.QueryRow("SELECT balance FROM accounts WHERE id = ?", id).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	// clean: no branch of ours prepared and no transaction open on any
	// primary, within a bounded time.
	clean := func(what string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			left := ""
			for _, sh := range topo.Shards() {
				if x := preparedOn(t, sh.Primary()); len(x) > 0 {
					left += fmt.Sprintf(" %s: prepared %v;", sh.Name, x)
				}
				n, err := sh.Primary().QueryString(ctx, "SELECT COUNT(*) FROM information_schema.INNODB_TRX")
				if err != nil {
					t.Fatal(err)
				}
				if n != "0" {
					left += fmt.Sprintf(" %s: %s transactions open;", sh.Name, n)
				}
			}
			if left == "" {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s:%s", what, left)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// open begins a transaction writing to both shards on a connection
	// of its own and returns it with its id.
	open := func(amount int) (*sql.Conn, int) {
		t.Helper()
		c, err := p.open(t, "bank").Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var id int
		if err := c.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&id); err != nil {
			t.Fatal(err)
		}
		for _, st := range []struct {
			q    string
			args []any
		}{
			{q: "BEGIN"},
			{"UPDATE accounts SET balance = balance - ? WHERE id = ?", []any{amount, a}},
			{"UPDATE accounts SET balance = balance + ? WHERE id = ?", []any{amount, b}},
		} {
			if _, err := c.ExecContext(ctx, st.q, st.args...); err != nil {
				t.Fatalf("%s: %v", st.q, err)
			}
		}
		return c, id
	}

	// The client's connection dropped.
	c, id := open(10)
	var txid, source, shards, state, detail string
	var age int
	if err := admin.QueryRow("SHOW STRATA TRANSACTIONS").Scan(&txid, &source, &shards, &state, &age, &detail); err != nil {
		t.Errorf("SHOW STRATA TRANSACTIONS: %v", err)
	} else if source != "proxy" || shards != "s0,s1" || state != "active" || detail != fmt.Sprintf("session %d", id) {
		t.Errorf("SHOW STRATA TRANSACTIONS: %s %s %s %s %s", txid, source, shards, state, detail)
	}
	_ = c.Raw(func(any) error { return driver.ErrBadConn })
	c.Close()
	clean("after the client dropped its connection")
	if bal(a) != 100 || bal(b) != 100 {
		t.Errorf("after the client dropped its connection: %d %d, want 100 100", bal(a), bal(b))
	}

	// KILL CONNECTION from another session.
	c, id = open(10)
	if _, err := admin.Exec(fmt.Sprintf("KILL CONNECTION %d", id)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ExecContext(ctx, "COMMIT"); err == nil {
		t.Error("COMMIT after KILL CONNECTION succeeded")
	}
	c.Close()
	clean("after KILL CONNECTION")
	if bal(a) != 100 || bal(b) != 100 {
		t.Errorf("after KILL CONNECTION: %d %d, want 100 100", bal(a), bal(b))
	}

	// KILL QUERY: the statement goes, the transaction stays; a scatter
	// UPDATE killed leaves nothing on either shard (its shards' parts
	// run one after the other, 0.1 s a row: the kill lands in the
	// second's, or in the first's, and either way none stays).
	c, id = open(10)
	done := make(chan error, 1)
	for _, st := range []struct {
		q     string
		after time.Duration
	}{
		{"UPDATE accounts SET balance = balance + SLEEP(10) WHERE id = " + fmt.Sprint(ids["s1"][1]), 300 * time.Millisecond},
		{"UPDATE accounts SET balance = balance + 1 + SLEEP(0.1)", 1400 * time.Millisecond},
	} {
		go func() {
			_, err := c.ExecContext(ctx, st.q)
			done <- err
		}()
		time.Sleep(st.after)
		if _, err := admin.Exec(fmt.Sprintf("KILL QUERY %d", id)); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if sqlErrNum(err) != 1317 {
				t.Errorf("%s killed: %v, want 1317", st.q, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s killed by KILL QUERY still runs", st.q)
		}
	}
	if _, err := c.ExecContext(ctx, "COMMIT"); err != nil {
		t.Fatalf("COMMIT after KILL QUERY: %v", err)
	}
	c.Close()
	clean("after KILL QUERY and COMMIT")
	if bal(a) != 90 || bal(b) != 110 {
		t.Errorf("after KILL QUERY and COMMIT: %d %d, want 90 110", bal(a), bal(b))
	}
	var total int
	if err := admin.QueryRow("SELECT SUM(balance) FROM accounts").Scan(&total); err != nil || total != 2000 {
		t.Errorf("after a scatter UPDATE killed: total %d %v, want 2000 (nothing of it)", total, err)
	}

	// KILL CONNECTION while COMMIT runs, once the decision is recorded.
	c, id = open(10)
	hold.Store(true)
	go func() {
		_, err := c.ExecContext(ctx, "COMMIT")
		done <- err
	}()
	<-decided
	hold.Store(false)
	// SHOW STRATA TRANSACTIONS lists it, committing, on both shards.
	if err := admin.QueryRow("SHOW STRATA TRANSACTIONS").Scan(&txid, &source, &shards, &state, &age, &detail); err != nil {
		t.Errorf("SHOW STRATA TRANSACTIONS during COMMIT: %v", err)
	} else if source != "proxy" || shards != "s0,s1" || state != "committing" || detail != fmt.Sprintf("session %d", id) {
		t.Errorf("SHOW STRATA TRANSACTIONS during COMMIT: %s %s %s %s %s", txid, source, shards, state, detail)
	}
	if _, err := admin.Exec(fmt.Sprintf("KILL CONNECTION %d", id)); err != nil {
		t.Fatal(err)
	}
	t.Logf("COMMIT killed after the decision: %v", <-done)

	// An autocommit statement over both shards is listed while it
	// commits too.
	hold.Store(true)
	go func() {
		_, err := p.open(t, "bank").Exec("UPDATE accounts SET balance = balance + 0")
		done <- err
	}()
	<-decided
	hold.Store(false)
	if err := admin.QueryRow("SHOW STRATA TRANSACTIONS").Scan(&txid, &source, &shards, &state, &age, &detail); err != nil {
		t.Errorf("SHOW STRATA TRANSACTIONS during an autocommit statement's commit: %v", err)
	} else if source != "proxy" || shards != "s0,s1" || state != "committing" {
		t.Errorf("SHOW STRATA TRANSACTIONS during an autocommit statement's commit: %s %s %s %s %s", txid, source, shards, state, detail)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	c.Close()
	clean("after KILL CONNECTION during COMMIT")
	if bal(a) != 80 || bal(b) != 120 {
		t.Errorf("after KILL CONNECTION during COMMIT (decided): %d %d, want 80 120", bal(a), bal(b))
	}

	// 1205 on one shard: the statement goes, the transaction stays.
	s1 := topo.Shard("s1").Primary()
	other, err := s1.Open("bank")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	oc, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer oc.Close()
	b2, b3 := ids["s1"][1], ids["s1"][2]
	for _, q := range []string{"SET SESSION innodb_lock_wait_timeout = 20", "BEGIN", fmt.Sprintf("UPDATE accounts SET balance = balance + 1 WHERE id IN (%d, %d)", b2, b3)} {
		if _, err := oc.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	c, _ = open(10)
	if _, err := c.ExecContext(ctx, "UPDATE accounts SET balance = balance + 1 WHERE id = ?", b2); sqlErrNum(err) != 1205 {
		t.Errorf("a row locked on s1: %v, want 1205", err)
	}
	var inTx int
	if err := c.QueryRowContext(ctx, "SELECT @@in_transaction").Scan(&inTx); err != nil || inTx != 1 {
		t.Errorf("after 1205: in_transaction %d %v, want 1", inTx, err)
	}
	if _, err := c.ExecContext(ctx, "COMMIT"); err != nil {
		t.Fatalf("COMMIT after 1205: %v", err)
	}
	if bal(a) != 70 || bal(b) != 130 {
		t.Errorf("after 1205 and COMMIT: %d %d, want 70 130", bal(a), bal(b))
	}

	// 1213 on one shard: the whole transaction goes. The other
	// transaction changed more rows, so InnoDB picks ours as the victim.
	c, _ = open(10)
	errc := make(chan error, 1)
	go func() {
		_, err := oc.ExecContext(ctx, "UPDATE accounts SET balance = balance + 1 WHERE id = ?", b)
		errc <- err
	}()
	time.Sleep(300 * time.Millisecond)
	_, err = c.ExecContext(ctx, "UPDATE accounts SET balance = balance + 1 WHERE id = ?", b2)
	if sqlErrNum(err) != 1213 {
		t.Errorf("a deadlock on s1: %v, want 1213", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("the other transaction: %v", err)
	}
	if _, err := oc.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if err := c.QueryRowContext(ctx, "SELECT @@in_transaction").Scan(&inTx); err != nil || inTx != 0 {
		t.Errorf("after 1213: in_transaction %d %v, want 0", inTx, err)
	}
	if _, err := c.ExecContext(ctx, "COMMIT"); err != nil {
		t.Fatalf("COMMIT after 1213: %v", err)
	}
	c.Close()
	clean("after a deadlock")
	if bal(a) != 70 || bal(b) != 130 {
		t.Errorf("after a deadlock on one shard: %d %d, want 70 130 (nothing of the transaction)", bal(a), bal(b))
	}
}
