package shardproxy_test

import (
	"database/sql"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strata-db/strata/localdb"
	"github.com/strata-db/strata/shardproxy/config"
	"github.com/strata-db/strata/shardproxy/proxytest"
)

// Front-end guards from a review: a client that leaves or resets in the
// middle of a transaction, pipelined and byte-split commands, an error after
// rows in the fast lane, TLS. Where a probe can, it sends the same thing to
// a shard's MariaDB directly and to the proxy, and expects the proxy to
// answer as MariaDB does.

// probeTargets are the same client against MariaDB and against the proxy.
type probeTarget struct {
	name       string
	addr, user string
}

func probeTargets(p *proxytest.Proxy) []probeTarget {
	return []probeTarget{
		{"mariadb", p.Topo.Shards()[0].Primary().Addr(), localdb.AppUser},
		{"proxy", p.Server.Addr(), "root"},
	}
}

// readResponse reads one whole text-protocol response (no DEPRECATE_EOF)
// and returns its first packet and its first row (nil if none).
func readResponse(c *proxytest.Raw) (first, row []byte) {
	first = c.Recv()
	if first[0] == 0x00 || first[0] == 0xff {
		return first, nil
	}
	n := int(first[0])
	for i := 0; i < n; i++ {
		c.Recv()
	}
	c.Recv() // EOF
	for {
		pkt := c.Recv()
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
	p := proxytest.Start(t, proxytest.SharedTopology(t), nil)
	db := p.Open(t, p.Test)
	proxytest.MustExec(t, db, "CREATE TABLE IF NOT EXISTS review_dtx (id INT PRIMARY KEY, v INT)")
	proxytest.MustExec(t, db, "DELETE FROM review_dtx")
	proxytest.MustExec(t, db, "INSERT INTO review_dtx VALUES (1, 0)")
	for _, begin := range []string{"BEGIN", "SET autocommit = 0"} {
		c := proxytest.Login(t, p.Server.Addr(), "root", p.Test)
		for _, q := range []string{begin, "UPDATE review_dtx SET v = v + 1 WHERE id = 1", "INSERT INTO review_dtx VALUES (2, 0)"} {
			c.Send(0, append([]byte{0x03}, q...))
			if pkt := c.Recv(); pkt[0] != 0x00 {
				t.Fatalf("%s: %q", q, pkt)
			}
		}
		// Leave in the middle of a statement.
		c.Send(0, []byte("\x03SELECT SLEEP(0.5)"))
		c.Conn.Close()
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
	p := proxytest.Start(t, proxytest.SharedTopology(t), nil)
	c := proxytest.Login(t, p.Server.Addr(), "root", p.Test)
	for round := 0; round < 3; round++ {
		var batch []byte
		for _, q := range []string{"SELECT 11", "SET @pp = 5", "SELECT @pp + 1", "SELECT 12", "SET @pq = 1"} {
			batch = append(batch, proxytest.Packet(0, append([]byte{0x03}, q...))...)
		}
		batch = append(batch, proxytest.Packet(0, []byte{0x0e})...)
		if _, err := c.Conn.Write(batch); err != nil {
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
	for _, b := range proxytest.Packet(0, []byte("\x03SELECT 13")) {
		if _, err := c.Conn.Write([]byte{b}); err != nil {
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
	p := proxytest.Start(t, proxytest.SharedTopology(t), nil)
	for _, tg := range probeTargets(p) {
		t.Run(tg.name, func(t *testing.T) {
			c := proxytest.Login(t, tg.addr, tg.user, p.Test)
			c.Send(0, []byte("\x02review_no_such_db"))
			pkt := c.Recv()
			if proxytest.ErrCode(pkt) != 1049 {
				t.Errorf("COM_INIT_DB unknown: %q", pkt)
			}
			_, row := func() ([]byte, []byte) {
				c.Send(0, []byte("\x03SELECT DATABASE()"))
				return readResponse(c)
			}()
			if string(row) != string(append([]byte{byte(len(p.Test))}, p.Test...)) {
				t.Errorf("database after a failed COM_INIT_DB: %q", row)
			}
		})
	}
}

// TestReviewProbeLaneAbandoned: a client that leaves in the middle of a
// large fast-lane result leaves its backend connection closed, not pooled
// with the rest of the result unread.
func TestReviewProbeLaneAbandoned(t *testing.T) {
	p := proxytest.Start(t, proxytest.SharedTopology(t), func(c *config.Config) { c.Backend.MaxOpen = 1; c.Backend.MaxIdle = 1 })
	db := p.Open(t, p.Test)
	for i := 0; i < 5; i++ {
		c := proxytest.Login(t, p.Server.Addr(), "root", p.Test)
		c.Send(0, []byte("\x03SELECT REPEAT('x', 1000000) AS a UNION ALL SELECT REPEAT('y', 1000000) UNION ALL SELECT "+strconv.Itoa(i)))
		c.Recv()
		c.Conn.Close()
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
	p := proxytest.Start(t, proxytest.SharedTopology(t), func(c *config.Config) {
		c.TLS = config.TLS{Cert: cert, Key: key}
	})
	db := p.Open(t, p.Test, "tls=skip-verify")
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
	p := proxytest.Start(t, proxytest.SharedTopology(t), nil)
	direct, err := sql.Open("mysql", p.Topo.Shards()[0].Primary().DSN(p.Test))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	db := p.Open(t, p.Test)
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
	lane := p.Server.Stats().FastLaneHits
	for _, q := range []string{
		"SELECT seq, EXP(seq) AS e FROM seq_1_to_1000",
		"SELECT seq, REPEAT('x', 1000) AS x, EXP(seq / 2) AS e FROM seq_1_to_2000",
	} {
		want, err := read(direct, q)
		if proxytest.SQLErr(err) != 1690 {
			t.Fatalf("MariaDB: %s: %d rows, %v", q, want, err)
		}
		for i := 0; i < 3; i++ {
			n, err := read(db, q)
			if proxytest.SQLErr(err) != 1690 || n > want {
				t.Errorf("%.40s run %d: %d rows, err %v; MariaDB sends %d rows and 1690", q, i, n, err, want)
			}
			var k int
			if err := db.QueryRow("SELECT 5").Scan(&k); err != nil || k != 5 {
				t.Fatalf("after it: %v", err)
			}
		}
	}
	if p.Server.Stats().FastLaneHits == lane {
		t.Error("the fast lane answered none of them")
	}
}

// TestReviewProbeWarningCountVar: @@warning_count and @@error_count after a
// warning and an error, as MariaDB reports them. The warning comes from one
// shard (id = 1): a scatter lists every shard's warnings, one server's once.
func TestReviewProbeWarningCountVar(t *testing.T) {
	p := proxytest.Start(t, proxytest.SharedTopology(t), nil)
	direct, err := sql.Open("mysql", p.Topo.Shards()[0].Primary().DSN(p.Demo))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	direct.SetMaxOpenConns(1)
	db := p.Open(t, p.Demo)
	db.SetMaxOpenConns(1)
	proxytest.MustExec(t, db, "CREATE TABLE IF NOT EXISTS t2 (id BIGINT PRIMARY KEY, v INT)")
	var got [2][]string
	for i, d := range []*sql.DB{direct, db} {
		for _, q := range []string{"SELECT 1/0", "SELECT @@warning_count", "SELECT COUNT(*) FROM t2 WHERE id = 1 AND v = 1/0", "SELECT @@warning_count", "SELECT nosuch FROM t2", "SELECT @@error_count"} {
			var s sql.NullString
			err := d.QueryRow(q).Scan(&s)
			got[i] = append(got[i], s.String+" "+strconv.Itoa(int(proxytest.SQLErr(err))))
		}
	}
	if strings.Join(got[0], ",") != strings.Join(got[1], ",") {
		t.Errorf("@@warning_count / @@error_count: MariaDB %q, proxy %q", got[0], got[1])
	}
}

// TestReviewProbeResetInTx: COM_RESET_CONNECTION in the middle of a
// transaction rolls it back on the shard and frees its locks.
func TestReviewProbeResetInTx(t *testing.T) {
	p := proxytest.Start(t, proxytest.SharedTopology(t), nil)
	db := p.Open(t, p.Test)
	proxytest.MustExec(t, db, "CREATE TABLE IF NOT EXISTS review_rtx (id INT PRIMARY KEY, v INT)")
	proxytest.MustExec(t, db, "REPLACE INTO review_rtx VALUES (1, 0)")
	c := proxytest.Login(t, p.Server.Addr(), "root", p.Test)
	for _, q := range []string{"BEGIN", "UPDATE review_rtx SET v = 5 WHERE id = 1", "INSERT INTO review_rtx VALUES (2, 0)"} {
		c.Send(0, append([]byte{0x03}, q...))
		if pkt := c.Recv(); pkt[0] != 0x00 {
			t.Fatalf("%s: %q", q, pkt)
		}
	}
	c.Send(0, []byte{0x1f})
	if pkt := c.Recv(); pkt[0] != 0x00 {
		t.Fatalf("reset: %q", pkt)
	}
	o := conn(t, db)
	execC(t, o, "SET SESSION innodb_lock_wait_timeout = 2")
	execC(t, o, "UPDATE review_rtx SET v = v WHERE id = 1")
	if got := query1(t, o, "SELECT CONCAT(COUNT(*), ' ', SUM(v)) FROM review_rtx"); got != "1 0" {
		t.Errorf("after COM_RESET_CONNECTION in a transaction: %s, want 1 row, v 0", got)
	}
	// The reset connection goes on, outside any transaction.
	c.Send(0, []byte("\x03SELECT @@in_transaction"))
	if _, row := readResponse(c); string(row) != "\x010" {
		t.Errorf("in_transaction after reset: %q", row)
	}
}
