package shardproxy

import (
	"bufio"
	"database/sql"
	"encoding/binary"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strata-db/strata/localdb"
	"github.com/strata-db/strata/shardproxy/config"
)

// Front-end guards from a review: a client that leaves or resets in the
// middle of a transaction, pipelined and byte-split commands, an error after
// rows in the fast lane, TLS. Where a probe can, it sends the same thing to
// a shard's MariaDB directly and to the proxy, and expects the proxy to
// answer as MariaDB does.

// probeLogin logs in to addr as user (no password) with the raw client of
// badinput_test.go (no CLIENT_DEPRECATE_EOF).
func probeLogin(t testing.TB, addr, user, db string) *rawConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
	c := &rawConn{t: t, c: nc, r: bufio.NewReader(nc)}
	if g := c.recv(); g[0] != 10 {
		t.Fatalf("greeting %q", g)
	}
	var resp []byte
	resp = binary.LittleEndian.AppendUint32(resp, 1<<9|1<<15|1<<19|1<<3)
	resp = binary.LittleEndian.AppendUint32(resp, 1<<24)
	resp = append(resp, 45)
	resp = append(resp, make([]byte, 23)...)
	resp = append(resp, user+"\x00"...)
	resp = append(resp, 0)
	resp = append(resp, db+"\x00"...)
	resp = append(resp, "mysql_native_password\x00"...)
	c.send(1, resp)
	for {
		pkt := c.recv()
		switch pkt[0] {
		case 0x00:
			return c
		case 0xfe:
			c.send(c.seq, nil)
		default:
			t.Fatalf("login to %s: %q", addr, pkt)
		}
	}
}

// probeTargets are the same client against MariaDB and against the proxy.
type probeTarget struct {
	name       string
	addr, user string
}

func probeTargets(p *testProxy) []probeTarget {
	return []probeTarget{
		{"mariadb", p.topo.Shards()[0].Primary().Addr(), localdb.AppUser},
		{"proxy", p.srv.Addr(), "root"},
	}
}

// errCode is the code of an ERR packet, 0 for anything else.
func errCode(pkt []byte) uint16 {
	if len(pkt) < 3 || pkt[0] != 0xff {
		return 0
	}
	return binary.LittleEndian.Uint16(pkt[1:3])
}

// readResponse reads one whole text-protocol response (no DEPRECATE_EOF)
// and returns its first packet and its first row (nil if none).
func readResponse(c *rawConn) (first, row []byte) {
	first = c.recv()
	if first[0] == 0x00 || first[0] == 0xff {
		return first, nil
	}
	n := int(first[0])
	for i := 0; i < n; i++ {
		c.recv()
	}
	c.recv() // EOF
	for {
		pkt := c.recv()
		if pkt[0] == 0xff || (pkt[0] == 0xfe && len(pkt) < 9) {
			return first, row
		}
		if row == nil {
			row = pkt
		}
	}
}

// TestReviewProbeDisconnectInTx: a client that leaves in the middle of a
// transaction leaves no locks and no rows behind.
func TestReviewProbeDisconnectInTx(t *testing.T) {
	p := startProxy(t, sharedTopo(t), nil)
	db := p.open(t, "test")
	mustExec(t, db, "CREATE TABLE IF NOT EXISTS review_dtx (id INT PRIMARY KEY, v INT)")
	mustExec(t, db, "DELETE FROM review_dtx")
	mustExec(t, db, "INSERT INTO review_dtx VALUES (1, 0)")
	for _, begin := range []string{"BEGIN", "SET autocommit = 0"} {
		c := rawConnect(t, p, "test")
		for _, q := range []string{begin, "UPDATE review_dtx SET v = v + 1 WHERE id = 1", "INSERT INTO review_dtx VALUES (2, 0)"} {
			c.send(0, append([]byte{0x03}, q...))
			if pkt := c.recv(); pkt[0] != 0x00 {
				t.Fatalf("%s: %q", q, pkt)
			}
		}
		// Leave in the middle of a statement.
		c.send(0, []byte("\x03SELECT SLEEP(0.5)"))
		c.c.Close()
		o := conn(t, db)
		execC(t, o, "SET SESSION innodb_lock_wait_timeout = 3")
		execC(t, o, "UPDATE review_dtx SET v = v WHERE id = 1")
		if got := query1(t, o, "SELECT COUNT(*) FROM review_dtx"); got != "1" {
			t.Errorf("%s: rows after the client left: %s, want 1", begin, got)
		}
		if got := query1(t, o, "SELECT v FROM review_dtx WHERE id = 1"); got != "0" {
			t.Errorf("%s: v after the client left: %s, want 0", begin, got)
		}
	}
}

// TestReviewProbePipeline: commands sent in one write, lane and ordinary
// path mixed, are answered in order; a command split over many writes is
// answered whole.
func TestReviewProbePipeline(t *testing.T) {
	p := startProxy(t, sharedTopo(t), nil)
	c := rawConnect(t, p, "test")
	for round := 0; round < 3; round++ {
		var batch []byte
		for _, q := range []string{"SELECT 11", "SET @pp = 5", "SELECT @pp + 1", "SELECT 12", "SET @pq = 1"} {
			batch = append(batch, packet(0, append([]byte{0x03}, q...))...)
		}
		batch = append(batch, packet(0, []byte{0x0e})...)
		if _, err := c.c.Write(batch); err != nil {
			t.Fatal(err)
		}
		for i, want := range []string{"\x0211", "", "\x016", "\x0212", "", ""} {
			first, row := readResponse(c)
			if first[0] == 0xff || string(row) != want {
				t.Fatalf("round %d answer %d: %q %q, want row %q", round, i, first, row, want)
			}
		}
	}
	// One byte per write.
	for _, b := range packet(0, []byte("\x03SELECT 13")) {
		if _, err := c.c.Write([]byte{b}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	if _, row := readResponse(c); string(row) != "\x0213" {
		t.Fatalf("split statement: row %q", row)
	}
}

// TestReviewProbeInitDB: COM_INIT_DB of an unknown database.
func TestReviewProbeInitDB(t *testing.T) {
	p := startProxy(t, sharedTopo(t), nil)
	for _, tg := range probeTargets(p) {
		t.Run(tg.name, func(t *testing.T) {
			c := probeLogin(t, tg.addr, tg.user, "test")
			c.send(0, []byte("\x02review_no_such_db"))
			pkt := c.recv()
			if errCode(pkt) != 1049 {
				t.Errorf("COM_INIT_DB unknown: %q", pkt)
			}
			_, row := func() ([]byte, []byte) {
				c.send(0, []byte("\x03SELECT DATABASE()"))
				return readResponse(c)
			}()
			if string(row) != "\x04test" {
				t.Errorf("database after a failed COM_INIT_DB: %q", row)
			}
		})
	}
}

// TestReviewProbeLaneAbandoned: a client that leaves in the middle of a
// large fast-lane result leaves its backend connection closed, not pooled
// with the rest of the result unread.
func TestReviewProbeLaneAbandoned(t *testing.T) {
	p := startProxy(t, sharedTopo(t), func(c *config.Config) { c.Backend.MaxOpen = 1; c.Backend.MaxIdle = 1 })
	db := p.open(t, "test")
	for i := 0; i < 5; i++ {
		c := rawConnect(t, p, "test")
		c.send(0, []byte("\x03SELECT REPEAT('x', 1000000) AS a UNION ALL SELECT REPEAT('y', 1000000) UNION ALL SELECT "+strconv.Itoa(i)))
		c.recv()
		c.c.Close()
		var n int
		if err := db.QueryRow("SELECT 7").Scan(&n); err != nil || n != 7 {
			t.Fatalf("after an abandoned result: %d %v", n, err)
		}
	}
}

// TestReviewProbeTLS: the fast lane, large results and statements, and
// prepared statements over TLS.
func TestReviewProbeTLS(t *testing.T) {
	cert, key := selfSigned(t)
	p := startProxy(t, sharedTopo(t), func(c *config.Config) {
		c.TLS = config.TLS{Cert: cert, Key: key}
	})
	db := p.open(t, "test", "tls=skip-verify")
	db.SetMaxOpenConns(2)
	for i := 0; i < 20; i++ {
		var n int
		if err := db.QueryRow("SELECT " + strconv.Itoa(i)).Scan(&n); err != nil || n != i {
			t.Fatalf("SELECT %d: %d %v", i, n, err)
		}
		if err := db.QueryRow("SELECT ? + 1", i).Scan(&n); err != nil || n != i+1 {
			t.Fatalf("prepared: %d %v", n, err)
		}
	}
	var s string
	if err := db.QueryRow("SELECT REPEAT('x', 3000000)").Scan(&s); err != nil || len(s) != 3000000 {
		t.Fatalf("3 MB result: %d %v", len(s), err)
	}
	big := strings.Repeat("y", 5<<20)
	if err := db.QueryRow("SELECT LENGTH('" + big + "')").Scan(&s); err != nil || s != strconv.Itoa(len(big)) {
		t.Fatalf("5 MiB statement: %s %v", s, err)
	}
	if err := db.QueryRow("SELECT LENGTH(?)", big).Scan(&s); err != nil || s != strconv.Itoa(len(big)) {
		t.Fatalf("5 MiB parameter: %s %v", s, err)
	}
	rows, err := db.Query("SELECT seq, REPEAT('z', 1000) FROM seq_1_to_2000")
	if err != nil {
		t.Fatal(err)
	}
	k := 0
	for rows.Next() {
		k++
	}
	if err := rows.Err(); err != nil || k != 2000 {
		t.Fatalf("2000 rows over TLS: %d %v", k, err)
	}
	rows.Close()
}

// TestReviewProbeMidResultError: an error the shard sends after some rows
// (EXP overflows: 1690) reaches the client as that error, small or large
// result, lane or not, and the connection goes on.
func TestReviewProbeMidResultError(t *testing.T) {
	p := startProxy(t, sharedTopo(t), nil)
	direct, err := sql.Open("mysql", p.topo.Shards()[0].Primary().DSN("test"))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	db := p.open(t, "test")
	db.SetMaxOpenConns(1)
	read := func(d *sql.DB, q string) (int, error) {
		rows, err := d.Query(q)
		if err != nil {
			return 0, err
		}
		defer rows.Close()
		n := 0
		for rows.Next() {
			n++
		}
		return n, rows.Err()
	}
	lane := p.srv.x.Stats().FastLaneHits
	for _, q := range []string{
		"SELECT seq, EXP(seq) AS e FROM seq_1_to_1000",
		"SELECT seq, REPEAT('x', 1000) AS x, EXP(seq / 2) AS e FROM seq_1_to_2000",
	} {
		want, err := read(direct, q)
		if sqlErr(err) != 1690 {
			t.Fatalf("MariaDB: %s: %d rows, %v", q, want, err)
		}
		for i := 0; i < 3; i++ {
			n, err := read(db, q)
			if sqlErr(err) != 1690 || n > want {
				t.Errorf("%.40s run %d: %d rows, err %v; MariaDB sends %d rows and 1690", q, i, n, err, want)
			}
			var k int
			if err := db.QueryRow("SELECT 5").Scan(&k); err != nil || k != 5 {
				t.Fatalf("after it: %v", err)
			}
		}
	}
	if p.srv.x.Stats().FastLaneHits == lane {
		t.Error("the fast lane answered none of them")
	}
}

// TestReviewProbeWarningCountVar: @@warning_count and @@error_count after a
// warning and an error, as MariaDB reports them. The warning comes from one
// shard (id = 1): a scatter lists every shard's warnings, one server's once.
func TestReviewProbeWarningCountVar(t *testing.T) {
	p := startProxy(t, sharedTopo(t), nil)
	direct, err := sql.Open("mysql", p.topo.Shards()[0].Primary().DSN("demo"))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	direct.SetMaxOpenConns(1)
	db := p.open(t, "demo")
	db.SetMaxOpenConns(1)
	mustExec(t, db, "CREATE TABLE IF NOT EXISTS t2 (id BIGINT PRIMARY KEY, v INT)")
	var got [2][]string
	for i, d := range []*sql.DB{direct, db} {
		for _, q := range []string{"SELECT 1/0", "SELECT @@warning_count", "SELECT COUNT(*) FROM t2 WHERE id = 1 AND v = 1/0", "SELECT @@warning_count", "SELECT nosuch FROM t2", "SELECT @@error_count"} {
			var s sql.NullString
			err := d.QueryRow(q).Scan(&s)
			got[i] = append(got[i], s.String+" "+strconv.Itoa(int(sqlErr(err))))
		}
	}
	if strings.Join(got[0], ",") != strings.Join(got[1], ",") {
		t.Errorf("@@warning_count / @@error_count: MariaDB %q, proxy %q", got[0], got[1])
	}
}

// TestReviewProbeResetInTx: COM_RESET_CONNECTION in the middle of a
// transaction rolls it back on the shard and frees its locks.
func TestReviewProbeResetInTx(t *testing.T) {
	p := startProxy(t, sharedTopo(t), nil)
	db := p.open(t, "test")
	mustExec(t, db, "CREATE TABLE IF NOT EXISTS review_rtx (id INT PRIMARY KEY, v INT)")
	mustExec(t, db, "REPLACE INTO review_rtx VALUES (1, 0)")
	c := rawConnect(t, p, "test")
	for _, q := range []string{"BEGIN", "UPDATE review_rtx SET v = 5 WHERE id = 1", "INSERT INTO review_rtx VALUES (2, 0)"} {
		c.send(0, append([]byte{0x03}, q...))
		if pkt := c.recv(); pkt[0] != 0x00 {
			t.Fatalf("%s: %q", q, pkt)
		}
	}
	c.send(0, []byte{0x1f})
	if pkt := c.recv(); pkt[0] != 0x00 {
		t.Fatalf("reset: %q", pkt)
	}
	o := conn(t, db)
	execC(t, o, "SET SESSION innodb_lock_wait_timeout = 2")
	execC(t, o, "UPDATE review_rtx SET v = v WHERE id = 1")
	if got := query1(t, o, "SELECT CONCAT(COUNT(*), ' ', SUM(v)) FROM review_rtx"); got != "1 0" {
		t.Errorf("after COM_RESET_CONNECTION in a transaction: %s, want 1 row, v 0", got)
	}
	// The reset connection goes on, outside any transaction.
	c.send(0, []byte("\x03SELECT @@in_transaction"))
	if _, row := readResponse(c); string(row) != "\x010" {
		t.Errorf("in_transaction after reset: %q", row)
	}
}
