package shardproxy_test

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/strata-db/strata/localdb"
	"github.com/strata-db/strata/shardproxy/proxytest"
	"github.com/strata-db/strata/shardproxy/wire"
)

// Transcripts: the same packets go to one MariaDB (database Test on s0,
// holding the tables whole) and to the proxy (the sharded database Demo
// over two shards, or Test), and every packet of every answer is kept byte
// for byte, the databases' names made one.

// tStep is one command of a transcript and how its answer is read.
type tStep struct {
	pkt    []byte
	none   bool // no answer (COM_STMT_SEND_LONG_DATA, COM_STMT_CLOSE)
	prep   bool // a COM_STMT_PREPARE
	binary bool // rows in the binary protocol
	str    bool // a bare string (COM_STATISTICS)
	fetch  bool // a COM_STMT_FETCH: rows, then EOF or ERR (a cursor's)
}

func tq(sql string) tStep    { return tStep{pkt: append([]byte{0x03}, sql...)} }
func tprep(sql string) tStep { return tStep{pkt: append([]byte{0x16}, sql...), prep: true} }

// texec executes statement n (1, 2, ... in the order prepared) with flags,
// the parameters' types bound and vals ([]byte values with type, NULL as nil).
func texec(n uint32, flags byte, bound bool, types []uint16, vals [][]byte) tStep {
	b := binary.LittleEndian.AppendUint32([]byte{0x17}, n)
	b = append(b, flags, 1, 0, 0, 0)
	if len(types) > 0 {
		nulls := make([]byte, (len(types)+7)/8)
		for i, v := range vals {
			if v == nil {
				nulls[i/8] |= 1 << (i % 8)
			}
		}
		b = append(b, nulls...)
		if bound {
			b = append(b, 1)
			for _, ty := range types {
				b = binary.LittleEndian.AppendUint16(b, ty)
			}
		} else {
			b = append(b, 0)
		}
		for _, v := range vals {
			b = append(b, v...)
		}
	}
	return tStep{pkt: b, binary: true}
}

func i64(v int64) []byte { return binary.LittleEndian.AppendUint64(nil, uint64(v)) }
func lstr(s string) []byte {
	return append([]byte{byte(len(s))}, s...) // under 251 bytes
}

// rawTranscript runs steps on c and returns every packet of every answer.
func rawTranscript(c *proxytest.Raw, steps []tStep, mask uint16, names ...string) []string {
	var out []string
	var ids []uint32
	norm := func(p []byte) string {
		if p[0] == 0xfe && len(p) >= 5 && len(p) < 9 && mask != 0 {
			p = append([]byte(nil), p...)
			binary.LittleEndian.PutUint16(p[3:], binary.LittleEndian.Uint16(p[3:])&^mask)
		}
		s := string(p)
		for _, n := range names {
			s = strings.ReplaceAll(s, n, strings.Repeat("D", len(n)))
		}
		return fmt.Sprintf("%q", s)
	}
	for _, s := range steps {
		pkt := s.pkt
		if len(pkt) >= 5 && pkt[0] >= 0x17 && pkt[0] <= 0x1c && pkt[0] != 0x1b {
			if n := binary.LittleEndian.Uint32(pkt[1:]); n >= 1 && int(n) <= len(ids) {
				pkt = append([]byte(nil), pkt...)
				binary.LittleEndian.PutUint32(pkt[1:], ids[n-1])
			}
		}
		c.Send(0, pkt)
		var ans []string
		rec := func(p []byte) { ans = append(ans, norm(p)) }
		if s.none {
			out = append(out, "-")
			continue
		}
		_ = c.Conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		p, err := c.Read()
		if err != nil {
			out = append(out, "read: "+err.Error())
			return out
		}
		if s.prep {
			if p[0] == 0x00 {
				ids = append(ids, binary.LittleEndian.Uint32(p[1:]))
				cols := int(binary.LittleEndian.Uint16(p[5:]))
				params := int(binary.LittleEndian.Uint16(p[7:]))
				q := append([]byte(nil), p...)
				copy(q[1:5], "IDID")
				rec(q)
				for _, k := range []int{params, cols} {
					for i := 0; k > 0 && i <= k; i++ {
						rec(c.Recv())
					}
				}
			} else {
				rec(p)
			}
			out = append(out, strings.Join(ans, " | "))
			continue
		}
		if s.fetch {
			for {
				rec(p)
				if p[0] == 0xff || (p[0] == 0xfe && len(p) < 9) {
					break
				}
				p = c.Recv()
			}
			out = append(out, strings.Join(ans, " | "))
			continue
		}
		if s.str {
			out = append(out, fmt.Sprintf("string %d", len(p)))
			continue
		}
		for {
			rec(p)
			if p[0] == 0xff || (p[0] == 0xfe && len(p) < 9) {
				break
			}
			if p[0] == 0x00 {
				if !moreResults(p) {
					break
				}
				p = c.Recv()
				continue
			}
			// A result set.
			n, _, _ := wire.ReadLenEncInt(p, 0)
			for i := uint64(0); i < n; i++ {
				rec(c.Recv())
			}
			e := c.Recv() // EOF
			rec(e)
			if len(e) >= 5 && binary.LittleEndian.Uint16(e[3:])&0x40 != 0 { // cursor opened
				break
			}
			var end []byte
			for {
				r := c.Recv()
				rec(r)
				if r[0] == 0xff || (r[0] == 0xfe && len(r) < 9) {
					end = r
					break
				}
			}
			if end[0] == 0xff || !moreResults(end) {
				break
			}
			p = c.Recv()
			ans = append(ans, "||")
			continue
		}
		out = append(out, strings.Join(ans, " | "))
	}
	return out
}

// compareTranscripts runs steps against MariaDB (database Test) and the
// proxy (database db) and reports every answer that differs.
func compareTranscripts(t *testing.T, p *proxytest.Proxy, db string, steps []tStep) {
	t.Helper()
	compareTranscriptsMasked(t, p, db, steps, 0)
}

// compareTranscriptsMasked is compareTranscripts with the status flags of
// mask cleared in EOF packets (SERVER_QUERY_NO_INDEX_USED: each shard's
// optimizer's choice over its own rows).
func compareTranscriptsMasked(t *testing.T, p *proxytest.Proxy, db string, steps []tStep, mask uint16) {
	t.Helper()
	direct := proxytest.Login(t, p.Topo.Shards()[0].Primary().Addr(), localdb.AppUser, p.Test)
	proxied := proxytest.Login(t, p.Server.Addr(), "root", db)
	m := rawTranscript(direct, steps, mask, p.Test, p.Demo)
	x := rawTranscript(proxied, steps, mask, p.Test, p.Demo)
	for i := range steps {
		a, b := "", ""
		if i < len(m) {
			a = m[i]
		}
		if i < len(x) {
			b = x[i]
		}
		what := steps[i].pkt[:min(len(steps[i].pkt), 60)]
		if a != b {
			t.Errorf("step %d %q:\nMariaDB %s\nproxy   %s", i, what, a, b)
		} else {
			t.Logf("step %d %q: %s", i, what, a)
		}
	}
}

// setupTwin makes table name with schema ddl and rows in the proxy's
// database Demo (sharded, through the proxy) and in Test on s0 directly.
func setupTwin(t *testing.T, p *proxytest.Proxy, ddl string, inserts ...string) {
	t.Helper()
	direct, err := p.Topo.Shards()[0].Primary().OpenAdmin(p.Test)
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	proxied := p.Open(t, p.Demo)
	for _, q := range append([]string{ddl}, inserts...) {
		proxytest.MustExec(t, direct, q)
		proxytest.MustExec(t, proxied, q)
	}
}

// TestProtocolUnknownCommands: a command byte MariaDB does not know, and
// COM_SET_OPTION of an unknown option, get one ERR 1047 "Unknown command"
// each, as from MariaDB, and the connection goes on (the listener answered
// an unknown option with an ERR and an EOF, which the client read as its
// next command's answer). COM_REFRESH and COM_SHUTDOWN, which MariaDB runs
// for a user with the privilege, are unknown to the proxy; COM_SHUTDOWN is
// not sent here, as it would stop the shard.
func TestProtocolUnknownCommands(t *testing.T) {
	p := proxytest.Start(t, proxytest.SharedTopology(t), nil)
	var steps []tStep
	for _, b := range []byte{0x00, 0x05, 0x06, 0x0b, 0x0f, 0x10, 0x13, 0x14, 0x1d, 0x20, 0x30, 0xfe, 0xff} {
		steps = append(steps, tStep{pkt: []byte{b, 1, 2}}, tStep{pkt: []byte{0x0e}})
	}
	steps = append(steps, tStep{pkt: []byte{0x1b, 5, 0}}, tStep{pkt: []byte{0x0e}},
		tStep{pkt: []byte{0x1b, 0, 1}}, tStep{pkt: []byte{0x0e}},
		tStep{pkt: []byte{0x1b, 1, 0}}, tq("SELECT 1; SELECT 2"))
	compareTranscripts(t, p, p.Test, steps)
}

// TestProtocolResetConnectionStatus: the OK of COM_RESET_CONNECTION says
// autocommit, as MariaDB's does (the listener's said nothing: a client
// that reads the flags thought autocommit off after a reset).
func TestProtocolResetConnectionStatus(t *testing.T) {
	p := proxytest.Start(t, proxytest.SharedTopology(t), nil)
	compareTranscripts(t, p, p.Test, []tStep{
		tq("SET autocommit = 0"), {pkt: []byte{0x0e}},
		{pkt: []byte{0x1f}}, {pkt: []byte{0x0e}},
		tq("BEGIN"), {pkt: []byte{0x1f}}, {pkt: []byte{0x0e}},
	})
	// With CLIENT_SESSION_TRACK the OK carries an empty info.
	for _, tg := range probeTargets(p) {
		c := proxytest.LoginWith(t, tg.addr, tg.user, p.Test, proxytest.CapProtocol41|proxytest.CapSecureConnection|proxytest.CapPluginAuth|proxytest.CapConnectWithDB|1<<23)
		c.Send(0, []byte{0x1f})
		if got := c.Recv(); len(got) < 4 || binary.LittleEndian.Uint16(got[3:]) != 0x02 {
			t.Errorf("%s: COM_RESET_CONNECTION with session tracking: %q, want status autocommit", tg.name, got)
		}
	}
}

// TestProtocolOneStatementNear: without CLIENT_MULTI_STATEMENTS, several
// statements get MariaDB's 1064 naming the text from the first token after
// the first statement's ';' (not the ';', not one inside a string or a
// comment), and that token's line.
func TestProtocolOneStatementNear(t *testing.T) {
	p := proxytest.Start(t, proxytest.SharedTopology(t), nil)
	var steps []tStep
	for _, q := range []string{
		"SELECT 1; SELECT 2", "SELECT 1;\nSELECT 2", "SELECT 1 ; SELECT 2", "SELECT 1; -- c\nSELECT 2",
		"SELECT ';'; SELECT 2", "SELECT 1;;SELECT 2", "SELECT 1; /* c */ SELECT 2", "SELECT 1; # c\nSELECT 2",
		"SELECT 1 /* ; */; SELECT 2", "SELECT 1;\t\n\n  UPDATE x",
	} {
		steps = append(steps, tq(q))
	}
	compareTranscripts(t, p, p.Test, steps)
}

// TestProtocolShowWarnings: SHOW WARNINGS and SHOW ERRORS answer as
// MariaDB's, byte for byte: its column definitions, LIMIT, a warning count
// of 0 in their own EOF (the list stays), and the list kept over a
// statement that names no table and raises nothing (SET, SELECT 'a',
// SELECT @@warning_count), whose own count is 0; a statement that raises
// warnings, or an error, replaces it.
func TestProtocolShowWarnings(t *testing.T) {
	p := proxytest.Start(t, proxytest.SharedTopology(t), nil)
	compareTranscripts(t, p, p.Test, []tStep{
		tq("DO 1/0"), tq("SHOW WARNINGS"), tq("SHOW WARNINGS"), tq("SET @w = @@warning_count"), tq("SHOW WARNINGS"),
		tq("SHOW ERRORS"), tq("SHOW WARNINGS LIMIT 0"), tq("SELECT 'a'"), tq("SHOW COUNT(*) WARNINGS"),
		tq("DO 1/0, 2/0, 3/0"), tq("SHOW WARNINGS LIMIT 1"), tq("SHOW WARNINGS LIMIT 1, 1"), tq("SHOW WARNINGS LIMIT 5, 1"),
		tq("SET @x = 1"), tq("SHOW WARNINGS"), tq("SELECT 'a' FROM dual"), tq("SHOW WARNINGS"),
		tq("SELECT nope"), tq("SHOW WARNINGS"), tq("SHOW ERRORS"), tq("SHOW ERRORS LIMIT 0"), tq("SET @e = @@error_count"), tq("SHOW WARNINGS"),
		tq("SELECT CAST('x' AS SIGNED)"), tq("SHOW WARNINGS"),
	})
}

// TestProtocolColumnFlags: the column definitions of results over two
// shards, text and binary, are MariaDB's byte for byte. vitess's client
// adds NUM_FLAG (0x8000) to numeric columns as libmysql does when it reads
// them, and the listener wrote it on: MariaDB never sends it. A prepare
// response names the columns as the client's text does (it said
// "sum(u)" for "SUM(u)" over a sharded table: the shard's answer to the
// re-formatted statement), as the executes do.
func TestProtocolColumnFlags(t *testing.T) {
	p := proxytest.Start(t, proxytest.SharedTopology(t), nil)
	setupTwin(t, p, "CREATE TABLE t1 (id BIGINT PRIMARY KEY, v VARCHAR(20), d DECIMAL(10,3), u INT UNSIGNED, f DOUBLE, z TINYINT ZEROFILL)",
		"INSERT INTO t1 (id, v, d, u, f, z) VALUES (1,'a',1.5,1,0.5,1),(2,'b',2.25,2,1.5,2),(3,'c',NULL,3,NULL,3),(4,'d',4.125,4,2,4)")
	compareTranscriptsMasked(t, p, p.Demo, []tStep{
		tq("SELECT * FROM t1 ORDER BY id"),
		tq("SELECT id, d, u FROM t1 WHERE id = 2"),
		tq("SELECT COUNT(*), SUM(d), MAX(f), MIN(u), 2 + 3 FROM t1"),
		tq("SELECT 1, 2.5, -3"),
		// (The parameters' definitions in a prepare response are the
		// listener's: VAR_STRING where MariaDB says NULL.)
		tprep("SELECT * FROM t1 ORDER BY id"),
		texec(1, 0, true, nil, nil),
		tprep("SELECT SUM(u), COUNT(*) FROM t1"),
		texec(2, 0, true, nil, nil),
	}, 0x20)
}

// TestProtocolMultiStatements: several statements in one COM_QUERY over
// a sharded table, answered as MariaDB answers them, byte for byte: every
// EOF of a result set with more after it says so (the one after its
// columns too), each result's warning count is its own statement's (the
// listener ended a result set with the next statement's count), an error
// ends the text, and a syntax error names the text from its token to the
// end of the whole text, at the line within its statement; a statement
// that ends too soon is near ” (the parser named its last token).
func TestProtocolMultiStatements(t *testing.T) {
	p := proxytest.Start(t, proxytest.SharedTopology(t), nil)
	setupTwin(t, p, "CREATE TABLE t1 (id BIGINT PRIMARY KEY, v VARCHAR(20))",
		"INSERT INTO t1 (id, v) VALUES (1,'a'),(2,'b'),(3,'c'),(4,'d')")
	compareTranscriptsMasked(t, p, p.Demo, []tStep{
		{pkt: []byte{0x1b, 0, 0}}, // COM_SET_OPTION: multi-statements on
		tq("SELECT v FROM t1 ORDER BY id; SELECT nope FROM t1; SELECT 2"),
		tq("UPDATE t1 SET v = 'x' WHERE id = 1; UPDATE t1 SET v = 'y'; SELECT v FROM t1 ORDER BY id"),
		tq("INSERT INTO t1 (id, v) VALUES (1, 'dup'); SELECT 'after'"),
		tq("SELECT 'a'; SELEC 2; SELECT 3"),
		tq("SELECT * FROM t1 WHERE"), tq("SELECT * FROM t1 WHERE id ="), tq("SELECT * FROM t1 ORDER"), tq("SELECT (1"),
		tq("SELECT id FROM t1 WHERE id = 1; SELECT 1/0; SHOW WARNINGS"),
		tq("SELECT v FROM t1 WHERE id = 2; DO 1/0; SELECT 'b'"),
		tq("BEGIN; UPDATE t1 SET v = 'z' WHERE id = 2; ROLLBACK; SELECT v FROM t1 WHERE id = 2"),
		tq("SELECT 'a' ; ; SELECT 'b'"),
		tq("SELECT 'a';\nSELEC 2"),
		tq("SELECT 'a';\nSELECT 2 FROM\nWHERE 1; SELECT 'c'"),
		tq("SELECT 'a'; SELECT * FROM dual WHERE; SELECT 'c'"),
		tq("SELECT 'a'; SELECT (1; SELECT 'c'"),
		tq("SELECT 'a';\n\nSELEC 2 /* x */;\nSELECT 'c'"),
		tq("USE nodb; SELECT 'x'"),
	}, 0x20)
}

// TestProtocolPrepareRefused: a prepared SELECT whose select list names a
// column that is not there is refused at COM_STMT_PREPARE, as MariaDB
// refuses it (the proxy prepared it and failed only at execute), here
// after the DDL that dropped it; a statement prepared before the DDL
// answers with the new columns. (The parameters' definitions in a prepare
// response are the listener's, and the columns are found with the WHERE
// left out: a bad column there still fails at execute.)
func TestProtocolPrepareRefused(t *testing.T) {
	p := proxytest.Start(t, proxytest.SharedTopology(t), nil)
	setupTwin(t, p, "CREATE TABLE t1 (id BIGINT PRIMARY KEY, v VARCHAR(20))",
		"INSERT INTO t1 (id, v) VALUES (1,'a'),(2,'b'),(3,'c'),(4,'d')")
	compareTranscriptsMasked(t, p, p.Demo, []tStep{
		tprep("SELECT * FROM t1 ORDER BY id"),
		tprep("SELECT nope FROM t1 WHERE id = 1"),
		tprep("SELECT v, COUNT(*) FROM t1 GROUP BY nope"),
		tq("ALTER TABLE t1 ADD COLUMN w INT DEFAULT 7"),
		tq("ALTER TABLE t1 DROP COLUMN v"),
		texec(1, 0, true, nil, nil),
		tprep("SELECT v FROM t1"),
		tprep("SELECT w FROM t1 ORDER BY id"),
		texec(2, 0, true, nil, nil),
	}, 0x20|0x0400) // (MariaDB flags the execute after the DDL SERVER_STATUS_METADATA_CHANGED)
}

// TestProtocolPrepareParams: a prepare response's parameter definitions
// are MariaDB's (type NULL: the listener said VAR_STRING), and executes
// with parameters of every kind answer as MariaDB does: unsigned, signed,
// NULL, strings, doubles, types not bound on a later execute, none bound
// on the first (1210).
func TestProtocolPrepareParams(t *testing.T) {
	p := proxytest.Start(t, proxytest.SharedTopology(t), nil)
	setupTwin(t, p, "CREATE TABLE t1 (id BIGINT UNSIGNED PRIMARY KEY, v VARCHAR(20), d DOUBLE)",
		"INSERT INTO t1 (id, v, d) VALUES (1,'a',1),(2,'b',2),(18446744073709551615,'max',3)")
	u64 := func(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }
	compareTranscriptsMasked(t, p, p.Demo, []tStep{
		tprep("SELECT id, v FROM t1 WHERE id = ?"),
		texec(1, 0, true, []uint16{8 | 0x8000}, [][]byte{u64(18446744073709551615)}),
		texec(1, 0, true, []uint16{8}, [][]byte{u64(18446744073709551615)}),
		texec(1, 0, false, []uint16{8}, [][]byte{i64(1)}),
		texec(1, 0, true, []uint16{1}, [][]byte{{2}}),
		texec(1, 0, true, []uint16{5}, [][]byte{u64(0x4000000000000000)}),
		texec(1, 0, true, []uint16{0xfe}, [][]byte{lstr("18446744073709551615")}),
		texec(1, 0, true, []uint16{6}, [][]byte{nil}),
		tprep("SELECT id FROM t1 WHERE v IN (?, ?) ORDER BY id"),
		texec(2, 0, false, []uint16{0xfe, 0xfe}, [][]byte{lstr("a"), lstr("max")}),
		texec(2, 0, true, []uint16{0xfe, 0xfe}, [][]byte{lstr("a"), lstr("max")}),
		texec(2, 0, true, []uint16{0xfe, 0xfe}, [][]byte{lstr("a"), nil}),
		tprep("INSERT INTO t1 (id, v, d) VALUES (?, ?, ?)"),
		texec(3, 0, true, []uint16{8 | 0x8000, 0xfe, 5}, [][]byte{u64(18446744073709551614), lstr("big"), u64(0x3ff8000000000000)}),
		texec(3, 0, true, []uint16{8 | 0x8000, 0xfe, 5}, [][]byte{u64(18446744073709551614), lstr("dup"), u64(0)}),
		tq("SELECT id, v, d FROM t1 ORDER BY id"),
	}, 0x20)
}
