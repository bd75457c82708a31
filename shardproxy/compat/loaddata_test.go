package compat

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"math/rand"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"vitess.io/vitess/go/sqltypes"

	"github.com/strata-db/strata/localdb"
	"github.com/strata-db/strata/shardproxy/proxytest"
	"github.com/strata-db/strata/shardproxy/vschema"
	"github.com/strata-db/strata/txcoord"
)

// readerSeq names each registered file uniquely (the driver's registry is
// global).
var readerSeq atomic.Int64

// withFile registers content as a go-sql-driver reader and returns the
// statement's file name for it ('Reader::name').
func withFile(t *testing.T, content string) string {
	t.Helper()
	name := fmt.Sprintf("load%d", readerSeq.Add(1))
	mysql.RegisterReaderHandler(name, func() io.Reader { return strings.NewReader(content) })
	t.Cleanup(func() { mysql.DeregisterReaderHandler(name) })
	return "Reader::" + name
}

// loadAnswer runs a statement and returns its answer with the warnings it
// left (SHOW WARNINGS), for comparing both sides.
func loadAnswer(t *testing.T, c *sql.Conn, q string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out string
	res, err := c.ExecContext(ctx, q)
	if err != nil {
		var me *mysql.MySQLError
		if !asMySQLErr(err, &me) {
			t.Fatalf("%s: %v", q, err)
		}
		out = fmt.Sprintf("error %d: %s", me.Number, me.Message)
	} else {
		n, _ := res.RowsAffected()
		out = fmt.Sprintf("ok, %d affected", n)
	}
	w := ask(t, c, "SHOW WARNINGS")
	return out + fmt.Sprintf("; warnings %q", w.Rows)
}

func asMySQLErr(err error, me **mysql.MySQLError) bool {
	e, ok := err.(*mysql.MySQLError)
	if ok {
		*me = e
	}
	return ok
}

// TestLoadDataUnsharded: LOAD DATA LOCAL INFILE in an unsharded database
// is relayed (the server's file request to the client, the content back):
// the same answers, warnings and rows as MariaDB's, in several formats,
// with a bad row in strict mode, and an empty file.
func TestLoadDataUnsharded(t *testing.T) {
	p := connect(t, "direct", "test")
	p.same(t, "direct", "test",
		"DROP TABLE IF EXISTS ld",
		"CREATE TABLE ld (id INT PRIMARY KEY, name VARCHAR(10), n INT)",
	)
	cases := []struct{ stmt, file string }{
		{"LOAD DATA LOCAL INFILE '%s' INTO TABLE ld", "1\ta\t10\n2\tb\\tc\t\\N\n3\tc\t30\n"},
		{"LOAD DATA LOCAL INFILE '%s' INTO TABLE ld FIELDS TERMINATED BY ',' ENCLOSED BY '\"' LINES TERMINATED BY '\\r\\n' IGNORE 1 LINES (id, @x, n) SET name = UPPER(@x)", "id,name,n\r\n4,\"d,e\",40\r\n5,NULL,50\r\n"},
		{"LOAD DATA LOCAL INFILE '%s' INTO TABLE ld", "6\tlonger than ten\t60\n7\tshort\n8\tx\t80\textra\n"},
		{"LOAD DATA LOCAL INFILE '%s' IGNORE INTO TABLE ld", "1\tdup\t1\n9\tnine\t90\n"},
		{"LOAD DATA LOCAL INFILE '%s' REPLACE INTO TABLE ld", "1\treplaced\t1\n"},
		{"LOAD DATA LOCAL INFILE '%s' INTO TABLE ld", "10\tbad\tabc\n"},
		{"LOAD DATA LOCAL INFILE '%s' INTO TABLE ld", ""},
		{"SET STATEMENT sql_mode = 'STRICT_ALL_TABLES' FOR LOAD DATA LOCAL INFILE '%s' INTO TABLE ld", "11\tok\t1\n12\tbad\tabc\n"},
		{"LOAD DATA LOCAL INFILE '%s' INTO TABLE nosuch", "1\n"},
		{"LOAD XML LOCAL INFILE '%s' INTO TABLE ld ROWS IDENTIFIED BY '<r>'", "<d><r id=\"30\" name=\"xml\"><n>3</n></r><r id=\"31\"/></d>"},
	}
	for _, c := range cases {
		q := fmt.Sprintf(c.stmt, withFile(t, c.file))
		d := loadAnswer(t, p.direct, q)
		x := loadAnswer(t, p.proxied, q)
		d = strings.ReplaceAll(d, "`direct`", "`test`")
		d = strings.ReplaceAll(d, "'direct.", "'test.")
		if d != x {
			t.Errorf("%s\n  MariaDB:       %s\n  through proxy: %s", q, d, x)
		}
		p.same(t, "direct", "test", "SELECT * FROM ld ORDER BY id")
	}
	// In a transaction: loaded rows roll back with it.
	p.same(t, "direct", "test", "BEGIN")
	q := fmt.Sprintf("LOAD DATA LOCAL INFILE '%s' INTO TABLE ld", withFile(t, "20\tt\t1\n21\tt\t2\n"))
	if d, x := loadAnswer(t, p.direct, q), loadAnswer(t, p.proxied, q); d != x {
		t.Errorf("%s\n  MariaDB:       %s\n  through proxy: %s", q, d, x)
	}
	p.same(t, "direct", "test", "SELECT COUNT(*) FROM ld", "ROLLBACK", "SELECT COUNT(*) FROM ld", "DROP TABLE ld")
}

// TestLoadDataLocalProtocol: the packets of a LOAD DATA LOCAL exchange,
// byte for byte as MariaDB's (the file request, the sequence numbers, the
// OK); and a client without CLIENT_LOCAL_FILES gets MariaDB's error.
func TestLoadDataLocalProtocol(t *testing.T) {
	setup(t)
	direct := env.topo.Shards()[0].Primary().Addr()
	for _, side := range []struct{ addr, user, db string }{{direct, localdb.AppUser, "direct"}, {env.proxy, "root", "test"}} {
		c := proxytest.Login(t, side.addr, side.user, side.db)
		query := func(q string) []byte {
			c.Send(0, append([]byte{0x03}, q...))
			return c.Recv()
		}
		query("DROP TABLE IF EXISTS ldp")
		query("CREATE TABLE ldp (id INT PRIMARY KEY)")
		// Without CLIENT_LOCAL_FILES.
		if pkt := query("LOAD DATA LOCAL INFILE 'f.txt' INTO TABLE ldp"); proxytest.ErrCode(pkt) != 4166 {
			t.Errorf("%s: without CLIENT_LOCAL_FILES: %q", side.addr, pkt)
		}
		lc := proxytest.LoginWith(t, side.addr, side.user, side.db, proxytest.CapProtocol41|proxytest.CapSecureConnection|proxytest.CapPluginAuth|proxytest.CapConnectWithDB|0x80)
		lc.Send(0, append([]byte{0x03}, "LOAD DATA LOCAL INFILE 'f.txt' INTO TABLE ldp"...))
		seq, req, err := lc.ReadPacket()
		if err != nil || seq != 1 || !bytes.Equal(req, []byte("\xfbf.txt")) {
			t.Fatalf("%s: file request seq %d %q %v", side.addr, seq, req, err)
		}
		lc.Send(2, []byte("1\n2\n"))
		lc.Send(3, []byte("3\n"))
		lc.Send(4, nil)
		seq, ok, err := lc.ReadPacket()
		if err != nil || seq != 5 || len(ok) < 3 || ok[0] != 0 || ok[1] != 3 {
			t.Errorf("%s: answer seq %d %q %v", side.addr, seq, ok, err)
		}
		// The connection goes on in step.
		lc.Send(0, append([]byte{0x03}, "SELECT COUNT(*) FROM ldp"...))
		if seq, pkt, err := lc.ReadPacket(); err != nil || seq != 1 || len(pkt) != 1 || pkt[0] != 1 {
			t.Errorf("%s: next statement: seq %d %q %v", side.addr, seq, pkt, err)
		}
		query("DROP TABLE ldp")
	}
	// Into a sharded table: the OK's affected rows and warning count are
	// MariaDB's (two rows short of a field, one duplicate).
	var oks [2][2]uint64
	for i, side := range []struct{ addr, user, db string }{{direct, localdb.AppUser, "direct_demo"}, {env.proxy, "root", "demo"}} {
		c := proxytest.LoginWith(t, side.addr, side.user, side.db, proxytest.CapProtocol41|proxytest.CapSecureConnection|proxytest.CapPluginAuth|proxytest.CapConnectWithDB|0x80)
		query := func(q string) []byte {
			c.Send(0, append([]byte{0x03}, q...))
			return c.Recv()
		}
		query("DROP TABLE IF EXISTS ld_items")
		query("CREATE TABLE ld_items (id BIGINT PRIMARY KEY, name VARCHAR(10))")
		c.Send(0, append([]byte{0x03}, "LOAD DATA LOCAL INFILE 'f.txt' INTO TABLE ld_items"...))
		if _, req, err := c.ReadPacket(); err != nil || req[0] != 0xfb {
			t.Fatalf("%s: file request %q %v", side.addr, req, err)
		}
		c.Send(2, []byte("1\ta\n2\n3\n1\tdup\n4\td\n5\te\n"))
		c.Send(3, nil)
		seq, ok, err := c.ReadPacket()
		if err != nil || seq != 4 || len(ok) < 7 || ok[0] != 0 || ok[1] >= 0xfb || ok[2] >= 0xfb {
			t.Fatalf("%s: answer seq %d %q %v", side.addr, seq, ok, err)
		}
		oks[i] = [2]uint64{uint64(ok[1]), uint64(ok[5]) | uint64(ok[6])<<8}
		query("DROP TABLE ld_items")
	}
	t.Logf("sharded load's OK: %d rows affected, %d warnings (MariaDB: %d, %d)", oks[1][0], oks[1][1], oks[0][0], oks[0][1])
	if oks[0] != oks[1] {
		t.Errorf("sharded load's OK (affected rows, warnings): MariaDB %v, through the proxy %v", oks[0], oks[1])
	}
}

// shardedFile is a file of n rows for tables (id, name, n) in the default
// format, with a few rows MariaDB warns about: a name too long (row 3), a
// row short of a field (row 5), a row with a field too many (row 7), an
// escaped tab and a NULL.
func shardedFile(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		switch i {
		case 3:
			fmt.Fprintf(&b, "%d\tmuch too long a name\t%d\n", i*7, i)
		case 5:
			fmt.Fprintf(&b, "%d\tshort\n", i*7)
		case 7:
			fmt.Fprintf(&b, "%d\tx\t%d\textra\n", i*7, i)
		case 9:
			fmt.Fprintf(&b, "%d\ta\\tb\t\\N\n", i*7)
		default:
			fmt.Fprintf(&b, "%d\tn%d\t%d\n", i*7, i, i)
		}
	}
	return b.String()
}

// sameLoad runs q on both sides and compares the answers and warnings
// (the direct side's database name read as the proxy's).
func (p pair) sameLoad(t *testing.T, q string) string {
	t.Helper()
	d := loadAnswer(t, p.direct, q)
	x := loadAnswer(t, p.proxied, q)
	d = strings.ReplaceAll(d, "`direct_demo`", "`demo`")
	d = strings.ReplaceAll(d, "'direct_demo.", "'demo.")
	// Warnings that name no row (a duplicate key) come in shard order.
	if sortWarnings(d) != sortWarnings(x) {
		t.Errorf("%s\n  MariaDB:       %s\n  through proxy: %s", q, d, x)
	}
	return x
}

// checkPlacement reads table's rows on each shard's primary directly (every
// sub-table of it when it has sub-tables) and fails for a row that is not
// on the shard (and sub-table) its id hashes to; it returns the rows seen.
func checkPlacement(t *testing.T, table string) int {
	t.Helper()
	vs, err := proxyConfig().VSchema()
	if err != nil {
		t.Fatal(err)
	}
	_, tab, err := vs.FindTable("demo", table)
	if err != nil {
		t.Fatal(err)
	}
	physical := []string{table}
	if tab.Sub.Count > 0 {
		physical = nil
		for i := 0; i < tab.Sub.Count; i++ {
			physical = append(physical, tab.SubName(table, i))
		}
	}
	seen := 0
	for _, sh := range env.topo.Shards() {
		db, err := sql.Open("mysql", sh.Primary().DSN("demo"))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		for sub, pt := range physical {
			rows, err := db.Query("SELECT id FROM " + pt)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var id int64
				if err := rows.Scan(&id); err != nil {
					t.Fatal(err)
				}
				seen++
				want, err := vs.KeyShard(tab, sqltypes.NewInt64(id), vschema.ForInsert)
				if err != nil {
					t.Fatal(err)
				}
				wantSub := 0
				if tab.Sub.Count > 0 {
					wantSub, _ = vs.KeySub(tab, sqltypes.NewInt64(id), vschema.ForInsert)
				}
				if want != sh.Name || wantSub != sub {
					t.Errorf("%s: id %d is on shard %s in %s, its key hashes to shard %s sub-table %d", table, id, sh.Name, pt, want, wantSub)
				}
			}
			rows.Close()
		}
	}
	return seen
}

// TestLoadDataSharded: LOAD DATA LOCAL INFILE into sharded tables (with
// and without sub-tables) and a reference table gives MariaDB's answers,
// warnings (row numbers of the file) and rows, each row on the shard its
// key hashes to; a bad row gets MariaDB's error.
func TestLoadDataSharded(t *testing.T) {
	p := connect(t, "direct_demo", "demo")
	for _, table := range []string{"ld_items", "ld_subs"} {
		p.same(t, "direct_demo", "demo",
			"DROP TABLE IF EXISTS "+table,
			"CREATE TABLE "+table+" (id BIGINT PRIMARY KEY, name VARCHAR(10), n INT)")
		stmts := []string{
			fmt.Sprintf("LOAD DATA LOCAL INFILE '%s' INTO TABLE %s", withFile(t, shardedFile(40)), table),
			fmt.Sprintf("LOAD DATA LOCAL INFILE '%s' INTO TABLE %s FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' LINES TERMINATED BY '\\r\\n' IGNORE 2 LINES (@x, id, n) SET name = CONCAT(@x, '!')",
				withFile(t, "head,er\r\nskip,me\r\n\"a,b\",1001,1\r\nc,1002,2\r\n\"q\"\"\",1003,\\N\r\n\"multi\r\nline\",1004,4\r\n"), table),
			fmt.Sprintf("LOAD DATA LOCAL INFILE '%s' IGNORE INTO TABLE %s LINES STARTING BY '>'", withFile(t, "junk\n>2001\tj\t1\nno\n>7\tdup\t2\nx>2002\tk\t3\n"), table),
			fmt.Sprintf("LOAD DATA LOCAL INFILE '%s' REPLACE INTO TABLE %s (id, name)", withFile(t, "14\treplaced\n3001\tnew\n"), table),
			fmt.Sprintf("LOAD DATA LOCAL INFILE '%s' INTO TABLE %s", withFile(t, ""), table),
		}
		for _, q := range stmts {
			p.sameLoad(t, q)
			p.same(t, "direct_demo", "demo", "SELECT * FROM "+table+" ORDER BY id")
		}
		if n := checkPlacement(t, table); n != 47 {
			t.Errorf("%s: %d rows on the shards, want 47", table, n)
		}
		// A bad row: LOCAL makes data errors warnings (as IGNORE does), so
		// a trigger refuses it, on every physical table.
		badRowTrigger(t, p, table)
		// (The warnings before an error are not kept through the proxy,
		// for any statement: only the error is compared.)
		q := fmt.Sprintf("LOAD DATA LOCAL INFILE '%s' INTO TABLE %s", withFile(t, strings.Replace(shardedFile(20), "\tn17\t17\n", "\tn17\t999\n", 1)), table)
		d, _, _ := strings.Cut(loadAnswer(t, p.direct, q), ";")
		x, _, _ := strings.Cut(loadAnswer(t, p.proxied, q), ";")
		if d != x || d != "error 1644: bad row" {
			t.Errorf("bad row: MariaDB %s, through the proxy %s", d, x)
		}
		p.same(t, "direct_demo", "demo", "DROP TABLE "+table)
	}
	// A reference table: every shard gets every row.
	p.same(t, "direct_demo", "demo", "DROP TABLE IF EXISTS ld_refs", "CREATE TABLE ld_refs (id BIGINT PRIMARY KEY, name VARCHAR(10), n INT)")
	p.sameLoad(t, fmt.Sprintf("LOAD DATA LOCAL INFILE '%s' INTO TABLE ld_refs", withFile(t, shardedFile(10))))
	p.same(t, "direct_demo", "demo", "SELECT * FROM ld_refs ORDER BY id")
	for _, sh := range env.topo.Shards() {
		db, err := sql.Open("mysql", sh.Primary().DSN("demo"))
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := db.QueryRow("SELECT COUNT(*) FROM ld_refs").Scan(&n); err != nil || n != 10 {
			t.Errorf("shard %s: %d rows of ld_refs (%v), want 10", sh.Name, n, err)
		}
		db.Close()
	}
	p.same(t, "direct_demo", "demo", "DROP TABLE ld_refs")
}

// sortWarnings sorts the warnings of a loadAnswer.
func sortWarnings(a string) string {
	head, w, ok := strings.Cut(a, "; warnings [")
	if !ok {
		return a
	}
	items := strings.Split(strings.TrimSuffix(w, "]"), "] [")
	sort.Strings(items)
	return head + "; warnings " + strings.Join(items, "|")
}

// badRowTrigger makes every physical table of table (and the direct
// side's) refuse a row with n = 999 (1644, 'bad row').
func badRowTrigger(t *testing.T, p pair, table string) {
	t.Helper()
	trigger := func(db *sql.DB, name string) {
		if _, err := db.Exec("CREATE TRIGGER " + name + "_bad BEFORE INSERT ON " + name + " FOR EACH ROW IF NEW.n = 999 THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'bad row'; END IF"); err != nil {
			t.Fatal(err)
		}
	}
	direct, err := sql.Open("mysql", env.topo.Shards()[0].Primary().DSN("direct_demo"))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	trigger(direct, table)
	vs, err := proxyConfig().VSchema()
	if err != nil {
		t.Fatal(err)
	}
	_, tab, _ := vs.FindTable("demo", table)
	for _, sh := range env.topo.Shards() {
		db, err := sql.Open("mysql", sh.Primary().DSN("demo"))
		if err != nil {
			t.Fatal(err)
		}
		if tab.Sub.Count == 0 {
			trigger(db, table)
		}
		for i := 0; i < tab.Sub.Count; i++ {
			trigger(db, tab.SubName(table, i))
		}
		db.Close()
	}
}

// TestLoadDataShardedAtomic: with a coordinator (transaction_mode twopc),
// an autocommit LOAD DATA into a sharded table is one atomic cross-shard
// write: a bad row on one shard leaves no row on any shard, as MariaDB
// leaves none of the statement's rows.
func TestLoadDataShardedAtomic(t *testing.T) {
	setup(t)
	g := txcoord.NewXATestGroup(t, 1)
	c := proxyConfig()
	c.Transactions.Coordinator = g.GRPCAddrs()
	addr, stop, err := startProxy(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	p := connect(t, "direct_demo", "demo")
	db, err := sql.Open("mysql", "root@tcp("+addr+")/demo")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	xc, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { xc.Close() })
	p.proxied = xc
	p.same(t, "direct_demo", "demo", "DROP TABLE IF EXISTS ld_xa", "CREATE TABLE ld_xa (id BIGINT PRIMARY KEY, name VARCHAR(20), n INT)")
	badRowTrigger(t, p, "ld_xa")
	rows := func() int {
		n := 0
		for _, sh := range env.topo.Shards() {
			sdb, err := sql.Open("mysql", sh.Primary().DSN("demo"))
			if err != nil {
				t.Fatal(err)
			}
			var k int
			if err := sdb.QueryRow("SELECT COUNT(*) FROM ld_xa").Scan(&k); err != nil {
				t.Fatal(err)
			}
			sdb.Close()
			n += k
		}
		return n
	}
	q := fmt.Sprintf("LOAD DATA LOCAL INFILE '%s' INTO TABLE ld_xa", withFile(t, strings.Replace(shardedFile(40), "\tn30\t30\n", "\tn30\t999\n", 1)))
	d, _, _ := strings.Cut(loadAnswer(t, p.direct, q), ";")
	x, _, _ := strings.Cut(loadAnswer(t, p.proxied, q), ";")
	if d != x || d != "error 1644: bad row" {
		t.Errorf("bad row: MariaDB %s, through the proxy %s", d, x)
	}
	if n := rows(); n != 0 {
		t.Errorf("after a bad row: %d rows on the shards, want none", n)
	}
	p.same(t, "direct_demo", "demo", "SELECT COUNT(*) FROM ld_xa")
	// In a transaction: rolled back with it on every shard.
	p.same(t, "direct_demo", "demo", "BEGIN")
	p.sameLoad(t, fmt.Sprintf("LOAD DATA LOCAL INFILE '%s' INTO TABLE ld_xa", withFile(t, shardedFile(40))))
	p.same(t, "direct_demo", "demo", "SELECT COUNT(*) FROM ld_xa", "ROLLBACK", "SELECT COUNT(*) FROM ld_xa")
	// A transaction begun on one shard that a load then spreads: the
	// first shard's INSERT is made an XA branch, then the load runs.
	vs, err := proxyConfig().VSchema()
	if err != nil {
		t.Fatal(err)
	}
	_, tab, _ := vs.FindTable("demo", "ld_xa")
	shardOf := func(id int64) string {
		s, err := vs.KeyShard(tab, sqltypes.NewInt64(id), vschema.ForInsert)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	far := int64(8)
	for shardOf(far) == shardOf(7) {
		far++
	}
	p.same(t, "direct_demo", "demo", "BEGIN", "INSERT INTO ld_xa (id, name, n) VALUES (7, 'first', 1)")
	p.sameLoad(t, fmt.Sprintf("LOAD DATA LOCAL INFILE '%s' INTO TABLE ld_xa", withFile(t, fmt.Sprintf("%d\tfar\t2\n14\tnear\t3\n", far))))
	p.same(t, "direct_demo", "demo", "SELECT * FROM ld_xa ORDER BY id", "ROLLBACK", "SELECT COUNT(*) FROM ld_xa")
	// A load on one shard that a later statement would spread: on a session
	// whose transactions begin plainly (a fresh one), the load cannot be
	// replayed into an XA branch, and the proxy says so.
	ctx := context.Background()
	fresh, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	if _, err := fresh.ExecContext(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	if _, err := fresh.ExecContext(ctx, fmt.Sprintf("LOAD DATA LOCAL INFILE '%s' INTO TABLE ld_xa", withFile(t, "7\tone\t1\n"))); err != nil {
		t.Fatal(err)
	}
	_, err = fresh.ExecContext(ctx, "INSERT INTO ld_xa (id, name, n) VALUES (?, 'far', 2)", far)
	var me *mysql.MySQLError
	if !asMySQLErr(err, &me) || me.Number != 1235 || !strings.Contains(me.Message, "LOAD DATA LOCAL") {
		t.Errorf("a statement on another shard after a one-shard load in a transaction: %v, want 1235 naming the load", err)
	}
	if _, err := fresh.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	// On the session whose last transaction spanned shards, the next one
	// begins as an XA branch: the same transaction spreads.
	if _, err := p.proxied.ExecContext(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.proxied.ExecContext(ctx, fmt.Sprintf("LOAD DATA LOCAL INFILE '%s' INTO TABLE ld_xa", withFile(t, "7\tone\t1\n"))); err != nil {
		t.Fatal(err)
	}
	if _, err := p.proxied.ExecContext(ctx, "INSERT INTO ld_xa (id, name, n) VALUES (?, 'far', 2)", far); err != nil {
		t.Errorf("a statement on another shard after a load in a transaction begun as an XA branch: %v", err)
	}
	if _, err := p.proxied.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if n := rows(); n != 0 {
		t.Errorf("after ROLLBACK: %d rows on the shards, want none", n)
	}
	// And a good load commits on every shard.
	p.sameLoad(t, fmt.Sprintf("LOAD DATA LOCAL INFILE '%s' INTO TABLE ld_xa", withFile(t, shardedFile(40))))
	if n := checkPlacement(t, "ld_xa"); n != 40 {
		t.Errorf("%d rows on the shards, want 40", n)
	}
	p.same(t, "direct_demo", "demo", "SELECT * FROM ld_xa ORDER BY id", "DROP TABLE ld_xa")
}

// TestLoadDataPrepared: LOAD DATA LOCAL as a prepared statement: MariaDB's
// answers to prepare and execute, in an unsharded and a sharded database.
func TestLoadDataPrepared(t *testing.T) {
	for _, dbs := range [][2]string{{"direct", "test"}, {"direct_demo", "demo"}} {
		p := connect(t, dbs[0], dbs[1])
		p.same(t, dbs[0], dbs[1], "DROP TABLE IF EXISTS ld_items", "CREATE TABLE ld_items (id BIGINT PRIMARY KEY, name VARCHAR(10), n INT)")
		file := withFile(t, "1\ta\t1\n2\tb\t2\n")
		var answers [2]string
		for i, c := range []*sql.Conn{p.direct, p.proxied} {
			st, err := c.PrepareContext(context.Background(), "LOAD DATA LOCAL INFILE '"+file+"' INTO TABLE ld_items")
			if err != nil {
				answers[i] = "prepare: " + err.Error()
				continue
			}
			res, err := st.ExecContext(context.Background())
			if err != nil {
				answers[i] = "execute: " + err.Error()
			} else {
				n, _ := res.RowsAffected()
				answers[i] = fmt.Sprintf("ok, %d affected", n)
			}
			st.Close()
		}
		t.Logf("%s: MariaDB %s; through the proxy %s", dbs[1], answers[0], answers[1])
		if answers[0] != answers[1] {
			t.Errorf("%s: prepared LOAD DATA: MariaDB %s; through the proxy %s", dbs[1], answers[0], answers[1])
		}
		p.same(t, dbs[0], dbs[1], "SELECT * FROM ld_items ORDER BY id", "DROP TABLE ld_items")
	}
}

// TestLoadDataShardedRandom cuts random files the way MariaDB does: files
// of random bytes from an alphabet of terminators, enclosures, escapes,
// N and NULL, in random formats (multi-byte terminators, an escape equal
// to the enclosure, STARTING BY, IGNORE), loaded into a table directly and
// into a sharded table (by its first column, a string) through the proxy:
// the same rows, affected counts and warnings. The proxy sends each record
// it cut to a shard as bytes: a record cut differently from MariaDB's
// would load different rows. A file whose shard key comes out NULL is
// refused by the proxy (1048) and skipped.
func TestLoadDataShardedRandom(t *testing.T) {
	p := connect(t, "direct_demo", "demo")
	p.same(t, "direct_demo", "demo", "DROP TABLE IF EXISTS ld_rand", "CREATE TABLE ld_rand (k VARCHAR(200), a VARCHAR(200), b VARCHAR(200))")
	// A fixed seed keeps make test deterministic; STRATA_LOADDATA_SEED
	// gives another (a number replays a run, "random" hunts), and
	// STRATA_LOADDATA_RUNS more files.
	seed := int64(20261207)
	switch s := os.Getenv("STRATA_LOADDATA_SEED"); s {
	case "":
	case "random":
		seed = time.Now().UnixNano()
	default:
		seed, _ = strconv.ParseInt(s, 10, 64)
	}
	t.Logf("seed %d (STRATA_LOADDATA_SEED replays it)", seed)
	rng := rand.New(rand.NewSource(seed))
	formats := []string{
		"",
		"FIELDS TERMINATED BY ',' ENCLOSED BY '\"'",
		"FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '\"'",
		"FIELDS TERMINATED BY '||' ENCLOSED BY '\\'' LINES TERMINATED BY '\\r\\n'",
		"FIELDS TERMINATED BY ';' ESCAPED BY '' LINES STARTING BY 'xx' TERMINATED BY '\\n'",
		"FIELDS TERMINATED BY '\\t' ENCLOSED BY '\"' LINES STARTING BY '>' IGNORE 2 LINES",
	}
	alphabet := []string{"a", "b", "Z", "N", "NULL", "1", " ", ",", ";", "|", "||", "\t", "\n", "\r\n", "\r", "\"", "'", "\\", "\\N", "x", "xx", ">", "é"}
	runs, skipped := 40, 0
	if n, err := strconv.Atoi(os.Getenv("STRATA_LOADDATA_RUNS")); err == nil && n > 0 {
		runs = n
	}
	for i := 0; i < runs; i++ {
		var b strings.Builder
		for n := rng.Intn(60); n > 0; n-- {
			b.WriteString(alphabet[rng.Intn(len(alphabet))])
		}
		format := formats[rng.Intn(len(formats))]
		q := fmt.Sprintf("LOAD DATA LOCAL INFILE '%s' INTO TABLE ld_rand %s", withFile(t, b.String()), format)
		d := loadAnswer(t, p.direct, q)
		x := loadAnswer(t, p.proxied, q)
		if strings.HasPrefix(x, "error 1048") {
			skipped++
		} else {
			d = strings.ReplaceAll(d, "`direct_demo`", "`demo`")
			if sortWarnings(d) != sortWarnings(x) {
				t.Errorf("file %q, %s\n  MariaDB:       %s\n  through proxy: %s", b.String(), format, d, x)
			}
			if dr, xr := sortedRows(t, p.direct, "SELECT k, a, b FROM ld_rand"), sortedRows(t, p.proxied, "SELECT k, a, b FROM ld_rand"); dr != xr {
				t.Errorf("file %q, %s\n  MariaDB rows:       %s\n  through proxy rows: %s", b.String(), format, dr, xr)
			}
		}
		p.same(t, "direct_demo", "demo", "DELETE FROM ld_rand")
	}
	t.Logf("%d random files, %d skipped (a NULL shard key)", runs, skipped)
	p.same(t, "direct_demo", "demo", "DROP TABLE ld_rand")
}

// sortedRows reads a query's rows, sorted, as one string.
func sortedRows(t *testing.T, c *sql.Conn, q string) string {
	t.Helper()
	a := ask(t, c, q)
	rows := make([]string, len(a.Rows))
	for i, r := range a.Rows {
		rows[i] = fmt.Sprintf("%q", r)
	}
	sort.Strings(rows)
	return strings.Join(rows, " ")
}

// TestLoadDataShardedKeyStored: LOAD DATA LOCAL makes a value out of a
// column's range, or too long for it, a warning, and MariaDB stores it
// clipped or cut. For a shard key that would be a row on the shard of the
// value in the file, stored as another value that hashes elsewhere: no
// read by its key would find it. Through the proxy such a file is refused
// with MariaDB's strict-mode error and loads nothing; keys that fit (a
// multibyte string at the column's length in characters, trailing spaces)
// load as on MariaDB.
func TestLoadDataShardedKeyStored(t *testing.T) {
	p := connect(t, "direct_demo", "demo")
	p.same(t, "direct_demo", "demo",
		"DROP TABLE IF EXISTS ld_items", "CREATE TABLE ld_items (id INT PRIMARY KEY, name VARCHAR(10))",
		"DROP TABLE IF EXISTS ld_rand", "CREATE TABLE ld_rand (k VARCHAR(3) PRIMARY KEY, a VARCHAR(10), b INT)")
	for _, tc := range []struct {
		stmt, file string
		code       uint16
	}{
		{"LOAD DATA LOCAL INFILE '%s' INTO TABLE ld_items", "1\ta\n3000000000\tb\n", 1264},
		{"LOAD DATA LOCAL INFILE '%s' INTO TABLE ld_items", "-3000000000\tb\n", 1264},
		{"LOAD DATA LOCAL INFILE '%s' INTO TABLE ld_items (name, id)", "a\t5\nb\t2147483648\n", 1264},
		{"LOAD DATA LOCAL INFILE '%s' INTO TABLE ld_rand", "abc\ta\t1\nxyzuvw\tb\t2\n", 1406},
	} {
		q := fmt.Sprintf(tc.stmt, withFile(t, tc.file))
		x := loadAnswer(t, p.proxied, q)
		if !strings.HasPrefix(x, fmt.Sprintf("error %d: ", tc.code)) {
			t.Errorf("%s with %q: %s, want error %d", q, tc.file, x, tc.code)
		}
	}
	for _, table := range []string{"ld_items", "ld_rand"} {
		for _, sh := range env.topo.Shards() {
			n, err := sh.Primary().QueryString(context.Background(), "SELECT COUNT(*) FROM demo."+table)
			if err != nil {
				t.Fatal(err)
			}
			if n != "0" {
				t.Errorf("%s: %s rows of %s after refused loads", sh.Name, n, table)
			}
		}
	}
	p.sameLoad(t, fmt.Sprintf("LOAD DATA LOCAL INFILE '%s' INTO TABLE ld_items", withFile(t, "2147483647\tmax\n-2147483648\tmin\n 7\tsp\n")))
	p.sameLoad(t, fmt.Sprintf("LOAD DATA LOCAL INFILE '%s' INTO TABLE ld_rand", withFile(t, "ééé\ta\t1\nab  \tb\t2\nxyz\tc\t3\n")))
	p.same(t, "direct_demo", "demo",
		"SELECT * FROM ld_items ORDER BY id",
		"SELECT * FROM ld_items WHERE id = 2147483647", "SELECT * FROM ld_items WHERE id = -2147483648", "SELECT * FROM ld_items WHERE id = 7",
		"SELECT * FROM ld_rand ORDER BY k",
		"SELECT * FROM ld_rand WHERE k = 'ééé'", "SELECT * FROM ld_rand WHERE k = 'ab'", "SELECT * FROM ld_rand WHERE k = 'xyz'",
		"DROP TABLE ld_items", "DROP TABLE ld_rand")
}
