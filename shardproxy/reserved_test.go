package shardproxy_test

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/strata-db/strata/shardproxy/proxytest"
)

// Reserved connections (reserve.go): state a statement leaves on its
// backend connection stays the client's, for the client's life, and goes
// with it. Every test here uses real clients over a real MariaDB.

// openOne is a client pool of one connection: one proxy session.
func openOne(t *testing.T, p *proxytest.Proxy, db string) *sql.DB {
	t.Helper()
	d := p.Open(t, db)
	d.SetMaxOpenConns(1)
	d.SetMaxIdleConns(1)
	return d
}

// waitReserved waits until the proxy holds n reserved connections (a
// session's end is handled after its client has gone).
func waitReserved(t *testing.T, p *proxytest.Proxy, n float64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := p.Metric(t, "strata_proxy_reserved_connections")
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("strata_proxy_reserved_connections = %v, want %v", got, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestReservedTempTable(t *testing.T) {
	p := proxytest.Start(t, proxytest.SharedTopology(t), nil)
	a, b := openOne(t, p, p.Test), openOne(t, p, p.Test)
	proxytest.MustExec(t, a, "CREATE TEMPORARY TABLE rsv_tmp (id INT)")
	waitReserved(t, p, 1)
	proxytest.MustExec(t, a, "INSERT INTO rsv_tmp VALUES (1), (2)")
	if got := query1(t, a, "SELECT COUNT(*) FROM rsv_tmp"); got != "2" {
		t.Errorf("A sees %s rows in its temporary table, want 2", got)
	}
	// Prepared (server-side) statements reach it too.
	if got := query1(t, a, "SELECT COUNT(*) FROM rsv_tmp WHERE id = ?", 2); got != "1" {
		t.Errorf("prepared: A counts %s, want 1", got)
	}
	var n int
	if err := b.QueryRow("SELECT COUNT(*) FROM rsv_tmp").Scan(&n); proxytest.SQLErr(err) != 1146 {
		t.Errorf("B reads A's temporary table: %d rows, err %v; want 1146", n, err)
	}
	if got := p.Metric(t, "strata_proxy_reservations_total", "reason", "CREATE TEMPORARY TABLE"); got != 1 {
		t.Errorf("strata_proxy_reservations_total{reason=CREATE TEMPORARY TABLE} = %v", got)
	}
	proxytest.MustExec(t, a, "DROP TEMPORARY TABLE rsv_tmp")
	proxytest.MustExec(t, a, "CREATE TEMPORARY TABLE rsv_tmp (id INT)")
	proxytest.MustExec(t, a, "INSERT INTO rsv_tmp VALUES (7)")
	waitReserved(t, p, 1) // still one connection: one per shard
	a.Close()
	waitReserved(t, p, 0)
	// The session's connection was closed, not pooled: nobody sees it.
	for i := 0; i < 3; i++ {
		c := openOne(t, p, p.Test)
		if err := c.QueryRow("SELECT COUNT(*) FROM rsv_tmp").Scan(&n); proxytest.SQLErr(err) != 1146 {
			t.Errorf("after A left, a new client reads its temporary table: %d rows, err %v; want 1146", n, err)
		}
	}
}

// TestReservedTempShadow: a temporary table of A named like B's real table
// does not hide it from B, during A's session or after.
func TestReservedTempShadow(t *testing.T) {
	p := proxytest.Start(t, proxytest.SharedTopology(t), nil)
	a, b := openOne(t, p, p.Test), openOne(t, p, p.Test)
	proxytest.MustExec(t, b, "CREATE TABLE IF NOT EXISTS rsv_real (id INT PRIMARY KEY)")
	proxytest.MustExec(t, b, "DELETE FROM rsv_real")
	proxytest.MustExec(t, b, "INSERT INTO rsv_real VALUES (1)")
	proxytest.MustExec(t, a, "CREATE TEMPORARY TABLE rsv_real (id INT PRIMARY KEY)")
	if got := query1(t, a, "SELECT COUNT(*) FROM rsv_real"); got != "0" {
		t.Errorf("A counts %s rows: its temporary table should hide the real one from A (as in MariaDB)", got)
	}
	if got := query1(t, b, "SELECT COUNT(*) FROM rsv_real"); got != "1" {
		t.Errorf("B counts %s rows in rsv_real, want 1", got)
	}
	a.Close()
	waitReserved(t, p, 0)
	if got := query1(t, b, "SELECT COUNT(*) FROM rsv_real"); got != "1" {
		t.Errorf("B counts %s rows in rsv_real after A left, want 1", got)
	}
	proxytest.MustExec(t, b, "INSERT INTO rsv_real VALUES (2)")
	direct, err := sql.Open("mysql", p.Topo.Shards()[0].Primary().DSN(p.Test))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	if got := query1(t, direct, "SELECT COUNT(*) FROM rsv_real"); got != "2" {
		t.Errorf("B's INSERT did not reach the real table: it holds %s rows", got)
	}
}

func TestReservedGetLock(t *testing.T) {
	p := proxytest.Start(t, proxytest.SharedTopology(t), nil)
	a, b := openOne(t, p, p.Test), openOne(t, p, p.Demo)
	const lock = "strata_rsv_lock"
	if got := query1(t, a, "SELECT GET_LOCK('"+lock+"', 0)"); got != "1" {
		t.Fatalf("A GET_LOCK = %s", got)
	}
	waitReserved(t, p, 1)
	// B, in another database, as a text and as a prepared statement.
	if got := query1(t, b, "SELECT GET_LOCK('"+lock+"', 0)"); got != "0" {
		t.Errorf("B GET_LOCK of a lock A holds = %s, want 0", got)
	}
	if got := query1(t, b, "SELECT GET_LOCK(?, 0)", lock); got != "0" {
		t.Errorf("B prepared GET_LOCK of a lock A holds = %s, want 0", got)
	}
	if got := query1(t, b, "SELECT IS_FREE_LOCK(?)", lock); got != "0" {
		t.Errorf("B IS_FREE_LOCK = %s, want 0", got)
	}
	if got := query1(t, b, "SELECT RELEASE_LOCK('"+lock+"')"); got != "0" {
		t.Errorf("B RELEASE_LOCK of A's lock = %s, want 0 (not B's)", got)
	}
	// A in a transaction on another shard: lock functions run outside it.
	ad := openOne(t, p, p.Demo)
	proxytest.MustExec(t, ad, "CREATE TABLE IF NOT EXISTS customers (id BIGINT PRIMARY KEY, name VARCHAR(40))")
	var far int64 = 7000
	for shardOf(t, p, far) == p.Server.VSchema().Shards[0] {
		far++
	}
	proxytest.MustExec(t, ad, "DELETE FROM customers WHERE id = ?", far)
	c := conn(t, ad)
	execC(t, c, "BEGIN")
	execC(t, c, "INSERT INTO customers (id, name) VALUES (?, 'x')", far)
	if got := query1(t, c, "SELECT GET_LOCK('"+lock+"2', 0)"); got != "1" {
		t.Errorf("GET_LOCK in a transaction on shard %s = %s", shardOf(t, p, far), got)
	}
	execC(t, c, "ROLLBACK")
	if got := query1(t, b, "SELECT IS_FREE_LOCK('"+lock+"2')"); got != "0" {
		t.Errorf("lock taken in a rolled-back transaction: IS_FREE_LOCK = %s, want 0 (locks are not transactional)", got)
	}
	if got := query1(t, c, "SELECT RELEASE_LOCK('"+lock+"2')"); got != "1" {
		t.Errorf("RELEASE_LOCK by its holder = %s", got)
	}
	if got := query1(t, c, "SELECT COUNT(*) FROM customers WHERE id = ?", far); got != "0" {
		t.Errorf("rolled-back insert is there: %s", got)
	}
	// A leaves without releasing: its lock goes with it.
	a.Close()
	waitReserved(t, p, 2) // B (its GET_LOCK attempts reserve too, whatever they return) and c
	// The proxy has closed A's shard connection; MariaDB frees the lock
	// when its thread for it sees the close, a moment later on a loaded
	// machine.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		got := query1(t, b, "SELECT IS_FREE_LOCK('"+lock+"')")
		if got == "1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lock still taken 10 s after its holder left: IS_FREE_LOCK = %s", got)
		}
	}
	if got := query1(t, b, "SELECT GET_LOCK('"+lock+"', 0)"); got != "1" {
		t.Errorf("B GET_LOCK after A left = %s", got)
	}
	if got := query1(t, b, "SELECT RELEASE_LOCK('"+lock+"')"); got != "1" {
		t.Errorf("B RELEASE_LOCK = %s", got)
	}
	// A lock function with a table is refused, saying how to write it.
	var s string
	err := b.QueryRow("SELECT GET_LOCK(name, 0) FROM customers LIMIT 1").Scan(&s)
	if proxytest.SQLErr(err) != 1235 || !strings.Contains(err.Error(), "without tables") {
		t.Errorf("GET_LOCK with a table: %v, want 1235", err)
	}
}

// TestReservedTempTableNoCommit: CREATE and DROP TEMPORARY TABLE do not
// commit the open transaction, and the transaction runs on the connection
// that holds the temporary table; compared with MariaDB itself.
func TestReservedTempTableNoCommit(t *testing.T) {
	p := proxytest.Start(t, proxytest.SharedTopology(t), nil)
	direct, err := sql.Open("mysql", p.Topo.Shards()[0].Primary().DSN(p.Test))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { direct.Close() })
	proxytest.MustExec(t, direct, "CREATE TABLE IF NOT EXISTS rsv_tx (id INT PRIMARY KEY)")
	steps := []string{
		"DELETE FROM rsv_tx",
		"BEGIN",
		"INSERT INTO rsv_tx VALUES (1)",
		"CREATE TEMPORARY TABLE rsv_tmp2 (id INT) ENGINE=InnoDB",
		"INSERT INTO rsv_tmp2 VALUES (10)",
		"SELECT COUNT(*) FROM rsv_tmp2",
		"ROLLBACK",
		"SELECT COUNT(*) FROM rsv_tx",
		"SELECT COUNT(*) FROM rsv_tmp2",
		"BEGIN",
		"INSERT INTO rsv_tx VALUES (2)",
		"DROP TEMPORARY TABLE rsv_tmp2",
		"ROLLBACK",
		"SELECT COUNT(*) FROM rsv_tx",
		"SELECT COUNT(*) FROM rsv_tmp2",
		"CREATE TEMPORARY TABLE rsv_tmp2 (id INT)",
		"BEGIN",
		"INSERT INTO rsv_tmp2 VALUES (1)",
		"INSERT INTO rsv_tx VALUES (3)",
		"COMMIT",
		"SELECT (SELECT COUNT(*) FROM rsv_tx) + 10 * (SELECT COUNT(*) FROM rsv_tmp2)",
	}
	run := func(db *sql.DB) []string {
		c := conn(t, db)
		var out []string
		for _, q := range steps {
			if !strings.HasPrefix(q, "SELECT") {
				if _, err := c.ExecContext(context.Background(), q); err != nil {
					out = append(out, fmt.Sprintf("%s: error %d", q, proxytest.SQLErr(err)))
				}
				continue
			}
			var v string
			if err := c.QueryRowContext(context.Background(), q).Scan(&v); err != nil {
				v = fmt.Sprintf("error %d", proxytest.SQLErr(err))
			}
			out = append(out, q+": "+v)
		}
		return out
	}
	want := run(direct)
	got := run(p.Open(t, p.Test))
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("through the proxy:\n%s\nMariaDB:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !strings.Contains(strings.Join(want, "\n"), "SELECT COUNT(*) FROM rsv_tx: 0") {
		t.Errorf("MariaDB committed on CREATE TEMPORARY TABLE? %q", want)
	}
}

func TestReservedConnectionID(t *testing.T) {
	p := proxytest.Start(t, proxytest.SharedTopology(t), nil)
	a, b := openOne(t, p, p.Test), openOne(t, p, p.Test)
	ida := query1(t, a, "SELECT CONNECTION_ID()")
	idb := query1(t, b, "SELECT CONNECTION_ID()")
	if ida == idb {
		t.Errorf("two clients have the same CONNECTION_ID() %s", ida)
	}
	for i := 0; i < 3; i++ {
		if got := query1(t, a, "select connection_id()"); got != ida {
			t.Errorf("CONNECTION_ID() changed from %s to %s", ida, got)
		}
	}
	// The id SHOW PROCESSLIST shows for the session, in any statement form.
	var found bool
	rows, err := b.Query("SHOW PROCESSLIST")
	if err != nil {
		t.Fatal(err)
	}
	cols, _ := rows.Columns()
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(vals))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		found = found || vals[0].String == ida
	}
	rows.Close()
	if !found {
		t.Errorf("CONNECTION_ID() %s is not in SHOW PROCESSLIST", ida)
	}
	if got := query1(t, a, "SELECT CONNECTION_ID() + 0 FROM dual WHERE ? = 1", 1); got != ida {
		t.Errorf("prepared CONNECTION_ID() + 0 = %s, want %s", got, ida)
	}
	var name string
	r, err := a.Query("SELECT CONNECTION_ID()")
	if err == nil {
		cols, _ := r.Columns()
		name = strings.Join(cols, ",")
		r.Close()
	}
	if !strings.EqualFold(name, "CONNECTION_ID()") {
		t.Errorf("column name %q (%v), want CONNECTION_ID()", name, err)
	}
}

// TestReservedFastLane: ordinary sessions keep the fast lane; a session
// holding a reserved connection is served off it, correctly.
func TestReservedFastLane(t *testing.T) {
	p := proxytest.Start(t, proxytest.SharedTopology(t), nil)
	a := openOne(t, p, p.Test)
	proxytest.MustExec(t, a, "CREATE TABLE IF NOT EXISTS rsv_lane (id INT PRIMARY KEY, v INT)")
	proxytest.MustExec(t, a, "REPLACE INTO rsv_lane VALUES (1, 10), (2, 20)")
	lane := func() uint64 { return p.Server.Stats().FastLaneHits }
	before := lane()
	for i := 0; i < 5; i++ {
		if got := query1(t, a, "SELECT v FROM rsv_lane WHERE id = 1"); got != "10" {
			t.Fatalf("v = %s", got)
		}
	}
	if lane() <= before {
		t.Fatalf("an ordinary session's reads took no fast lane (strata_proxy_fast_lane_statements_total %d -> %d)", before, lane())
	}
	proxytest.MustExec(t, a, "CREATE TEMPORARY TABLE rsv_lane_tmp (id INT)")
	proxytest.MustExec(t, a, "INSERT INTO rsv_lane_tmp VALUES (5)")
	before = lane()
	for i := 0; i < 5; i++ {
		if got := query1(t, a, "SELECT v FROM rsv_lane WHERE id = 2"); got != "20" {
			t.Fatalf("reserved session: v = %s, want 20", got)
		}
		if got := query1(t, a, "SELECT v FROM rsv_lane WHERE id = ?", 1); got != "10" {
			t.Fatalf("reserved session, prepared: v = %s, want 10", got)
		}
		if got := query1(t, a, "SELECT COUNT(*) FROM rsv_lane_tmp"); got != "1" {
			t.Fatalf("reserved session: temporary table count %s", got)
		}
	}
	if n := lane() - before; n != 0 {
		t.Errorf("a session with a reserved connection took the fast lane %d times", n)
	}
	// FOUND_ROWS() and warnings are asked on the reserved connection too.
	if got := query1(t, a, "SELECT SQL_CALC_FOUND_ROWS v FROM rsv_lane ORDER BY id LIMIT 1"); got != "10" {
		t.Errorf("SQL_CALC_FOUND_ROWS: v = %s", got)
	}
	if got := query1(t, a, "SELECT FOUND_ROWS()"); got != "2" {
		t.Errorf("reserved session: FOUND_ROWS() = %s, want 2", got)
	}
	proxytest.MustExec(t, a, "INSERT IGNORE INTO rsv_lane_tmp VALUES ('x')")
	if got := query1(t, a, "SELECT @@warning_count"); got != "1" {
		t.Errorf("reserved session: @@warning_count = %s after a truncating insert, want 1", got)
	}
	// Another session still gets the lane meanwhile.
	b := openOne(t, p, p.Test)
	before = lane()
	for i := 0; i < 3; i++ {
		_ = query1(t, b, "SELECT v FROM rsv_lane WHERE id = 2")
	}
	if lane() <= before {
		t.Errorf("another session lost the fast lane")
	}
	// Writes on the reserved session land where everyone sees them.
	proxytest.MustExec(t, a, "UPDATE rsv_lane SET v = 21 WHERE id = 2")
	if got := query1(t, b, "SELECT v FROM rsv_lane WHERE id = 2"); got != "21" {
		t.Errorf("B sees v = %s after A's update, want 21", got)
	}
}

// TestReservedReset: COM_RESET_CONNECTION gives up the reserved connection
// (closed, not pooled): the temporary table is gone for the session too.
func TestReservedReset(t *testing.T) {
	p := proxytest.Start(t, proxytest.SharedTopology(t), nil)
	c := proxytest.Login(t, p.Server.Addr(), "root", p.Test)
	c.Send(0, []byte("\x03CREATE TEMPORARY TABLE rsv_reset (id INT)"))
	if pkt := c.Recv(); pkt[0] != 0x00 {
		t.Fatalf("create: %q", pkt)
	}
	waitReserved(t, p, 1)
	c.Send(0, []byte{0x1f})
	if pkt := c.Recv(); pkt[0] != 0x00 {
		t.Fatalf("reset: %q", pkt)
	}
	waitReserved(t, p, 0)
	c.Send(0, []byte("\x03SELECT COUNT(*) FROM rsv_reset"))
	if pkt := c.Recv(); proxytest.ErrCode(pkt) != 1146 {
		t.Errorf("after reset the temporary table is still there: %q", pkt)
	}
}

// TestReservedRefused: what cannot be reserved right is refused with 1235
// and a reason.
func TestReservedRefused(t *testing.T) {
	p := proxytest.Start(t, proxytest.SharedTopology(t), nil)
	d := openOne(t, p, p.Demo)
	_, err := d.Exec("CREATE TEMPORARY TABLE rsv_sharded (id INT)")
	if proxytest.SQLErr(err) != 1235 || !strings.Contains(err.Error(), "sharded database demo") {
		t.Errorf("temporary table in a sharded database: %v, want 1235", err)
	}
	tst := openOne(t, p, p.Test)
	_, err = tst.Exec("CREATE TEMPORARY TABLE " + p.Demo + ".rsv_sharded (id INT)")
	if proxytest.SQLErr(err) != 1235 {
		t.Errorf("temporary table in a sharded database, qualified: %v, want 1235", err)
	}
	// Statements whose state stays on their connection (HANDLER, XA,
	// SQL-level PREPARE) pass through in an unsharded database on a
	// reserved connection (issue 9), and are refused in a sharded one.
	proxytest.MustExec(t, tst, "CREATE TABLE IF NOT EXISTS rsv_h (id INT PRIMARY KEY)")
	for _, q := range []string{"HANDLER rsv_h OPEN", "PREPARE s FROM 'SELECT 1'", "EXECUTE s", "HANDLER rsv_h READ FIRST", "HANDLER rsv_h CLOSE", "XA START 'rsv'", "XA END 'rsv'", "XA ROLLBACK 'rsv'"} {
		if _, err := tst.Exec(q); err != nil {
			t.Errorf("%s in an unsharded database: %v", q, err)
		}
	}
	waitReserved(t, p, 1)
	for _, q := range []string{"HANDLER customers OPEN", "XA START 'rsv'", "PREPARE s FROM 'SELECT 1'"} {
		if _, err := d.Exec(q); proxytest.SQLErr(err) != 1235 {
			t.Errorf("%s in a sharded database: %v, want 1235", q, err)
		}
	}
	tst.Close()
	waitReserved(t, p, 0)
}

// TestReservedLost: a reserved connection the server closed takes its
// state with it: the statement that finds it says so, and the session goes
// on.
func TestReservedLost(t *testing.T) {
	p := proxytest.Start(t, proxytest.SharedTopology(t), nil)
	a := openOne(t, p, p.Test)
	const lock = "strata_rsv_lost"
	if got := query1(t, a, "SELECT GET_LOCK('"+lock+"', 0)"); got != "1" {
		t.Fatalf("GET_LOCK = %s", got)
	}
	direct, err := sql.Open("mysql", p.Topo.Shards()[0].Primary().DSN(""))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	id := query1(t, direct, "SELECT IS_USED_LOCK('"+lock+"')")
	proxytest.MustExec(t, direct, "KILL "+id)
	var v string // any statement for the shard: SELECT 1 goes to the home shard
	err = a.QueryRow("SELECT 1").Scan(&v)
	if proxytest.SQLErr(err) != 2013 || !strings.Contains(err.Error(), "reserved connection") {
		t.Errorf("statement on the killed reserved connection: %v, want 2013 saying so", err)
	}
	waitReserved(t, p, 0)
	if got := query1(t, a, "SELECT IS_FREE_LOCK('"+lock+"')"); got != "1" {
		t.Errorf("IS_FREE_LOCK = %s after the holder's connection died", got)
	}
}

// TestReservedLockTables: LOCK TABLES holds its locks on the session's
// reserved connection until UNLOCK TABLES or the session's end.
func TestReservedLockTables(t *testing.T) {
	p := proxytest.Start(t, proxytest.SharedTopology(t), nil)
	a, b := openOne(t, p, p.Test), openOne(t, p, p.Test)
	proxytest.MustExec(t, a, "CREATE TABLE IF NOT EXISTS rsv_lt (id INT PRIMARY KEY)")
	proxytest.MustExec(t, a, "CREATE TABLE IF NOT EXISTS rsv_lt_other (id INT PRIMARY KEY)")
	proxytest.MustExec(t, a, "DELETE FROM rsv_lt")
	proxytest.MustExec(t, b, "SET SESSION lock_wait_timeout = 1")
	proxytest.MustExec(t, a, "LOCK TABLES rsv_lt WRITE")
	proxytest.MustExec(t, a, "INSERT INTO rsv_lt VALUES (1)")
	if got := query1(t, a, "SELECT COUNT(*) FROM rsv_lt"); got != "1" {
		t.Errorf("A counts %s", got)
	}
	var n int
	// As in MariaDB, the locking session may use only the tables it locked.
	if err := a.QueryRow("SELECT COUNT(*) FROM rsv_lt_other").Scan(&n); proxytest.SQLErr(err) != 1100 {
		t.Errorf("A reads a table it did not lock: %v, want 1100", err)
	}
	if err := b.QueryRow("SELECT COUNT(*) FROM rsv_lt").Scan(&n); proxytest.SQLErr(err) != 1205 {
		t.Errorf("B reads a table A locked for writing: %d, %v; want 1205 (lock wait timeout)", n, err)
	}
	proxytest.MustExec(t, a, "UNLOCK TABLES")
	if got := query1(t, b, "SELECT COUNT(*) FROM rsv_lt"); got != "1" {
		t.Errorf("B counts %s after UNLOCK TABLES", got)
	}
	proxytest.MustExec(t, a, "LOCK TABLES rsv_lt READ, "+p.Test+".rsv_lt_other AS o WRITE")
	if _, err := b.Exec("INSERT INTO rsv_lt VALUES (2)"); proxytest.SQLErr(err) != 1205 {
		t.Errorf("B writes a table A locked for reading: %v; want 1205", err)
	}
	// The locks go with the session.
	a.Close()
	waitReserved(t, p, 0)
	proxytest.MustExec(t, b, "INSERT INTO rsv_lt VALUES (2)")

	d := openOne(t, p, p.Demo)
	if _, err := d.Exec("LOCK TABLES customers READ"); proxytest.SQLErr(err) != 1235 || !strings.Contains(err.Error(), "sharded database demo") {
		t.Errorf("LOCK TABLES in a sharded database: %v, want 1235", err)
	}
	proxytest.MustExec(t, d, "UNLOCK TABLES") // dump tools send it whatever they locked
	if _, err := d.Exec("FLUSH TABLES WITH READ LOCK"); err == nil {
		t.Errorf("FLUSH TABLES WITH READ LOCK accepted: it would lock a pooled connection")
	}
	waitReserved(t, p, 0)
}

// TestReservedDumpRestore: mariadb-dump (which locks the tables it reads
// with LOCK TABLES ... READ LOCAL) and a restore of its output through the
// mariadb client (LOCK TABLES ... WRITE around the INSERTs) work through
// the proxy on an unsharded database.
func TestReservedDumpRestore(t *testing.T) {
	p := proxytest.Start(t, proxytest.SharedTopology(t), nil)
	bin, err := exec.LookPath("mariadb-dump")
	if err != nil {
		t.Fatalf("mariadb-dump not installed (make deps installs it): %v", err)
	}
	a := openOne(t, p, p.Test)
	proxytest.MustExec(t, a, "CREATE TABLE IF NOT EXISTS rsv_dump (id INT PRIMARY KEY, v VARCHAR(10))")
	proxytest.MustExec(t, a, "REPLACE INTO rsv_dump VALUES (1, 'x'), (2, 'y')")
	host, port, _ := net.SplitHostPort(p.Server.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	before := p.Metric(t, "strata_proxy_reservations_total", "reason", "LOCK TABLES")
	out, err := exec.CommandContext(ctx, bin, "--no-defaults", "-h"+host, "-P"+port, "-uroot", "--lock-tables", p.Test, "rsv_dump").CombinedOutput()
	if err != nil {
		t.Fatalf("mariadb-dump: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "(1,'x')") || !strings.Contains(string(out), "LOCK TABLES `rsv_dump` WRITE") {
		t.Fatalf("dump:\n%s", out)
	}
	if got := p.Metric(t, "strata_proxy_reservations_total", "reason", "LOCK TABLES"); got <= before {
		t.Errorf("mariadb-dump --lock-tables reserved no connection")
	}
	proxytest.MustExec(t, a, "DELETE FROM rsv_dump")
	if res, err := mariadbCLI(t, p, p.Test, string(out)); err != nil {
		t.Fatalf("restore: %v\n%s", err, res)
	}
	if got := query1(t, a, "SELECT GROUP_CONCAT(v ORDER BY id) FROM rsv_dump"); got != "x,y" {
		t.Errorf("restored rows %q, want x,y", got)
	}
	waitReserved(t, p, 0)
}

// TestReservedScatter: a session holding a reserved connection on one shard
// still reads and writes a sharded database across shards, its statements
// for that shard on the reserved connection.
func TestReservedScatter(t *testing.T) {
	p := proxytest.Start(t, proxytest.SharedTopology(t), nil)
	d := openOne(t, p, p.Demo)
	proxytest.MustExec(t, d, "CREATE TABLE IF NOT EXISTS customers (id BIGINT PRIMARY KEY, name VARCHAR(40))")
	proxytest.MustExec(t, d, "DELETE FROM customers WHERE id BETWEEN 9000 AND 9100")
	a, b, other := idsOnShards(t, p, 9000)
	if got := query1(t, d, "SELECT GET_LOCK('strata_rsv_scatter', 0)"); got != "1" {
		t.Fatalf("GET_LOCK = %s", got)
	}
	for _, id := range []int64{a, b, other} {
		proxytest.MustExec(t, d, "INSERT INTO customers (id, name) VALUES (?, 'n')", id)
	}
	if got := query1(t, d, "SELECT COUNT(*) FROM customers WHERE id BETWEEN 9000 AND 9100"); got != "3" {
		t.Errorf("scatter count %s, want 3", got)
	}
	c := conn(t, d)
	for _, id := range []int64{a, other} { // one transaction on each shard
		execC(t, c, "BEGIN")
		execC(t, c, "UPDATE customers SET name = 'tx' WHERE id = ?", id)
		execC(t, c, "COMMIT")
	}
	if got := query1(t, c, "SELECT COUNT(*) FROM customers WHERE name = 'tx' AND id BETWEEN 9000 AND 9100"); got != "2" {
		t.Errorf("committed updates: %s, want 2", got)
	}
	if got := query1(t, c, "SELECT RELEASE_LOCK('strata_rsv_scatter')"); got != "1" {
		t.Errorf("RELEASE_LOCK = %s", got)
	}
}
