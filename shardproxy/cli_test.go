package shardproxy_test

import (
	"bytes"
	"context"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/strata-db/strata/shardproxy/config"
	"github.com/strata-db/strata/shardproxy/proxytest"
)

// mariadbCLI runs the mariadb command-line client against the proxy with
// the statements on stdin and returns its output.
func mariadbCLI(t *testing.T, p *proxytest.Proxy, db, stdin string, extra ...string) (string, error) {
	t.Helper()
	bin, err := exec.LookPath("mariadb")
	if err != nil {
		t.Fatalf("mariadb client not installed (make deps installs it): %v", err)
	}
	host, port, _ := net.SplitHostPort(p.Server.Addr())
	args := append([]string{"--no-defaults", "-h" + host, "-P" + port, "-uroot", "--batch", "--connect-timeout=5"}, extra...)
	if db != "" {
		args = append(args, db)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	return out.String(), err
}

// TestMariadbCLI drives the mariadb client as a user would, including its
// connect-time table and column completion (COM_FIELD_LIST).
func TestMariadbCLI(t *testing.T) {
	p := proxytest.Start(t, proxytest.SharedTopology(t), nil)
	script := `DROP TABLE IF EXISTS t3;
CREATE TABLE t3 (id BIGINT PRIMARY KEY, v VARCHAR(20), n INT);
INSERT INTO t3 (id, v, n) VALUES (1, 'one', 10), (2, 'two', 20), (3, 'three', 30), (4, 'four', 40);
SELECT v FROM t3 WHERE id = 3;
SELECT COUNT(*), SUM(n) FROM t3;
SELECT id, v FROM t3 ORDER BY id DESC LIMIT 2;
SELECT DATABASE(), @@autocommit;
BEGIN; UPDATE t3 SET n = n + 1 WHERE id = 1; COMMIT;
SELECT n FROM t3 WHERE id = 1;
SHOW TABLES LIKE 't3';
EXPLAIN SELECT v FROM t3 WHERE id = 2;
`
	// --auto-rehash makes the client read every table's columns with
	// COM_FIELD_LIST at connect.
	out, err := mariadbCLI(t, p, p.Demo, script, "--auto-rehash")
	if err != nil {
		t.Fatalf("mariadb: %v\n%s", err, out)
	}
	for _, want := range []string{"three", "4\t100", "4\tfour\n3\tthree", p.Demo + "\t1", "11", "Tables_in_" + p.Demo + " (t3)\nt3", "Route"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// Errors come back in MySQL's words; the client exits non-zero.
	out, err = mariadbCLI(t, p, p.Demo, "SELEC 1;\n")
	if err == nil || !strings.Contains(out, "ERROR 1064 (42000)") || !strings.Contains(out, "near 'SELEC 1' at line 1") {
		t.Errorf("parse error: %v\n%s", err, out)
	}
	out, _ = mariadbCLI(t, p, p.Demo, "SELECT * FROM nope;\n")
	if !strings.Contains(out, "ERROR 1146 (42S02)") {
		t.Errorf("unknown table: %s", out)
	}
	out, _ = mariadbCLI(t, p, "", "SELECT 1;\n", "-pwrong")
	if !strings.Contains(out, "ERROR 1045 (28000)") {
		t.Errorf("wrong password: %s", out)
	}
}

// TestFieldList sends COM_FIELD_LIST (what the client's completion uses)
// over a raw connection and checks the column definitions.
func TestFieldList(t *testing.T) {
	p := proxytest.Start(t, proxytest.SharedTopology(t), func(c *config.Config) {})
	db := p.Open(t, p.Demo)
	proxytest.MustExec(t, db, "CREATE TABLE IF NOT EXISTS t4 (id BIGINT PRIMARY KEY, name VARCHAR(10), price DECIMAL(8,2))")
	c := proxytest.Login(t, p.Server.Addr(), "root", p.Demo)
	// COM_FIELD_LIST: 0x04, table, NUL, wildcard.
	c.Send(0, append([]byte{0x04}, []byte("t4\x00")...))
	var names []string
	for {
		pkt := c.Recv()
		if pkt[0] == 0xfe && len(pkt) < 9 {
			break
		}
		if pkt[0] == 0xff {
			t.Fatalf("error: %q", pkt)
		}
		names = append(names, columnName(pkt))
	}
	if strings.Join(names, ",") != "id,name,price" {
		t.Errorf("columns %v", names)
	}
	c.Send(0, append([]byte{0x04}, []byte("t4\x00na%")...))
	if pkt := c.Recv(); columnName(pkt) != "name" {
		t.Errorf("wildcard: %q", pkt)
	}
	if pkt := c.Recv(); pkt[0] != 0xfe {
		t.Errorf("no EOF after wildcard: %q", pkt)
	}
	c.Send(0, append([]byte{0x04}, []byte("nosuch\x00")...))
	if pkt := c.Recv(); pkt[0] != 0xff || !bytes.Contains(pkt, []byte("1146")) && pkt[1] != 0x7a {
		t.Errorf("unknown table: %q", pkt)
	}
	// The connection goes on with ordinary commands.
	c.Send(0, append([]byte{0x03}, []byte("SELECT 5")...))
	if pkt := c.Recv(); pkt[0] != 1 {
		t.Errorf("query after field list: %q", pkt)
	}
}

// columnName reads the name from a ColumnDefinition41 packet.
func columnName(pkt []byte) string {
	pos := 0
	var s string
	for i := 0; i < 5; i++ {
		n := int(pkt[pos])
		s = string(pkt[pos+1 : pos+1+n])
		pos += 1 + n
	}
	return s
}
