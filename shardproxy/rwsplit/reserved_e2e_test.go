package rwsplit_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/strata-db/strata/localdb"
	"github.com/strata-db/strata/shardproxy/config"
)

// Reserved connections (shardproxy/reserve.go) under read/write splitting:
// a session whose temporary table or named lock lives on one connection to
// the shard's primary reads there, not on a replica, while other sessions
// go on reading from replicas; and a change of primary takes that state
// away with a 2013 the session can go on from.

// metric is the value of a proxy gauge with no labels, or, with server
// set, of a pool gauge for that server's address.
func (p *proxy) metric(t *testing.T, name, server string) float64 {
	t.Helper()
	mfs, err := p.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := server == ""
			for _, l := range m.GetLabel() {
				if l.GetName() == "server" && l.GetValue() == server {
					match = true
				}
			}
			if match {
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("no metric %s for server %q", name, server)
	return 0
}

// waitIdle waits until the proxy holds n reserved connections and, with
// n = 0, no pool has a connection in use.
func (p *proxy) waitIdle(t *testing.T, n float64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := p.metric(t, "strata_proxy_reserved_connections", "")
		inUse := 0.0
		if n == 0 {
			for _, s := range p.topo.Servers() {
				inUse += p.metric(t, "strata_proxy_pool_in_use", s.Addr())
			}
		}
		if got == n && inUse == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("strata_proxy_reserved_connections = %v (want %v), connections in use %v", got, n, inUse)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// one is a client pool of one connection: one proxy session.
func (p *proxy) one(t *testing.T, db string) *sql.DB {
	t.Helper()
	return p.open(t, db, 1)
}

// value runs a one-value query, bounded in time.
func value(db *sql.DB, q string, args ...any) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var v sql.NullString
	err := db.QueryRowContext(ctx, q, args...).Scan(&v)
	return v.String, err
}

func mustValue(t *testing.T, db *sql.DB, q string, args ...any) string {
	t.Helper()
	v, err := value(db, q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return v
}

func errNumber(err error) int {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return int(me.Number)
	}
	return 0
}

// TestProxyReservedReadsOnPrimary: a session with a temporary table reads
// it, and the shard's other tables, on its reserved connection to the
// primary (a replica, or another connection, would not have the table, and
// would not let a temporary table shadow a real one), text and prepared;
// meanwhile another session's reads go to the replica, and neither there
// nor on the primary does it see the temporary table. When the session
// ends, nothing stays reserved or in use.
func TestProxyReservedReadsOnPrimary(t *testing.T) {
	topo := localdb.StartForTest(t, localdb.TestConfig(1, 1))
	sh := topo.Shards()[0]
	prim, repl := sh.Primary(), sh.Replicas()[0]
	p := startProxy(t, topo, nil)
	setup := p.open(t, "app", 1)
	mustExec(t, setup, "CREATE TABLE t (id INT PRIMARY KEY)")
	mustExec(t, setup, "INSERT INTO t VALUES (1), (2), (3)")
	ctx := context.Background()
	if err := topo.WaitReplicated(ctx); err != nil {
		t.Fatal(err)
	}

	a, b := p.one(t, "app"), p.one(t, "app")
	mustExec(t, a, "CREATE TEMPORARY TABLE tmp (id INT)")
	mustExec(t, a, "INSERT INTO tmp VALUES (10), (20)")
	p.waitIdle(t, 1)

	const reads = 20
	pBefore, rBefore := p.routed(t, "reads", prim.Name), p.routed(t, "reads", repl.Name)
	for i := 0; i < reads; i++ {
		if got := mustValue(t, a, "SELECT COUNT(*) FROM tmp"); got != "2" {
			t.Fatalf("A counts %s rows in its temporary table, want 2", got)
		}
		if got := mustValue(t, a, "SELECT id FROM tmp WHERE id = ?", 20); got != "20" {
			t.Fatalf("A's prepared read of its temporary table: %s, want 20", got)
		}
		if got := mustValue(t, a, "SELECT COUNT(*) FROM t"); got != "3" {
			t.Fatalf("A counts %s rows in t, want 3", got)
		}
	}
	if d := p.routed(t, "reads", repl.Name) - rBefore; d != 0 {
		t.Errorf("%d of A's reads went to the replica %s", d, repl.Name)
	}
	if d := p.routed(t, "reads", prim.Name) - pBefore; d < 3*reads {
		t.Errorf("%d reads routed to the primary for A's %d", d, 3*reads)
	}

	// A temporary table hides A's real table of the same name from A only.
	mustExec(t, a, "CREATE TEMPORARY TABLE t (id INT)")
	if got := mustValue(t, a, "SELECT COUNT(*) FROM t"); got != "0" {
		t.Errorf("A counts %s rows in t: its (empty) temporary t should hide the real one, as on MariaDB", got)
	}
	if got := mustValue(t, a, "SELECT COUNT(*) FROM t WHERE id > ?", 0); got != "0" {
		t.Errorf("A's prepared count of t: %s, want 0 (its temporary t)", got)
	}

	pBefore, rBefore = p.routed(t, "reads", prim.Name), p.routed(t, "reads", repl.Name)
	for i := 0; i < reads; i++ {
		if got := mustValue(t, b, "SELECT COUNT(*) FROM t"); got != "3" {
			t.Fatalf("B counts %s rows in t, want the real table's 3", got)
		}
	}
	if d := p.routed(t, "reads", repl.Name) - rBefore; d != reads {
		t.Errorf("%d of B's %d reads went to the replica", d, reads)
	}
	if d := p.routed(t, "reads", prim.Name) - pBefore; d != 0 {
		t.Errorf("%d of B's reads went to the primary", d)
	}
	for _, q := range []string{"SELECT COUNT(*) FROM tmp", "SELECT /*+ strata:primary */ COUNT(*) FROM tmp"} {
		if v, err := value(b, q); errNumber(err) != 1146 {
			t.Errorf("B: %s: %s, %v; want 1146: the temporary table is A's", q, v, err)
		}
	}
	if v, err := value(b, "SELECT COUNT(*) FROM tmp WHERE id = ?", 10); errNumber(err) != 1146 {
		t.Errorf("B's prepared read of A's temporary table: %s, %v; want 1146", v, err)
	}

	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	p.waitIdle(t, 0)
	c := p.one(t, "app")
	if v, err := value(c, "SELECT /*+ strata:primary */ COUNT(*) FROM tmp"); errNumber(err) != 1146 {
		t.Errorf("after A left, another session reads its temporary table on the primary: %s, %v; want 1146", v, err)
	}
	if got := mustValue(t, c, "SELECT /*+ strata:primary */ COUNT(*) FROM t"); got != "3" {
		t.Errorf("after A left, t has %s rows on the primary, want 3", got)
	}
}

// TestProxyReservedSwitchover: a session holds a named lock and a temporary
// table on its reserved connection to s0's primary when STRATA SWITCHOVER
// makes the replica the primary. The switchover closes that connection, so
// the old primary releases the lock at once; the lock namespace is now the
// new primary's, where another client takes the lock (the holder has not
// been told yet: as when a client's connection to one MySQL server dies,
// it learns at its next statement). That statement fails with 2013 saying
// the temporary tables and locks are gone; the session then works on the
// new primary, where its temporary table does not exist, and when it ends
// nothing stays reserved or in use. A session whose GET_LOCK failed holds
// a reserved connection all the same, and gets the 2013 too.
func TestProxyReservedSwitchover(t *testing.T) {
	topo := localdb.StartForTest(t, localdb.TestConfig(1, 1))
	sh := topo.Shards()[0]
	oldP, newP := sh.Primary(), sh.Replicas()[0]
	p := startProxy(t, topo, func(c *config.Config) { c.ReadWrite.DrainTimeout = 500 * time.Millisecond })
	admin := p.open(t, "app", 1)
	mustExec(t, admin, "CREATE TABLE t (id INT PRIMARY KEY)")
	mustExec(t, admin, "INSERT INTO t VALUES (1), (2), (3)")
	ctx := context.Background()
	if err := topo.WaitReplicated(ctx); err != nil {
		t.Fatal(err)
	}
	const lock = "rsv_switchover"
	a, b, c := p.one(t, "app"), p.one(t, "app"), p.one(t, "app")
	if got := mustValue(t, a, "SELECT GET_LOCK('"+lock+"', 0)"); got != "1" {
		t.Fatalf("A GET_LOCK = %s", got)
	}
	mustExec(t, a, "CREATE TEMPORARY TABLE tmp (id INT)")
	mustExec(t, a, "INSERT INTO tmp VALUES (1)")
	p.waitIdle(t, 1) // the lock and the table share one connection
	if got := mustValue(t, c, "SELECT IS_FREE_LOCK('"+lock+"')"); got != "0" {
		t.Fatalf("C IS_FREE_LOCK of A's lock = %s, want 0", got)
	}
	// B's GET_LOCK fails, and reserves B's connection all the same.
	if got := mustValue(t, b, "SELECT GET_LOCK('"+lock+"', 0)"); got != "0" {
		t.Fatalf("B GET_LOCK of A's lock = %s, want 0", got)
	}
	p.waitIdle(t, 2)
	direct, err := oldP.OpenAdmin("")
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	holder := mustValue(t, direct, "SELECT IS_USED_LOCK('"+lock+"')")

	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	start := time.Now()
	if _, err := admin.ExecContext(sctx, "STRATA SWITCHOVER SHARD s0 TO "+newP.Name); err != nil {
		t.Fatalf("switchover with a reserved connection on the old primary: %v", err)
	}
	t.Logf("switchover took %v", time.Since(start))

	// On the old primary, the holder's connection is gone and so is the lock.
	deadline := time.Now().Add(5 * time.Second)
	for {
		free := mustValue(t, direct, "SELECT IS_FREE_LOCK('"+lock+"')")
		n := mustValue(t, direct, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = "+holder)
		if free == "1" && n == "0" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("old primary %s after the switchover: IS_FREE_LOCK = %s, holder's connection %s present %s", oldP.Name, free, holder, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Through the proxy the lock is the new primary's: C takes it, before
	// A has sent anything.
	if got := mustValue(t, c, "SELECT GET_LOCK('"+lock+"', 0)"); got != "1" {
		t.Errorf("C GET_LOCK after the switchover = %s, want 1", got)
	}
	if got := mustValue(t, c, "SELECT RELEASE_LOCK('"+lock+"')"); got != "1" {
		t.Errorf("C RELEASE_LOCK = %s", got)
	}
	// B's connection was reserved too: B is told so, once.
	if v, err := value(b, "SELECT IS_FREE_LOCK('"+lock+"')"); errNumber(err) != 2013 {
		t.Errorf("B's first statement after the switchover: %s, %v; want 2013", v, err)
	}
	if got := mustValue(t, b, "SELECT IS_FREE_LOCK('"+lock+"')"); got != "1" {
		t.Errorf("B IS_FREE_LOCK after the switchover = %s, want 1", got)
	}

	// A's next statement on the shard says what it lost, at once.
	start = time.Now()
	v, err := value(a, "SELECT COUNT(*) FROM tmp")
	if errNumber(err) != 2013 || !strings.Contains(err.Error(), "temporary tables") || !strings.Contains(err.Error(), "named locks") {
		t.Fatalf("A's first statement after the switchover: %s, %v; want 2013 saying its temporary tables and locks are gone", v, err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("A's first statement after the switchover took %v", d)
	}
	t.Logf("A after the switchover: %v", err)
	p.waitIdle(t, 1) // C's, on the new primary
	if c.Close() != nil || b.Close() != nil {
		t.Fatal("close")
	}
	p.waitIdle(t, 0)

	// Then A goes on, on the new primary, without its temporary table.
	if v, err := value(a, "SELECT COUNT(*) FROM tmp"); errNumber(err) != 1146 {
		t.Errorf("A's temporary table after the switchover: %s, %v; want 1146 (gone, as after a reconnect)", v, err)
	}
	mustExec(t, a, "INSERT INTO t VALUES (4)")
	if got := mustValue(t, a, "SELECT COUNT(*) FROM t"); got != "4" {
		t.Errorf("A counts %s rows in t, want 4", got)
	}
	if got, err := newP.QueryString(ctx, "SELECT COUNT(*) FROM app.t"); err != nil || got != "4" {
		t.Errorf("new primary %s has %s rows in t (%v), want 4", newP.Name, got, err)
	}
	if got := mustValue(t, a, "SELECT GET_LOCK('"+lock+"', 0)"); got != "1" {
		t.Errorf("A GET_LOCK on the new primary = %s, want 1", got)
	}
	if got := mustValue(t, admin, "SELECT IS_FREE_LOCK('"+lock+"')"); got != "0" {
		t.Errorf("IS_FREE_LOCK of A's new lock = %s, want 0", got)
	}
	p.waitIdle(t, 1)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	p.waitIdle(t, 0)
	// The proxy has closed A's connection; MariaDB frees the lock when its
	// thread for it sees the close, a moment later on a loaded machine.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		got := mustValue(t, admin, "SELECT IS_FREE_LOCK('"+lock+"')")
		if got == "1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("IS_FREE_LOCK 10 s after A left = %s, want 1", got)
		}
	}
}

// TestProxyReservedTxSwitchover: a session with a temporary table has a
// transaction open on its reserved connection (writing both the table and
// a real one) when the primary changes. The switchover waits drain_timeout
// for it, then goes on; the transaction's next statement, or its COMMIT,
// fails with 2013 saying the temporary tables are gone too, and its write
// is nowhere; the session goes on on the new primary without its temporary
// table, and nothing stays reserved or in use.
func TestProxyReservedTxSwitchover(t *testing.T) {
	for _, next := range []string{"COMMIT", "INSERT INTO tmp VALUES (2)"} {
		t.Run(strings.Fields(next)[0], func(t *testing.T) { testReservedTxSwitchover(t, next) })
	}
}

func testReservedTxSwitchover(t *testing.T, next string) {
	topo := localdb.StartForTest(t, localdb.TestConfig(1, 1))
	sh := topo.Shards()[0]
	oldP, newP := sh.Primary(), sh.Replicas()[0]
	p := startProxy(t, topo, func(c *config.Config) { c.ReadWrite.DrainTimeout = 500 * time.Millisecond })
	admin := p.open(t, "app", 1)
	mustExec(t, admin, "CREATE TABLE t (id INT PRIMARY KEY)")
	ctx := context.Background()
	a := p.one(t, "app")
	mustExec(t, a, "CREATE TEMPORARY TABLE tmp (id INT)")
	mustExec(t, a, "BEGIN")
	mustExec(t, a, "INSERT INTO tmp VALUES (1)")
	mustExec(t, a, "INSERT INTO t VALUES (1)")
	p.waitIdle(t, 1)

	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	start := time.Now()
	if _, err := admin.ExecContext(sctx, "STRATA SWITCHOVER SHARD s0 TO "+newP.Name); err != nil {
		t.Fatalf("switchover with a transaction open on a reserved connection: %v", err)
	}
	t.Logf("switchover took %v", time.Since(start))

	_, err := a.ExecContext(sctx, next)
	t.Logf("%s after the switchover: %v", next, err)
	if errNumber(err) != 2013 || !strings.Contains(err.Error(), "temporary tables") {
		t.Fatalf("%s in a transaction open on the reserved connection across the switchover: %v, want 2013 saying the temporary tables are gone", next, err)
	}
	p.waitIdle(t, 0)
	if next != "COMMIT" {
		if _, err := a.ExecContext(sctx, "COMMIT"); errNumber(err) != 2013 {
			t.Errorf("COMMIT of the lost transaction: %v, want 2013", err)
		}
	}
	if v, err := value(a, "SELECT COUNT(*) FROM tmp"); errNumber(err) != 1146 {
		t.Errorf("A's temporary table after the switchover: %s, %v; want 1146", v, err)
	}
	mustExec(t, a, "INSERT INTO t VALUES (2)")
	pos, err := newP.QueryString(ctx, "SELECT @@global.gtid_binlog_pos")
	if err != nil {
		t.Fatal(err)
	}
	if v, err := oldP.QueryString(ctx, "SELECT MASTER_GTID_WAIT('"+pos+"', 10)"); err != nil || v != "0" {
		t.Fatalf("%s did not catch up with the new primary: %s %v", oldP.Name, v, err)
	}
	for _, s := range sh.Servers() {
		if ids, err := s.QueryString(ctx, "SELECT GROUP_CONCAT(id ORDER BY id) FROM app.t"); err != nil || ids != "2" {
			t.Errorf("%s has rows %q (%v) in t, want only 2: the transaction cut by the switchover wrote nothing", s.Name, ids, err)
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	p.waitIdle(t, 0)
}

// TestProxyReservedLockTablesSwitchover: a session holds LOCK TABLES on
// its reserved connection (idle, between statements) when a switchover
// starts. With READ locks the switchover goes through and the session's
// next statement gets the 2013. WRITE locks hold off MariaDB's SET GLOBAL
// read_only = 1, so the switchover is refused after its bounded wait
// (drain_timeout, at least 1 s) and undone: the shard stays on its primary,
// writable, and the session keeps its locks. Once it unlocks, the
// switchover goes through (its connection, still reserved, is then lost).
func TestProxyReservedLockTablesSwitchover(t *testing.T) {
	for _, mode := range []string{"READ", "WRITE"} {
		t.Run(mode, func(t *testing.T) {
			topo := localdb.StartForTest(t, localdb.TestConfig(1, 1))
			sh := topo.Shards()[0]
			oldP, newP := sh.Primary(), sh.Replicas()[0]
			p := startProxy(t, topo, func(c *config.Config) { c.ReadWrite.DrainTimeout = 500 * time.Millisecond })
			admin := p.open(t, "app", 1)
			mustExec(t, admin, "CREATE TABLE t (id INT PRIMARY KEY)")
			a := p.one(t, "app")
			mustExec(t, a, "LOCK TABLES t "+mode)
			p.waitIdle(t, 1)

			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			switchover := func() error {
				start := time.Now()
				_, err := admin.ExecContext(ctx, "STRATA SWITCHOVER SHARD s0 TO "+newP.Name)
				t.Logf("switchover: %v after %v", err, time.Since(start))
				if d := time.Since(start); d > 5*time.Second {
					t.Errorf("switchover took %v", d)
				}
				return err
			}
			primary := func() string {
				name, _, _ := p.srv.ReadWrite().Fleet().Primary("s0")
				return name
			}
			if mode == "WRITE" {
				err := switchover()
				if err == nil || !strings.Contains(err.Error(), "read_only") {
					t.Fatalf("switchover with LOCK TABLES WRITE held on the primary: %v, want refused (read_only held off)", err)
				}
				if got := primary(); got != oldP.Name {
					t.Fatalf("primary %s after the refused switchover, want %s", got, oldP.Name)
				}
				// A keeps its locks and its connection; it writes under them.
				mustExec(t, a, "INSERT INTO t VALUES (1)")
				if got := mustValue(t, a, "SELECT COUNT(*) FROM t"); got != "1" {
					t.Errorf("A counts %s rows under its lock, want 1", got)
				}
				mustExec(t, a, "UNLOCK TABLES")
				mustExec(t, admin, "INSERT INTO t VALUES (2)")
			}
			if err := switchover(); err != nil {
				t.Fatal(err)
			}
			if got := primary(); got != newP.Name {
				t.Fatalf("primary %s after the switchover, want %s", got, newP.Name)
			}
			if v, err := value(a, "SELECT COUNT(*) FROM t"); errNumber(err) != 2013 || !strings.Contains(err.Error(), "table locks") {
				t.Errorf("A's first statement after the switchover: %s, %v; want 2013 saying its table locks are gone", v, err)
			}
			p.waitIdle(t, 0)
			mustExec(t, a, "UNLOCK TABLES") // nothing held: an OK
			mustExec(t, a, "INSERT INTO t VALUES (3)")
			mustExec(t, admin, "INSERT INTO t VALUES (4)")
			want := "3,4"
			if mode == "WRITE" {
				want = "1,2,3,4"
			}
			if got, err := newP.QueryString(ctx, "SELECT GROUP_CONCAT(id ORDER BY id) FROM app.t"); err != nil || got != want {
				t.Errorf("new primary has rows %q (%v), want %s", got, err, want)
			}
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			p.waitIdle(t, 0)
		})
	}
}

// TestProxyReservedLockOwner: IS_USED_LOCK(name) = CONNECTION_ID(), the
// way a client asks whether it still holds a lock, is 1 for the holder and
// 0 for another session, text and prepared; after a switchover took the
// lock away (and the holder was told), it is NULL for the former holder.
func TestProxyReservedLockOwner(t *testing.T) {
	topo := localdb.StartForTest(t, localdb.TestConfig(1, 1))
	newP := topo.Shards()[0].Replicas()[0]
	p := startProxy(t, topo, nil)
	a, b := p.one(t, "app"), p.one(t, "app")
	const lock = "rsv_owner"
	const mine = "SELECT IS_USED_LOCK('" + lock + "') = CONNECTION_ID()"
	if got := mustValue(t, a, "SELECT GET_LOCK('"+lock+"', 0)"); got != "1" {
		t.Fatalf("A GET_LOCK = %s", got)
	}
	if got := mustValue(t, a, mine); got != "1" {
		t.Errorf("holder: %s = %s, want 1", mine, got)
	}
	if got := mustValue(t, a, "SELECT IS_USED_LOCK(?) = CONNECTION_ID()", lock); got != "1" {
		t.Errorf("holder, prepared: IS_USED_LOCK(?) = CONNECTION_ID() is %s, want 1", got)
	}
	if got := mustValue(t, b, mine); got != "0" {
		t.Errorf("other session: %s = %s, want 0", mine, got)
	}
	// CONNECTION_ID() alone stays the session's id.
	if a1, b1 := mustValue(t, a, "SELECT CONNECTION_ID()"), mustValue(t, b, "SELECT CONNECTION_ID()"); a1 == b1 {
		t.Errorf("both sessions have CONNECTION_ID() %s", a1)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	admin := p.open(t, "app", 1)
	if _, err := admin.ExecContext(ctx, "STRATA SWITCHOVER SHARD s0 TO "+newP.Name); err != nil {
		t.Fatal(err)
	}
	if _, err := value(a, mine); errNumber(err) != 2013 {
		t.Errorf("holder's first statement after the switchover: %v, want 2013", err)
	}
	if got, err := value(a, mine); err != nil || got != "" {
		t.Errorf("former holder after the switchover: %s = %q, %v; want NULL (the lock is free)", mine, got, err)
	}
	if a.Close() != nil || b.Close() != nil {
		t.Fatal("close")
	}
	p.waitIdle(t, 0)
}
