package xa_test

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/strata-db/strata/localdb"
	"github.com/strata-db/strata/shardproxy/config"
)

// dlEnv is a proxy over three shards with the deadlock check on, for the
// deadlock tests below.
type dlEnv struct {
	t    *testing.T
	topo *localdb.Topology
	p    *proxy
	db   *sql.DB
	ids  map[string][]int
	ctx  context.Context
	// direct connections to each shard's primary, by shard name
	direct map[string]*sql.DB
}

func newDLEnv(t *testing.T, shards int) *dlEnv {
	topo := localdb.StartForTest(t, localdb.TestConfig(shards, 0))
	g := coordGroup(t, 1)
	cfg := bankConfig(topo, g.GRPCAddrs(), "127.0.0.1:0")
	cfg.Transactions.DeadlockCheck = 300 * time.Millisecond
	// An unsharded database on s0, for temporary tables.
	cfg.Databases["plain"] = &config.Database{Shard: "s0"}
	ad, err := topo.Shards()[0].Primary().OpenAdmin("")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ad.Exec("CREATE DATABASE IF NOT EXISTS plain"); err != nil {
		t.Fatal(err)
	}
	ad.Close()
	p := startProxy(t, cfg, nil)
	e := &dlEnv{t: t, topo: topo, p: p, ids: createBank(t, p, topo, 60, 100), ctx: context.Background(), direct: map[string]*sql.DB{}}
	e.db = p.open(t, "bank")
	for _, sh := range topo.Shards() {
		d, err := sh.Primary().Open("bank")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		e.direct[sh.Name] = d
	}
	return e
}

func (e *dlEnv) exec(cn *sql.Conn, q string, args ...any) error {
	_, err := cn.ExecContext(e.ctx, q, args...)
	return err
}

func (e *dlEnv) must(cn *sql.Conn, q string, args ...any) {
	e.t.Helper()
	if err := e.exec(cn, q, args...); err != nil {
		e.t.Fatalf("%s: %v", q, err)
	}
}

// session opens a client connection; spanned: its last transaction spanned
// shards, so that its next begins as an XA branch at once.
func (e *dlEnv) session(spanned bool) *sql.Conn {
	e.t.Helper()
	cn, err := e.db.Conn(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { cn.Close() })
	e.must(cn, "SET SESSION innodb_lock_wait_timeout = 30")
	if spanned {
		e.must(cn, "BEGIN")
		for _, sh := range e.topo.Shards() {
			e.must(cn, "UPDATE accounts SET balance = balance WHERE id = ?", e.ids[sh.Name][len(e.ids[sh.Name])-1])
		}
		e.must(cn, "COMMIT")
	}
	return cn
}

// waitLocks polls until shard's server has n statements or more that have
// run 100ms or more (lock waits: the statements of these tests otherwise
// end at once). The server's PROCESSLIST, not innodb_lock_waits: InnoDB
// refreshes its information_schema tables only when nobody read them for
// 100ms, and a poll that reads them faster would keep the deadlock check's
// view stale.
func (e *dlEnv) waitLocks(shard string, n int) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var got int
		if err := e.direct[shard].QueryRowContext(e.ctx, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE COMMAND = 'Query' AND TIME_MS >= 100 AND INFO LIKE '%accounts%'").Scan(&got); err != nil {
			e.t.Fatal(err)
		}
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("shard %s: %d lock waits, want %d", shard, got, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// bal reads a balance on the shard's server directly.
func (e *dlEnv) bal(id int) int {
	e.t.Helper()
	for sh, ids := range e.ids {
		for _, x := range ids {
			if x == id {
				var v int
				if err := e.direct[sh].QueryRowContext(e.ctx, "SELECT balance FROM accounts WHERE id = ?", id).Scan(&v); err != nil {
					e.t.Fatal(err)
				}
				return v
			}
		}
	}
	e.t.Fatalf("no account %d", id)
	return 0
}

func (e *dlEnv) inTx(cn *sql.Conn) int {
	e.t.Helper()
	var v int
	if err := cn.QueryRowContext(e.ctx, "SELECT @@in_transaction").Scan(&v); err != nil {
		e.t.Fatal(err)
	}
	return v
}

// quiet checks that no transaction is left open or prepared on any shard.
func (e *dlEnv) quiet() {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for sh, d := range e.direct {
		for {
			var n int
			if err := d.QueryRowContext(e.ctx, "SELECT COUNT(*) FROM information_schema.innodb_trx").Scan(&n); err != nil {
				e.t.Fatal(err)
			}
			if n == 0 {
				break
			}
			if time.Now().After(deadline) {
				rows, _ := d.QueryContext(e.ctx, "SELECT t.trx_state, t.trx_mysql_thread_id, IFNULL(t.trx_query, ''), t.trx_rows_locked, IFNULL(p.COMMAND, ''), IFNULL(p.INFO, '') FROM information_schema.innodb_trx t LEFT JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id")
				for rows != nil && rows.Next() {
					var st, q, cmd, info string
					var id, locked int
					rows.Scan(&st, &id, &q, &locked, &cmd, &info)
					e.t.Logf("shard %s: trx %s thread %d query %q locked %d command %s info %q", sh, st, id, q, locked, cmd, info)
				}
				e.t.Fatalf("shard %s: %d transactions left open", sh, n)
			}
			time.Sleep(150 * time.Millisecond) // see waitLocks
		}
	}
}

func (e *dlEnv) async(cn *sql.Conn, q string, args ...any) chan error {
	ch := make(chan error, 1)
	go func() { ch <- e.exec(cn, q, args...) }()
	return ch
}

func want1213(t *testing.T, what string, err error) {
	t.Helper()
	if sqlErrNum(err) != 1213 {
		t.Fatalf("%s: %v, want 1213", what, err)
	}
}

func recv(t *testing.T, what string, ch chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(15 * time.Second):
		t.Fatalf("%s: no answer in 15s", what)
		return nil
	}
}

// TestCrossShardDeadlockPaths: the deadlock check's victim through the
// paths a transaction can take.
func TestCrossShardDeadlockPaths(t *testing.T) {
	e := newDLEnv(t, 3)
	ids := e.ids
	acct := func(shard string, i int) int { return ids[shard][i] }
	const upd = "UPDATE accounts SET balance = balance + ? WHERE id = ?"

	t.Run("GET_LOCK held by the victim stays", func(t *testing.T) {
		e.t = t
		a, b := acct("s0", 0), acct("s1", 0)
		s1, s2 := e.session(true), e.session(true)
		var got int
		if err := s2.QueryRowContext(e.ctx, "SELECT GET_LOCK('dlreview', 0)").Scan(&got); err != nil || got != 1 {
			t.Fatalf("GET_LOCK: %v %d", err, got)
		}
		// And a temporary table on s0, where its transaction's branch then runs.
		e.must(s2, "CREATE TEMPORARY TABLE plain.tt_dlreview (x INT)")
		e.must(s2, "INSERT INTO plain.tt_dlreview VALUES (1)")
		e.must(s1, "BEGIN")
		e.must(s1, upd, -10, a)
		e.must(s2, "BEGIN")
		e.must(s2, upd, -1, b)
		first := e.async(s1, upd, 10, b)
		e.waitLocks("s1", 1)
		want1213(t, "the younger, holding a named lock", e.exec(s2, upd, 1, a))
		if err := recv(t, "the older", first); err != nil {
			t.Fatal(err)
		}
		e.must(s1, "COMMIT")
		if e.inTx(s2) != 0 {
			t.Error("the victim is still in a transaction")
		}
		var used sql.NullInt64
		if err := e.db.QueryRowContext(e.ctx, "SELECT IS_USED_LOCK('dlreview')").Scan(&used); err != nil {
			t.Fatal(err)
		}
		if !used.Valid {
			t.Error("the victim's named lock went with the rollback (MariaDB keeps it after a deadlock)")
		}
		var n int
		if err := s2.QueryRowContext(e.ctx, "SELECT COUNT(*) FROM plain.tt_dlreview").Scan(&n); err != nil || n != 1 {
			t.Errorf("the victim's temporary table after the rollback: %v, %d rows; want it kept, 1 row (as on MariaDB)", err, n)
		}
		if err := s2.QueryRowContext(e.ctx, "SELECT RELEASE_LOCK('dlreview')").Scan(&got); err != nil || got != 1 {
			t.Errorf("RELEASE_LOCK by the victim: %v %d, want 1", err, got)
		}
		if e.bal(a) != 90 || e.bal(b) != 110 {
			t.Errorf("balances %d %d, want 90 110", e.bal(a), e.bal(b))
		}
		e.quiet()
	})

	t.Run("one-shard deadlock with a named lock", func(t *testing.T) {
		// MariaDB's own deadlock in a distributed transaction of a session
		// holding a named lock: 1213, the lock stays (as on one server).
		e.t = t
		a, c, b := acct("s0", 1), acct("s0", 2), acct("s1", 1)
		s1, s2 := e.session(true), e.session(true)
		var got int
		if err := s2.QueryRowContext(e.ctx, "SELECT GET_LOCK('dlreview2', 0)").Scan(&got); err != nil || got != 1 {
			t.Fatalf("GET_LOCK: %v %d", err, got)
		}
		e.must(s1, "BEGIN")
		e.must(s1, upd, -10, a)
		// Heavier than s2's: MariaDB's victim is the lighter one.
		e.must(s1, "UPDATE accounts SET balance = balance WHERE id IN (?, ?)", acct("s0", 10), acct("s0", 11))
		e.must(s2, "BEGIN")
		e.must(s2, upd, -1, b)
		e.must(s2, upd, -1, c)
		first := e.async(s1, upd, 10, c)
		e.waitLocks("s0", 1)
		want1213(t, "the lighter", e.exec(s2, upd, 1, a))
		if err := recv(t, "the other", first); err != nil {
			t.Fatal(err)
		}
		e.must(s1, "COMMIT")
		if e.inTx(s2) != 0 {
			t.Error("the victim is still in a transaction")
		}
		if e.bal(a) != 90 || e.bal(c) != 110 {
			t.Errorf("balances %d %d, want 90 110", e.bal(a), e.bal(c))
		}
		var used sql.NullInt64
		if err := e.db.QueryRowContext(e.ctx, "SELECT IS_USED_LOCK('dlreview2')").Scan(&used); err != nil {
			t.Fatal(err)
		}
		if !used.Valid {
			t.Error("the named lock went with the deadlock's rollback (MariaDB keeps it)")
		}
		e.exec(s2, "DO RELEASE_LOCK('dlreview2')")
		e.quiet()
	})

	t.Run("one-shard deadlock of an XA branch with a named lock", func(t *testing.T) {
		// The same in a transaction on one shard begun as an XA branch
		// (the session's last transaction spanned shards).
		e.t = t
		a, c := acct("s0", 8), acct("s0", 9)
		s1, s2 := e.session(true), e.session(true)
		var got int
		if err := s2.QueryRowContext(e.ctx, "SELECT GET_LOCK('dlreview3', 0)").Scan(&got); err != nil || got != 1 {
			t.Fatalf("GET_LOCK: %v %d", err, got)
		}
		// And a temporary table on s0, where its transaction's branch then runs.
		e.must(s2, "CREATE TEMPORARY TABLE plain.tt_dlreview3 (x INT)")
		e.must(s2, "INSERT INTO plain.tt_dlreview3 VALUES (1)")
		e.must(s1, "BEGIN")
		e.must(s1, upd, -10, a)
		// Heavier than s2's: MariaDB's victim is the lighter one.
		e.must(s1, "UPDATE accounts SET balance = balance WHERE id IN (?, ?)", acct("s0", 12), acct("s0", 13))
		e.must(s2, "BEGIN")
		e.must(s2, upd, -1, c)
		first := e.async(s1, upd, 10, c)
		e.waitLocks("s0", 1)
		want1213(t, "the lighter", e.exec(s2, upd, 1, a))
		if err := recv(t, "the other", first); err != nil {
			t.Fatal(err)
		}
		e.must(s1, "COMMIT")
		if e.inTx(s2) != 0 {
			t.Error("the victim is still in a transaction")
		}
		if e.bal(a) != 90 || e.bal(c) != 110 {
			t.Errorf("balances %d %d, want 90 110", e.bal(a), e.bal(c))
		}
		var used sql.NullInt64
		if err := e.db.QueryRowContext(e.ctx, "SELECT IS_USED_LOCK('dlreview3')").Scan(&used); err != nil {
			t.Fatal(err)
		}
		if !used.Valid {
			t.Error("the named lock went with the deadlock's rollback (MariaDB keeps it)")
		}
		var n int
		if err := s2.QueryRowContext(e.ctx, "SELECT COUNT(*) FROM plain.tt_dlreview3").Scan(&n); err != nil || n != 1 {
			t.Errorf("the victim's temporary table after the rollback: %v, %d rows; want it kept, 1 row (as on MariaDB)", err, n)
		}
		if e.inTx(s1) != 0 || e.inTx(s2) != 0 {
			t.Error("a session is still in a transaction")
		}
		e.exec(s2, "DO RELEASE_LOCK('dlreview3')")
		e.quiet()
	})

	t.Run("upgraded first shard", func(t *testing.T) {
		e.t = t
		a, b, x := acct("s0", 3), acct("s1", 3), acct("s0", 4)
		s1 := e.session(true)
		s2 := e.session(false) // begins plain: made an XA branch when it spans
		e.must(s1, "BEGIN")
		e.must(s1, upd, -10, a)
		e.must(s2, "BEGIN")
		e.must(s2, upd, -1, b) // plain on s1
		e.must(s2, upd, -1, x) // spans: s1 replayed under XA START
		first := e.async(s1, upd, 10, b)
		e.waitLocks("s1", 1)
		want1213(t, "the younger (upgraded)", e.exec(s2, upd, 1, a))
		if err := recv(t, "the older", first); err != nil {
			t.Fatal(err)
		}
		e.must(s1, "COMMIT")
		if e.inTx(s2) != 0 {
			t.Error("the victim is still in a transaction")
		}
		if e.bal(a) != 90 || e.bal(b) != 110 || e.bal(x) != 100 {
			t.Errorf("balances %d %d %d, want 90 110 100", e.bal(a), e.bal(b), e.bal(x))
		}
		e.quiet()
	})

	t.Run("SELECT FOR UPDATE scatter", func(t *testing.T) {
		e.t = t
		a, b := acct("s0", 5), acct("s1", 5)
		s1, s2 := e.session(true), e.session(true)
		e.must(s1, "BEGIN")
		e.must(s1, upd, -10, a)
		e.must(s2, "BEGIN")
		e.must(s2, upd, -1, b)
		first := e.async(s1, upd, 10, b)
		e.waitLocks("s1", 1)
		rows, err := s2.QueryContext(e.ctx, fmt.Sprintf("SELECT id, balance FROM accounts WHERE id IN (%d, %d) FOR UPDATE", a, b))
		if err == nil {
			for rows.Next() {
			}
			err = rows.Err()
			rows.Close()
		}
		want1213(t, "the younger's SELECT FOR UPDATE", err)
		if err := recv(t, "the older", first); err != nil {
			t.Fatal(err)
		}
		e.must(s1, "COMMIT")
		if e.inTx(s2) != 0 {
			t.Error("the victim is still in a transaction")
		}
		if e.bal(a) != 90 || e.bal(b) != 110 {
			t.Errorf("balances %d %d, want 90 110", e.bal(a), e.bal(b))
		}
		e.quiet()
	})

	t.Run("three transactions over three shards", func(t *testing.T) {
		e.t = t
		a, b, c := acct("s0", 6), acct("s1", 6), acct("s2", 6)
		s1, s2, s3 := e.session(true), e.session(true), e.session(true)
		e.must(s1, "BEGIN")
		e.must(s1, upd, -1, a)
		e.must(s2, "BEGIN")
		e.must(s2, upd, -2, b)
		e.must(s3, "BEGIN")
		e.must(s3, upd, -3, c)
		w1 := e.async(s1, upd, 1, b)
		e.waitLocks("s1", 1)
		w2 := e.async(s2, upd, 2, c)
		e.waitLocks("s2", 1)
		want1213(t, "the youngest", e.exec(s3, upd, 3, a))
		if err := recv(t, "the second", w2); err != nil {
			t.Fatal(err)
		}
		e.must(s2, "COMMIT")
		if err := recv(t, "the first", w1); err != nil {
			t.Fatal(err)
		}
		e.must(s1, "COMMIT")
		if e.inTx(s3) != 0 {
			t.Error("the victim is still in a transaction")
		}
		if e.bal(a) != 99 || e.bal(b) != 99 || e.bal(c) != 102 {
			t.Errorf("balances %d %d %d, want 99 99 102", e.bal(a), e.bal(b), e.bal(c))
		}
		e.quiet()
	})

	t.Run("three transactions over two shards", func(t *testing.T) {
		e.t = t
		a, b, c, d := acct("s0", 14), acct("s1", 14), acct("s0", 15), acct("s1", 15)
		s1, s2, s3 := e.session(true), e.session(true), e.session(true)
		e.must(s1, "BEGIN")
		e.must(s1, upd, -1, a)
		e.must(s1, upd, -1, d)
		e.must(s2, "BEGIN")
		e.must(s2, upd, -2, b)
		e.must(s3, "BEGIN")
		e.must(s3, upd, -3, c)
		w1 := e.async(s1, upd, 1, b) // s1 -> s2 on s1
		e.waitLocks("s1", 1)
		w2 := e.async(s2, upd, 2, c) // s2 -> s3 on s0
		e.waitLocks("s0", 1)
		want1213(t, "the youngest", e.exec(s3, upd, 3, d)) // s3 -> s1 on s1
		if err := recv(t, "the second", w2); err != nil {
			t.Fatal(err)
		}
		e.must(s2, "COMMIT")
		if err := recv(t, "the first", w1); err != nil {
			t.Fatal(err)
		}
		e.must(s1, "COMMIT")
		if e.inTx(s3) != 0 {
			t.Error("the victim is still in a transaction")
		}
		if e.bal(a) != 99 || e.bal(b) != 99 || e.bal(c) != 102 || e.bal(d) != 99 {
			t.Errorf("balances %d %d %d %d, want 99 99 102 99", e.bal(a), e.bal(b), e.bal(c), e.bal(d))
		}
		e.quiet()
	})

	t.Run("autocommit SELECT FOR UPDATE over two shards", func(t *testing.T) {
		e.t = t
		a, b := acct("s0", 16), acct("s1", 16)
		s1, s2 := e.session(true), e.session(true)
		e.must(s1, "BEGIN")
		e.must(s1, upd, -10, a)
		sel := make(chan error, 1)
		go func() {
			rows, err := s2.QueryContext(e.ctx, fmt.Sprintf("SELECT id, balance FROM accounts WHERE id IN (%d, %d) FOR UPDATE", a, b))
			if err == nil {
				for rows.Next() {
				}
				err = rows.Err()
				rows.Close()
			}
			sel <- err
		}()
		e.waitLocks("s0", 1) // its part on s1 holds b, the one on s0 waits
		err := e.exec(s1, upd, 10, b)
		want1213(t, "the autocommit SELECT FOR UPDATE (the younger)", recv(t, "the SELECT", sel))
		if err != nil {
			t.Fatal(err)
		}
		e.must(s1, "COMMIT")
		if e.bal(a) != 90 || e.bal(b) != 110 {
			t.Errorf("balances %d %d, want 90 110", e.bal(a), e.bal(b))
		}
		e.quiet()
	})

	t.Run("through a plain one-shard transaction", func(t *testing.T) {
		e.t = t
		a, b, c := acct("s0", 7), acct("s1", 7), acct("s1", 8)
		s1, s2 := e.session(true), e.session(true)
		pl := e.session(false)
		e.must(s1, "BEGIN")
		e.must(s1, upd, -1, a)
		e.must(pl, "BEGIN")
		e.must(pl, upd, -5, b)
		e.must(s2, "BEGIN")
		e.must(s2, upd, -2, c)
		w1 := e.async(s1, upd, 1, b) // waits for the plain one
		e.waitLocks("s1", 1)
		wp := e.async(pl, upd, 5, c) // waits for s2
		e.waitLocks("s1", 2)
		want1213(t, "the younger", e.exec(s2, upd, 2, a))
		if err := recv(t, "the plain one", wp); err != nil {
			t.Fatal(err)
		}
		e.must(pl, "COMMIT")
		if err := recv(t, "the older", w1); err != nil {
			t.Fatal(err)
		}
		e.must(s1, "COMMIT")
		if e.inTx(s2) != 0 {
			t.Error("the victim is still in a transaction")
		}
		if e.bal(a) != 99 || e.bal(b) != 96 || e.bal(c) != 105 {
			t.Errorf("balances %d %d %d, want 99 96 105", e.bal(a), e.bal(b), e.bal(c))
		}
		e.quiet()
	})

	// Nothing left in the proxy's list of transactions in flight.
	e.t = t
	rows, err := e.db.QueryContext(e.ctx, "SHOW STRATA TRANSACTIONS")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	for rows.Next() {
		v := make([]any, len(cols))
		for i := range v {
			v[i] = new(sql.NullString)
		}
		rows.Scan(v...)
		if src := v[1].(*sql.NullString).String; src == "proxy" {
			t.Errorf("a transaction left in the proxy's list: %v", *v[0].(*sql.NullString))
		}
	}
}

// TestCrossShardDeadlockStaleView: InnoDB refreshes its information_schema
// transaction tables only when nobody read them for 100ms, so while
// anything else reads them often (a monitoring poll, another proxy's
// check) the deadlock check reads an old view. Built from old waits and
// today's owners of the connections (each session gets its own backend
// connections back), that view showed a cycle that had ended as one
// between two new transactions, one of which merely waited for the other:
// the check must not roll back a transaction on a view it cannot trust.
func TestCrossShardDeadlockStaleView(t *testing.T) {
	e := newDLEnv(t, 2)
	acct := func(shard string, i int) int { return e.ids[shard][i] }
	const upd = "UPDATE accounts SET balance = balance + ? WHERE id = ?"
	a, b := acct("s0", 0), acct("s1", 0)
	c, d, x := acct("s0", 1), acct("s1", 1), acct("s1", 2)
	s1, s2 := e.session(true), e.session(true)

	// A cycle, left to innodb_lock_wait_timeout or broken by the check.
	e.must(s1, "SET SESSION innodb_lock_wait_timeout = 3")
	e.must(s2, "SET SESSION innodb_lock_wait_timeout = 3")
	e.must(s1, "BEGIN")
	e.must(s1, upd, -1, a)
	e.must(s2, "BEGIN")
	e.must(s2, upd, -1, b)
	w1 := e.async(s1, upd, 1, b)
	e.waitLocks("s1", 1)
	w2 := e.async(s2, upd, 1, a)
	e.waitLocks("s0", 1)
	// From now on something reads the tables every 30ms: InnoDB's view of
	// them stays this one, with the cycle.
	stop := make(chan struct{})
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		for {
			for _, sh := range []string{"s0", "s1"} {
				var n int
				_ = e.direct[sh].QueryRowContext(e.ctx, "SELECT COUNT(*) FROM information_schema.innodb_lock_waits").Scan(&n)
			}
			select {
			case <-stop:
				return
			case <-time.After(30 * time.Millisecond):
			}
		}
	}()
	defer func() { close(stop); <-polled }()
	for _, w := range []chan error{w1, w2} {
		if err := recv(t, "a transaction of the cycle", w); err != nil && sqlErrNum(err) != 1213 && sqlErrNum(err) != 1205 {
			t.Fatalf("a transaction of the cycle: %v", err)
		}
	}
	e.must(s1, "ROLLBACK")
	e.must(s2, "ROLLBACK")
	e.must(s1, "SET SESSION innodb_lock_wait_timeout = 30")
	e.must(s2, "SET SESSION innodb_lock_wait_timeout = 30")
	before := e.p.metric("strata_xa_deadlocks_total")

	// New transactions on the same connections: s2's waits for s1's, which
	// waits for nothing. No cycle.
	e.must(s1, "BEGIN")
	e.must(s1, upd, -1, c)
	e.must(s1, upd, -1, d)
	e.must(s2, "BEGIN")
	e.must(s2, upd, -1, x)
	w := e.async(s2, upd, 1, c)
	e.waitLocks("s0", 1)
	time.Sleep(1500 * time.Millisecond) // several of the check's rounds
	e.must(s1, "COMMIT")
	if err := recv(t, "the waiting transaction", w); err != nil {
		t.Fatalf("a transaction that only waited was rolled back as a deadlock's victim: %v", err)
	}
	e.must(s2, "COMMIT")
	if got := e.p.metric("strata_xa_deadlocks_total"); got != before {
		t.Errorf("strata_xa_deadlocks_total went from %v to %v with no cycle", before, got)
	}
}

// TestKillQueryKeeps1213: a statement killed by KILL QUERY answers 1317,
// and the transaction goes on, as on MariaDB; but when the statement
// failed with 1213 meanwhile, its whole transaction is gone (here: the
// first shard, made an XA branch as the transaction spans, finds its row
// deleted by another transaction while it waited), and the client must
// get 1213: told 1317, it would go on as if in its transaction.
func TestKillQueryKeeps1213(t *testing.T) {
	e := newDLEnv(t, 2)
	b, x := e.ids["s1"][0], e.ids["s0"][0]
	s1 := e.session(false)
	s2 := e.session(false) // its transaction begins plain
	var id int
	if err := s2.QueryRowContext(e.ctx, "SELECT CONNECTION_ID()").Scan(&id); err != nil {
		t.Fatal(err)
	}
	e.must(s2, "BEGIN")
	e.must(s2, "UPDATE accounts SET balance = balance + 1 WHERE id = ?", b)
	e.must(s1, "BEGIN")
	del := e.async(s1, "DELETE FROM accounts WHERE id = ?", b) // waits for s2
	e.waitLocks("s1", 1)
	// s2 spans: its first shard is rolled back and run again under XA
	// START, and the UPDATE waits for s1's DELETE, which took the row.
	spans := e.async(s2, "UPDATE accounts SET balance = balance + 1 WHERE id = ?", x)
	if err := recv(t, "the DELETE", del); err != nil {
		t.Fatal(err)
	}
	e.waitLocks("s1", 1)
	if _, err := e.db.ExecContext(e.ctx, fmt.Sprintf("KILL QUERY %d", id)); err != nil {
		t.Fatal(err)
	}
	e.must(s1, "COMMIT")
	err := recv(t, "the statement", spans)
	want1213(t, "the killed statement whose transaction went", err)
	if e.inTx(s2) != 0 {
		t.Error("the session is still in a transaction")
	}
	e.quiet()
}
