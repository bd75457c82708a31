package compat

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/strata-db/strata/localdb"
	"github.com/strata-db/strata/shardproxy/proxytest"
	"github.com/strata-db/strata/shardproxy/wire"
)

// okCaps are the raw clients' capabilities: multi-statements and
// LOCAL INFILE on, no CLIENT_DEPRECATE_EOF, no session tracking (MariaDB's
// command-line client's info comes as the rest of the OK packet).
const okCaps = proxytest.CapProtocol41 | proxytest.CapSecureConnection | proxytest.CapPluginAuth |
	proxytest.CapConnectWithDB | proxytest.CapMultiStatements | 1<<17 /* multi results */ | 1<<7 /* local files */

// okStatus are the status flags of an OK that okAnswer shows: those a
// client acts on (in transaction, autocommit, more results). Whether a
// statement used an index (SERVER_QUERY_NO_INDEX_USED, 0x20) is the
// optimizer's choice on each shard's rows: checked where it cannot differ.
const okStatus = 0x01 | 0x02 | 0x08

// okAnswer describes a server's answer to a command as the raw client
// read it: each OK with its counts, status flags (those of mask),
// warnings and info text; an error's code; a result set's row count.
func okAnswer(t *testing.T, c *proxytest.Raw, mask uint16) string {
	t.Helper()
	var out []string
	for {
		p := c.Recv()
		switch p[0] {
		case 0xff:
			return strings.Join(append(out, fmt.Sprintf("error %d", proxytest.ErrCode(p))), "; ")
		case 0x00:
			affected, pos, _ := wire.ReadLenEncInt(p, 1)
			id, pos, _ := wire.ReadLenEncInt(p, pos)
			status := binary.LittleEndian.Uint16(p[pos:])
			warnings := binary.LittleEndian.Uint16(p[pos+2:])
			out = append(out, fmt.Sprintf("ok affected=%d id=%d status=%#x warnings=%d info=%q",
				affected, id, status&mask, warnings, p[pos+4:]))
			if status&0x08 == 0 {
				return strings.Join(out, "; ")
			}
		default:
			// A result set: columns, EOF, rows, EOF.
			rows := 0
			for eofs := 0; eofs < 2; {
				q := c.Recv()
				switch {
				case q[0] == 0xfe && len(q) < 9:
					eofs++
					if eofs == 2 && binary.LittleEndian.Uint16(q[3:])&0x08 == 0 {
						return strings.Join(append(out, fmt.Sprintf("%d rows", rows)), "; ")
					}
				case q[0] == 0xff:
					return strings.Join(append(out, fmt.Sprintf("error %d", proxytest.ErrCode(q))), "; ")
				case eofs == 1:
					rows++
				}
			}
			out = append(out, fmt.Sprintf("%d rows", rows))
		}
	}
}

// okQuery sends a COM_QUERY and describes its answer; a LOAD DATA LOCAL's
// file request is answered with file.
func okQuery(t *testing.T, c *proxytest.Raw, q, file string, mask uint16) string {
	t.Helper()
	c.Send(0, append([]byte{0x03}, q...))
	if file != "" {
		p := c.Recv()
		if p[0] != 0xfb {
			t.Fatalf("%s: no file request: %q", q, p)
		}
		c.Send(c.Seq, []byte(file))
		c.Send(c.Seq, nil)
	}
	return okAnswer(t, c, mask)
}

// okPrepare prepares q and returns its statement id.
func okPrepare(t *testing.T, c *proxytest.Raw, q string) uint32 {
	t.Helper()
	c.Send(0, append([]byte{0x16}, q...))
	p := c.Recv()
	if p[0] != 0 {
		t.Fatalf("prepare %s: %q", q, p)
	}
	id := binary.LittleEndian.Uint32(p[1:])
	cols, params := binary.LittleEndian.Uint16(p[5:]), binary.LittleEndian.Uint16(p[7:])
	for _, n := range []uint16{params, cols} {
		if n > 0 {
			for i := uint16(0); i <= n; i++ { // definitions, then EOF
				c.Recv()
			}
		}
	}
	return id
}

// okExecute executes statement id with BIGINT parameters args and
// describes its answer.
func okExecute(t *testing.T, c *proxytest.Raw, id uint32, args ...int64) string {
	t.Helper()
	pkt := []byte{0x17}
	pkt = binary.LittleEndian.AppendUint32(pkt, id)
	pkt = append(pkt, 0)
	pkt = binary.LittleEndian.AppendUint32(pkt, 1)
	if len(args) > 0 {
		pkt = append(pkt, make([]byte, (len(args)+7)/8)...)
		pkt = append(pkt, 1)
		for range args {
			pkt = append(pkt, 0x08, 0) // MYSQL_TYPE_LONGLONG
		}
		for _, a := range args {
			pkt = binary.LittleEndian.AppendUint64(pkt, uint64(a))
		}
	}
	c.Send(0, pkt)
	return okAnswer(t, c, okStatus)
}

// TestOKInfo: the info text of OK packets ("Records: 3  Duplicates: 0
// Warnings: 0", "Rows matched: 2  Changed: 2  Warnings: 0", LOAD DATA's
// "Records: 3  Deleted: 0  Skipped: 0  Warnings: 0") through the proxy is
// what one MariaDB says, byte for byte, with the same counts, status flags
// and warnings: for statements that run on one shard (the shard's text),
// split over two (the counts summed), on every copy of a reference table
// (one copy's), DDL on every shard, several statements in one text, LOAD
// DATA LOCAL, and prepared statements.
func TestOKInfo(t *testing.T) {
	direct, proxied, same := okPair(t, "direct_demo", "demo")
	for _, q := range []string{
		"DROP TABLE IF EXISTS oki, oki_ref",
		"CREATE TABLE oki (id BIGINT PRIMARY KEY, name VARCHAR(10), n INT NOT NULL DEFAULT 0)",
		"CREATE TABLE oki_ref (id BIGINT PRIMARY KEY, name VARCHAR(10), n INT NOT NULL DEFAULT 0)",
		// Over both shards, a part of one row on each (which a server
		// answers without info: the proxy writes it), ids chosen for their
		// shards (s0: 8, 9, 10, 16, 18, 19, 21, 22, 24, 30; s1: 1-7, 11-15,
		// 20, 26, 31, 32, 33).
		"INSERT INTO oki (id, name) VALUES (1, 'a'), (2, 'b'), (3, 'c'), (8, 'd'), (9, 'e'), (10, 'f')",
		"INSERT INTO oki (id, name) VALUES (7, 'g')",
		"INSERT INTO oki (id, name) VALUES (11, 'h'), (16, 'i')",
		"INSERT INTO oki (id, name) VALUES (4, 'h'), (5, 'i'), (6, 'j')",
		// Duplicates: ignored, updated (changed or not), replaced, in parts
		// of one row and of several.
		"INSERT IGNORE INTO oki (id, name) VALUES (1, 'x'), (18, 'm'), (12, 'n')",
		"INSERT IGNORE INTO oki (id, name) VALUES (8, 'x'), (13, 'y')",
		"INSERT INTO oki (id, name) VALUES (2, 'B'), (19, 'o') ON DUPLICATE KEY UPDATE name = VALUES(name)",
		"INSERT INTO oki (id, name) VALUES (3, 'c'), (21, 'p') ON DUPLICATE KEY UPDATE name = VALUES(name)",
		"INSERT INTO oki (id, name) VALUES (4, 'D'), (5, 'E'), (10, 'F') ON DUPLICATE KEY UPDATE name = VALUES(name)",
		"REPLACE INTO oki (id, name) VALUES (7, 'G'), (22, 'q'), (14, 'r')",
		"REPLACE INTO oki (id, name) VALUES (9, 'E'), (15, 's')",
		// Updates on one shard, scattered, matched but unchanged.
		"UPDATE oki SET n = n + 1 WHERE id = 1",
		"UPDATE oki SET n = n + 1",
		"UPDATE oki SET n = 1 WHERE id IN (1, 2, 3, 4)",
		"UPDATE oki SET n = 1 WHERE id > 100",
		"UPDATE IGNORE oki SET name = 'zzzzzzzzzzzzzzz' WHERE id = 1",
		"DELETE FROM oki WHERE id > 16",
		// Reference table: one copy's answer.
		"INSERT INTO oki_ref (id, name) VALUES (1, 'a'), (2, 'b'), (3, 'c')",
		"INSERT IGNORE INTO oki_ref (id, name) VALUES (1, 'a'), (4, 'd')",
		"UPDATE oki_ref SET n = 2 WHERE id > 1",
		// DDL on every shard, in place and copying (each shard's rows).
		"ALTER TABLE oki ADD COLUMN m INT",
		"ALTER TABLE oki ALGORITHM=COPY, ADD COLUMN k INT",
		"ALTER TABLE oki_ref ALGORITHM=COPY, ADD COLUMN k INT",
		"TRUNCATE TABLE oki_ref",
		// Several statements in one text.
		"UPDATE oki SET n = 3; INSERT INTO oki (id, name) VALUES (20, 't'), (24, 'u'); SELECT id FROM oki; UPDATE oki SET n = 4 WHERE id = 20",
		"UPDATE oki SET n = 5 WHERE id = 20; UPDATE oki SET n = 6 WHERE id = 20",
		"UPDATE oki SET n = 7 WHERE id = 20",
		// In a transaction.
		"BEGIN",
		"UPDATE oki SET n = 9 WHERE id = 1",
		"COMMIT",
	} {
		same(q, "")
	}
	// Not a comparison of two empty texts: a statement over both shards,
	// which used no index on either.
	q := "UPDATE oki SET n = 8"
	d, x := okQuery(t, direct, q, "", 0xffff), okQuery(t, proxied, q, "", 0xffff)
	if want := `ok affected=18 id=0 status=0x22 warnings=0 info="*Rows matched: 18  Changed: 18  Warnings: 0"`; d != want || x != want {
		t.Errorf("%s\n  MariaDB:       %s\n  through proxy: %s\n  want:          %s", q, d, x, want)
	}

	// LOAD DATA LOCAL into a sharded and a reference table: Records,
	// Deleted, Skipped.
	for _, tb := range []string{"oki", "oki_ref"} {
		same("TRUNCATE TABLE "+tb, "")
		same("LOAD DATA LOCAL INFILE 'f' INTO TABLE "+tb+" FIELDS TERMINATED BY ',' (id, name)", "1,a\n2,b\n3,c\n4,d\n")
		same("LOAD DATA LOCAL INFILE 'f' IGNORE INTO TABLE "+tb+" FIELDS TERMINATED BY ',' (id, name)", "1,x\n5,e\n6,f\n")
		same("LOAD DATA LOCAL INFILE 'f' REPLACE INTO TABLE "+tb+" FIELDS TERMINATED BY ',' IGNORE 1 LINES (id, name)", "id,name\n2,B\n3,C\n7,g\n")
		same("LOAD DATA LOCAL INFILE 'f' IGNORE INTO TABLE "+tb+" FIELDS TERMINATED BY ',' (id, name, n)", "8,h,1\n9,i,x\n10,j\n")
	}

	// Prepared statements: the OK of COM_STMT_EXECUTE has the text too.
	for _, q := range []struct {
		sql  string
		args []int64
	}{
		{"INSERT INTO oki (id, name) VALUES (?, 'p'), (?, 'q'), (?, 'r')", []int64{30, 31, 32}},
		{"INSERT INTO oki (id, name) VALUES (?, 'p')", []int64{33}},
		{"UPDATE oki SET n = n + ? WHERE id IN (?, ?, ?)", []int64{1, 30, 31, 32}},
		{"UPDATE oki SET n = ?", []int64{7}},
		{"INSERT IGNORE INTO oki (id, name) VALUES (?, 'p'), (?, 'q')", []int64{30, 26}},
		{"ALTER TABLE oki DROP COLUMN k", nil},
	} {
		d := okExecute(t, direct, okPrepare(t, direct, q.sql), q.args...)
		x := okExecute(t, proxied, okPrepare(t, proxied, q.sql), q.args...)
		if d != x {
			t.Errorf("prepared %s %v\n  MariaDB:       %s\n  through proxy: %s", q.sql, q.args, d, x)
		}
	}
	same("SELECT id, name, n FROM oki ORDER BY id", "")
	same("DROP TABLE oki, oki_ref", "")

	// A table in sub-tables: a statement's parts are per (shard,
	// sub-table), DDL runs on each sub-table. (DROP TABLE IF EXISTS of a
	// missing one has a note per sub-table, naming it: not compared.)
	okQuery(t, direct, "DROP TABLE IF EXISTS oki_sub", "", okStatus)
	okQuery(t, proxied, "DROP TABLE IF EXISTS oki_sub", "", okStatus)
	for _, q := range []string{
		"CREATE TABLE oki_sub (id BIGINT PRIMARY KEY, name VARCHAR(10), n INT NOT NULL DEFAULT 0)",
		"INSERT INTO oki_sub (id, name) VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd'), (5, 'e'), (6, 'f'), (7, 'g'), (8, 'h')",
		"INSERT IGNORE INTO oki_sub (id, name) VALUES (1, 'a'), (9, 'i'), (10, 'j')",
		"UPDATE oki_sub SET n = 1 WHERE id < 5",
		"UPDATE oki_sub SET n = 1",
		"ALTER TABLE oki_sub ADD COLUMN k INT",
		"ALTER TABLE oki_sub ALGORITHM=COPY, ADD COLUMN m INT",
		"DROP TABLE oki_sub",
	} {
		same(q, "")
	}
}

// okPair logs in to MariaDB (directDB on s0's server) and to the proxy
// (proxyDB) with raw clients, and returns them with a function that runs a
// statement on both (with file for a LOAD DATA LOCAL) and fails the test
// when the answers differ.
func okPair(t *testing.T, directDB, proxyDB string) (direct, proxied *proxytest.Raw, same func(q, file string) string) {
	t.Helper()
	setup(t)
	direct = proxytest.LoginWith(t, env.topo.Shards()[0].Primary().Addr(), localdb.AppUser, directDB, okCaps)
	proxied = proxytest.LoginWith(t, env.proxy, "root", proxyDB, okCaps)
	return direct, proxied, func(q, file string) string {
		t.Helper()
		d, x := okQuery(t, direct, q, file, okStatus), okQuery(t, proxied, q, file, okStatus)
		if d != x {
			t.Errorf("%s\n  MariaDB:       %s\n  through proxy: %s", q, d, x)
		}
		return x
	}
}

// TestOKInfoUnsharded: in an unsharded database the shard's info text
// reaches the client as it is: INSERT ... SELECT, a multi-row INSERT,
// UPDATE, LOAD DATA LOCAL (relayed), a procedure's CALL, prepared
// statements.
func TestOKInfoUnsharded(t *testing.T) {
	direct, proxied, same := okPair(t, "direct", "test")
	for _, q := range []string{
		"DROP TABLE IF EXISTS oki_u, oki_u2",
		"DROP PROCEDURE IF EXISTS oki_p",
		"CREATE TABLE oki_u (id BIGINT PRIMARY KEY, name VARCHAR(10), n INT NOT NULL DEFAULT 0)",
		"CREATE TABLE oki_u2 (id BIGINT PRIMARY KEY, name VARCHAR(10), n INT NOT NULL DEFAULT 0)",
		"INSERT INTO oki_u (id, name) VALUES (1, 'a'), (2, 'b'), (3, 'c')",
		"INSERT INTO oki_u2 SELECT * FROM oki_u WHERE id = 1",
		"INSERT IGNORE INTO oki_u2 SELECT * FROM oki_u",
		"UPDATE oki_u SET n = n + 1 WHERE id > 1",
		"CREATE PROCEDURE oki_p() UPDATE oki_u SET n = n + 1",
		"CALL oki_p()",
		"ALTER TABLE oki_u ALGORITHM=COPY, ADD COLUMN k INT",
	} {
		same(q, "")
	}
	same("LOAD DATA LOCAL INFILE 'f' IGNORE INTO TABLE oki_u2 FIELDS TERMINATED BY ',' (id, name)", "1,x\n5,e\n6,f\n")
	for _, q := range []string{"UPDATE oki_u SET n = n + 1", "INSERT INTO oki_u (id, name) VALUES (10, 'x'), (11, 'y')", "CALL oki_p()"} {
		d := okExecute(t, direct, okPrepare(t, direct, q))
		x := okExecute(t, proxied, okPrepare(t, proxied, q))
		if d != x {
			t.Errorf("prepared %s\n  MariaDB:       %s\n  through proxy: %s", q, d, x)
		}
	}
	same("DROP PROCEDURE oki_p", "")
	same("DROP TABLE oki_u, oki_u2", "")
}

// TestOKInfoCLI: the mariadb command-line client prints the same lines
// under "Query OK" through the proxy (a sharded table over both shards) as
// from MariaDB.
func TestOKInfoCLI(t *testing.T) {
	setup(t)
	bin, err := exec.LookPath("mariadb")
	if err != nil {
		t.Fatalf("mariadb client not installed (make deps installs it): %v", err)
	}
	script := `DROP TABLE IF EXISTS oki;
CREATE TABLE oki (id BIGINT PRIMARY KEY, name VARCHAR(10));
INSERT INTO oki (id, name) VALUES (1, 'a'), (8, 'b'), (11, 'c'), (16, 'd');
INSERT IGNORE INTO oki (id, name) VALUES (1, 'a'), (9, 'e');
UPDATE oki SET name = 'z';
ALTER TABLE oki ADD COLUMN k INT;
DROP TABLE oki;
`
	// The timings differ: "(0.003 sec)".
	timing := regexp.MustCompile(` \([0-9.]+ sec\)`)
	run := func(addr, user, db string) string {
		host, port, _ := net.SplitHostPort(addr)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, "--no-defaults", "-h"+host, "-P"+port, "-u"+user, "--connect-timeout=5", "-vvv", db)
		cmd.Stdin = strings.NewReader(script)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Fatalf("mariadb to %s: %v\n%s", addr, err, out.String())
		}
		return timing.ReplaceAllString(out.String(), "")
	}
	d := run(env.topo.Shards()[0].Primary().Addr(), localdb.AppUser, "direct_demo")
	x := run(env.proxy, "root", "demo")
	if d != x || !strings.Contains(x, "Records: 4  Duplicates: 0  Warnings: 0") {
		t.Errorf("MariaDB:\n%s\nthrough the proxy:\n%s", d, x)
	}
}
