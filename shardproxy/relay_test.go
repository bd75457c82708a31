package shardproxy_test

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strata-db/strata/shardproxy/proxytest"
	"github.com/strata-db/strata/shardproxy/wire"
)

// Prepared CALLs and cursors, byte for byte: the same command packets go
// to a shard's MariaDB and to the proxy's unsharded database, and every
// packet of each answer (sequence number and payload) must be the same.
// The answers to COM_STMT_PREPARE are read, not compared (the proxy's
// parameter and column metadata are its own).

// relayStep is one command of a relay script: a prepare (its statement is
// then n, counting from 1, in later steps' packets) or another command,
// whose answer is compared.
type relayStep struct {
	what    string
	prepare string
	pkt     func(ids []uint32) []byte
	silent  bool // no answer (COM_STMT_CLOSE)
	// rowsOnly: only the rows are compared (a text query, whose metadata
	// the proxy writes its own way, run for what it shows); noCols: all
	// but the column definitions (the proxy's own, for a cursor it keeps).
	rowsOnly, noCols bool
}

func rPrepare(sql string) relayStep { return relayStep{what: "prepare " + sql, prepare: sql} }

// rExec executes statement n with BIGINT parameters (types bound; a nil
// value is NULL) and cursor flags.
func rExec(n int, flags byte, vals ...any) relayStep {
	return relayStep{what: fmt.Sprintf("execute %d flags %d %v", n, flags, vals), pkt: func(ids []uint32) []byte {
		b := binary.LittleEndian.AppendUint32([]byte{0x17}, ids[n-1])
		b = append(b, flags, 1, 0, 0, 0)
		if len(vals) == 0 {
			return b
		}
		nulls := make([]byte, (len(vals)+7)/8)
		for i, v := range vals {
			if v == nil {
				nulls[i/8] |= 1 << (i % 8)
			}
		}
		b = append(b, nulls...)
		b = append(b, 1)
		for range vals {
			b = append(b, 8, 0)
		}
		for _, v := range vals {
			if v != nil {
				b = binary.LittleEndian.AppendUint64(b, uint64(v.(int)))
			}
		}
		return b
	}}
}

// rExecProxyCursor is rExec of a statement whose cursor the proxy keeps:
// its column definitions are the proxy's.
func rExecProxyCursor(n int, flags byte, vals ...any) relayStep {
	s := rExec(n, flags, vals...)
	s.noCols = true
	return s
}

func rFetch(n int, rows uint32) relayStep {
	return relayStep{what: fmt.Sprintf("fetch %d rows of %d", rows, n), pkt: func(ids []uint32) []byte {
		id := uint32(999)
		if n > 0 {
			id = ids[n-1]
		}
		b := binary.LittleEndian.AppendUint32([]byte{0x1c}, id)
		return binary.LittleEndian.AppendUint32(b, rows)
	}}
}

func rCmd(what string, b byte, n int) relayStep {
	return relayStep{what: what, silent: b == 0x19, pkt: func(ids []uint32) []byte {
		return binary.LittleEndian.AppendUint32([]byte{b}, ids[n-1])
	}}
}

func rQuery(sql string) relayStep {
	return relayStep{what: sql, rowsOnly: true, pkt: func([]uint32) []byte { return append([]byte{0x03}, sql...) }}
}

// runRelayScript runs steps on c and returns each answer's packets.
func runRelayScript(t *testing.T, c *proxytest.Raw, deprecate bool, steps []relayStep) []string {
	t.Helper()
	var out []string
	var ids []uint32
	for _, s := range steps {
		if s.prepare != "" {
			c.Send(0, append([]byte{0x16}, s.prepare...))
			p := c.Recv()
			if p[0] != 0x00 {
				t.Fatalf("%s: %q", s.what, p)
			}
			ids = append(ids, binary.LittleEndian.Uint32(p[1:]))
			cols, params := int(binary.LittleEndian.Uint16(p[5:])), int(binary.LittleEndian.Uint16(p[7:]))
			for _, k := range []int{params, cols} {
				if k > 0 && !deprecate {
					k++
				}
				for i := 0; i < k; i++ {
					c.Recv()
				}
			}
			continue
		}
		c.Send(0, s.pkt(ids))
		if s.silent {
			continue
		}
		a := strings.Join(readRelayAnswer(c, deprecate, s.pkt(ids)[0] == 0x1c, s.rowsOnly, s.noCols), " ")
		// Statement ids are each server's: name them by their order.
		for n, id := range ids {
			a = strings.ReplaceAll(a, fmt.Sprintf("(%d)", id), fmt.Sprintf("(statement %d)", n+1))
		}
		out = append(out, a)
	}
	return out
}

// readRelayAnswer reads one whole answer: every result of it, to the
// packet without SERVER_MORE_RESULTS_EXISTS; a cursor's ends after its
// columns. fetch: the answer is rows and their end.
func readRelayAnswer(c *proxytest.Raw, deprecate, fetch, rowsOnly, noCols bool) []string {
	var pkts []string
	inRows, inCols := false, false
	next := func() []byte {
		seq, p, err := c.ReadPacket()
		if err != nil {
			c.T.Fatalf("read: %v", err)
		}
		if inCols && noCols {
			return p
		}
		if !rowsOnly || inRows && p[0] != 0xfe {
			pkts = append(pkts, fmt.Sprintf("[%d]%q", seq, p))
		}
		return p
	}
	rows := func() uint16 { // to the end of rows; its status
		inRows = true
		defer func() { inRows = false }()
		for {
			p := next()
			if p[0] == 0xff {
				return 0
			}
			if p[0] == 0xfe && len(p) < 9 {
				return endStatus(p, deprecate)
			}
		}
	}
	if fetch {
		rows()
		return pkts
	}
	for {
		p := next()
		var st uint16
		switch {
		case p[0] == 0xff:
			return pkts
		case p[0] == 0x00:
			st = endStatus(p, true)
		default:
			n, _, _ := wire.ReadLenEncInt(p, 0)
			inCols = true
			for i := uint64(0); i < n; i++ {
				next()
			}
			inCols = false
			if !deprecate {
				if st = endStatus(next(), false); st&0x40 != 0 {
					return pkts // a cursor: rows come with COM_STMT_FETCH
				}
			}
			st = rows()
		}
		if st&0x08 == 0 {
			return pkts
		}
	}
}

// endStatus reads the status flags of an EOF packet, or of an OK (ok).
func endStatus(p []byte, ok bool) uint16 {
	if !ok {
		if len(p) < 5 {
			return 0
		}
		return binary.LittleEndian.Uint16(p[3:])
	}
	pos := 1
	for i := 0; i < 2; i++ {
		_, next, good := wire.ReadLenEncInt(p, pos)
		if !good {
			return 0
		}
		pos = next
	}
	if len(p) < pos+2 {
		return 0
	}
	return binary.LittleEndian.Uint16(p[pos:])
}

// compareRelay runs steps against MariaDB and the proxy, with and without
// CLIENT_DEPRECATE_EOF, and reports every answer that differs.
func compareRelay(t *testing.T, p *proxytest.Proxy, steps []relayStep) {
	t.Helper()
	const multiResults = 1 << 17
	base := uint32(proxytest.CapProtocol41 | proxytest.CapSecureConnection | proxytest.CapPluginAuth | proxytest.CapConnectWithDB | multiResults)
	for _, deprecate := range []bool{false, true} {
		caps := base
		if deprecate {
			caps |= proxytest.CapDeprecateEOF
		}
		got := map[string][]string{}
		for _, tg := range probeTargets(p) {
			got[tg.name] = runRelayScript(t, proxytest.LoginWith(t, tg.addr, tg.user, p.Test, caps), deprecate, steps)
		}
		i := 0
		for _, s := range steps {
			if s.prepare != "" || s.silent {
				continue
			}
			if m, x := got["mariadb"][i], got["proxy"][i]; m != x {
				t.Errorf("deprecate EOF %v, %s:\n  MariaDB: %s\n  proxy:   %s", deprecate, s.what, m, x)
			}
			i++
		}
	}
}

// TestRelayPreparedCall: a prepared CALL answers with every result set and
// the final OK (SERVER_MORE_RESULTS_EXISTS between them), and one that
// signals after its first result sends that result, then the error; in and
// outside a transaction, with a user variable for an OUT parameter.
func TestRelayPreparedCall(t *testing.T) {
	p := proxytest.Start(t, proxytest.SharedTopology(t), nil)
	db := p.Open(t, p.Test)
	proxytest.MustExec(t, db, "CREATE PROCEDURE rc(IN a INT, OUT b INT) BEGIN SELECT a; SELECT a+1 AS x, 'q' AS y; SET b = a*2; END")
	proxytest.MustExec(t, db, "CREATE PROCEDURE rsig(r INT) BEGIN SELECT r; SIGNAL SQLSTATE '45001' SET MESSAGE_TEXT = 'boom', MYSQL_ERRNO = 45001; END")
	proxytest.MustExec(t, db, "CREATE PROCEDURE rnone() BEGIN DO 1; END")
	proxytest.MustExec(t, db, "CREATE PROCEDURE rrows(n INT) BEGIN SELECT seq FROM seq_1_to_1000 WHERE seq <= n; SELECT 'done'; END")
	proxytest.MustExec(t, db, "CREATE TABLE relay_t (id INT PRIMARY KEY)")
	proxytest.MustExec(t, db, "CREATE PROCEDURE rins(i INT) BEGIN INSERT INTO relay_t VALUES (i); SELECT COUNT(*) FROM relay_t; END")
	compareRelay(t, p, []relayStep{
		rPrepare("CALL rc(?, ?)"),
		rExec(1, 0, 5, nil),
		rExec(1, 0, 7, nil),
		rPrepare("CALL rsig(?)"),
		rExec(2, 0, 42),
		rQuery("SELECT 1"),
		rPrepare("CALL rnone()"),
		rExec(3, 0),
		rPrepare("CALL rrows(?)"),
		rExec(4, 0, 700),
		rPrepare("CALL rc(?, @out)"),
		rExec(5, 0, 21),
		rQuery("SELECT @out"),
		rPrepare("CALL nosuch(?)"),
		rExec(6, 0, 1),
		// In a transaction: the CALL's insert is rolled back with it.
		rQuery("BEGIN"),
		rPrepare("CALL rins(?)"),
		rExec(7, 0, 1),
		rQuery("ROLLBACK"),
		rQuery("SELECT COUNT(*) FROM relay_t"),
		rExec(7, 0, 2),
		rQuery("DELETE FROM relay_t"),
		// A cursor type on a CALL: MariaDB opens none.
		rExec(1, 1, 3, nil),
		rFetch(1, 1),
	})
}

// TestRelayCursor: COM_STMT_EXECUTE with CURSOR_TYPE_READ_ONLY opens a
// cursor (the columns, then one EOF or OK with SERVER_STATUS_CURSOR_EXISTS),
// COM_STMT_FETCH returns the rows in batches (SERVER_STATUS_LAST_ROW_SENT
// after the last, then 1421), COM_STMT_RESET and another execute close it,
// an unknown statement is 1243.
func TestRelayCursor(t *testing.T) {
	p := proxytest.Start(t, proxytest.SharedTopology(t), nil)
	db := p.Open(t, p.Test)
	proxytest.MustExec(t, db, "CREATE TABLE cur_t (id INT PRIMARY KEY, s VARCHAR(10))")
	proxytest.MustExec(t, db, "INSERT INTO cur_t SELECT seq, CONCAT('s', seq) FROM seq_1_to_50")
	compareRelay(t, p, []relayStep{
		rPrepare("SELECT id, s FROM cur_t WHERE id > ? ORDER BY id"),
		rExec(1, 1, 40),
		rFetch(1, 3), rFetch(1, 3), rFetch(1, 5), rFetch(1, 1),
		rExec(1, 1, 0),
		rFetch(1, 2),
		rExec(1, 1, 45), // closes the open cursor, opens another
		rFetch(1, 100),
		rExec(1, 1, 48),
		rCmd("reset", 0x1a, 1),
		rFetch(1, 2),
		rFetch(0, 2),
		rExec(1, 0, 47), // no cursor: rows at once
		rFetch(1, 1),
		rPrepare("SELECT id FROM cur_t WHERE id > 1000"),
		rExec(2, 1),
		rFetch(2, 5),
		rPrepare("DO 1"),
		rExec(3, 1),
		rFetch(3, 1),
		// Two cursors at once, and COM_STMT_CLOSE of one.
		rExec(1, 1, 10),
		rExec(2, 1),
		rFetch(1, 2),
		rFetch(2, 2),
		rCmd("close", 0x19, 1),
		rFetch(1, 2),
		rQuery("SELECT 1"),
		// In a transaction: the cursor lives on the transaction's
		// connection and sees its writes; it ends with the transaction.
		rQuery("BEGIN"),
		rQuery("DELETE FROM cur_t WHERE id > 48"),
		rExec(2, 1),
		rExec(1, 1, 45),
		rFetch(1, 10),
		rExec(1, 1, 40),
		rFetch(1, 2),
		rQuery("ROLLBACK"),
		rFetch(1, 2),
		rQuery("SET autocommit = 0"),
		rExec(1, 1, 47),
		rFetch(1, 1),
		rQuery("COMMIT"),
		rQuery("SET autocommit = 1"),
		// Under a sql_mode that changes how text is read the statement
		// takes the ordinary path: the proxy keeps the cursor itself.
		rQuery("SET SESSION sql_mode = 'ANSI_QUOTES'"),
		rExecProxyCursor(1, 1, 44),
		rFetch(1, 2), rFetch(1, 2), rFetch(1, 2), rFetch(1, 2),
		rExecProxyCursor(1, 1, 46),
		rFetch(1, 4), // exactly the rows left: the cursor stays open
		rFetch(1, 4),
		rFetch(1, 4),
		rExecProxyCursor(1, 1, 40),
		rCmd("reset", 0x1a, 1),
		rFetch(1, 1),
		rExecProxyCursor(2, 1),
		rFetch(2, 3),
		rExec(3, 1),
		rExecProxyCursor(1, 1, 45),
		rExecProxyCursor(1, 1, 47), // closes the open one
		rFetch(1, 10),
		rExecProxyCursor(1, 1, 49),
		rCmd("close", 0x19, 1),
		rFetch(1, 1),
		rQuery("SET SESSION sql_mode = DEFAULT"),
	})

	// A cursor holds its backend connection until it is closed: by the
	// last fetch, COM_STMT_CLOSE, or the client leaving.
	inUse := func() float64 { return p.Metric(t, "strata_proxy_pool_in_use", "shard", "s0") }
	before := inUse()
	c := proxytest.Login(t, p.Server.Addr(), "root", p.Test)
	open := func() {
		runRelayScript(t, c, false, []relayStep{rPrepare("SELECT id FROM cur_t WHERE id > ?"), rExec(1, 1, 0)})
	}
	open()
	if got := inUse(); got != before+1 {
		t.Errorf("an open cursor: %v backend connections in use, want %v", got, before+1)
	}
	c.Send(0, []byte{0x19, 1, 0, 0, 0}) // COM_STMT_CLOSE of the first statement
	c.Send(0, []byte{0x0e})
	c.Recv()
	if got := inUse(); got != before {
		t.Errorf("after COM_STMT_CLOSE: %v backend connections in use, want %v", got, before)
	}
	open()
	c.Conn.Close()
	deadline := time.Now().Add(5 * time.Second)
	for inUse() != before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := inUse(); got != before {
		t.Errorf("after the client left: %v backend connections in use, want %v", got, before)
	}
}

// TestPrepareTrailingComment: a statement ending in ';' then a comment
// (sqlx sends `INSERT … ;--`) prepares and runs as on MariaDB.
func TestPrepareTrailingComment(t *testing.T) {
	p := proxytest.Start(t, proxytest.SharedTopology(t), nil)
	compareRelay(t, p, []relayStep{
		rPrepare("SELECT ? + 1 ;--"),
		rExec(1, 0, 41),
		rPrepare("SELECT ? + 2; -- done\n"),
		rExec(2, 0, 40),
		rPrepare("SELECT ? + 3 ; /* c */"),
		rExec(3, 0, 39),
	})
}

// TestCursorSharded: in a sharded database a cursor over one shard is the
// shard's, and one over every shard is the proxy's, over the merged rows:
// both fetch in batches exactly the rows an execute without a cursor
// returns.
func TestCursorSharded(t *testing.T) {
	p := proxytest.Start(t, proxytest.SharedTopology(t), nil)
	db := p.Open(t, p.Demo)
	proxytest.MustExec(t, db, "CREATE TABLE customers (id BIGINT PRIMARY KEY, name VARCHAR(40))")
	for i := 1; i <= 30; i++ {
		proxytest.MustExec(t, db, "INSERT INTO customers (id, name) VALUES (?, ?)", i, fmt.Sprintf("c%d", i))
	}
	// rowsOf are the rows (binary rows start with 0) of answers.
	rowsOf := func(answers ...string) []string {
		var rows []string
		for _, a := range answers {
			for _, pkt := range strings.Split(a, " ") {
				v, err := strconv.Unquote(pkt[strings.Index(pkt, "]")+1:])
				if err != nil {
					t.Fatal(err)
				}
				if len(v) > 0 && v[0] == 0x00 {
					rows = append(rows, fmt.Sprintf("%q", v))
				}
			}
		}
		return rows
	}
	for _, deprecate := range []bool{false, true} {
		caps := uint32(proxytest.CapProtocol41 | proxytest.CapSecureConnection | proxytest.CapPluginAuth | proxytest.CapConnectWithDB)
		if deprecate {
			caps |= proxytest.CapDeprecateEOF
		}
		c := proxytest.LoginWith(t, p.Server.Addr(), "root", p.Demo, caps)
		for _, tc := range []struct {
			sql  string
			vals []any
		}{
			{"SELECT id, name FROM customers WHERE id > ? ORDER BY id", []any{3}}, // every shard
			{"SELECT id, name FROM customers WHERE id = ?", []any{7}},             // one shard
			{"SELECT COUNT(*) FROM customers WHERE id > ?", []any{0}},
		} {
			steps := []relayStep{rPrepare(tc.sql), rExec(1, 0, tc.vals...), rExec(1, 1, tc.vals...)}
			for i := 0; i < 12; i++ {
				steps = append(steps, rFetch(1, 3))
			}
			got := runRelayScript(t, c, deprecate, steps)
			whole, opened := got[0], got[1]
			if len(rowsOf(opened)) != 0 || !strings.Contains(opened, `\x00\x00B\x00`) {
				t.Errorf("%s (deprecate EOF %v): no cursor opened: %s", tc.sql, deprecate, opened)
				continue
			}
			last := 2
			for last < len(got)-1 && !strings.Contains(got[last], `\x00\x00\x82\x00`) {
				last++
			}
			rows, fetched := rowsOf(whole), rowsOf(got[2:last+1]...)
			if strings.Join(fetched, " ") != strings.Join(rows, " ") || len(rows) == 0 {
				t.Errorf("%s (deprecate EOF %v):\n  rows:    %v\n  fetched: %v", tc.sql, deprecate, rows, fetched)
			}
			if !strings.Contains(got[last+1], "no open cursor") {
				t.Errorf("%s (deprecate EOF %v): a fetch after the last row: %s", tc.sql, deprecate, got[last+1])
			}
		}
	}
}
