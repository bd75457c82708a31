package compat

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/strata-db/strata/localdb"
	"github.com/strata-db/strata/shardproxy/proxytest"
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
}
