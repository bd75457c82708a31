package shardproxy_test

import (
	"bytes"
	"database/sql"
	"encoding/binary"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/strata-db/strata/localdb"
	"github.com/strata-db/strata/shardproxy/config"
	"github.com/strata-db/strata/shardproxy/proxytest"
	"github.com/strata-db/strata/shardproxy/wire"
	"vitess.io/vitess/go/mysql"
)

// Protocol scripts: the same command packets go to a shard's MariaDB and
// to the proxy, and each answer is summed up (kind, error code, warning
// count, rows) and compared. Messages are not compared: the proxy's may
// name the shard.

// answer says how a script step's response is read.
type answer int

const (
	ansResp   answer = iota // OK, ERR or a result set
	ansNone                 // no response (COM_STMT_SEND_LONG_DATA, COM_STMT_CLOSE)
	ansString               // a bare string (COM_STATISTICS)
	ansPrep                 // a COM_STMT_PREPARE response: statement n of the script (1, 2, ...) is the n-th prepared
	ansAuth                 // COM_CHANGE_USER: an auth switch answered with no password, then OK or ERR
)

type step struct {
	pkt []byte
	ans answer
}

func q(sql string) step     { return step{pkt: append([]byte{0x03}, sql...)} }
func prep(sql string) step  { return step{pkt: append([]byte{0x16}, sql...), ans: ansPrep} }
func cmd(b ...byte) step    { return step{pkt: b} }
func silent(b ...byte) step { return step{pkt: b, ans: ansNone} }
func withID(b byte, id uint32, rest ...byte) []byte {
	p := binary.LittleEndian.AppendUint32([]byte{b}, id)
	return append(p, rest...)
}

// execTyped is a COM_STMT_EXECUTE of id with BIGINT parameters, types
// bound; execUnbound sends the values without types.
func execTyped(id uint32, vals ...int64) step { return step{pkt: execPacket(id, vals...)} }
func execUnbound(id uint32, vals ...int64) step {
	b := withID(0x17, id, 0, 1, 0, 0, 0)
	if len(vals) > 0 {
		b = append(b, make([]byte, (len(vals)+7)/8)...)
		b = append(b, 0)
		for _, v := range vals {
			b = binary.LittleEndian.AppendUint64(b, uint64(v))
		}
	}
	return step{pkt: b}
}

// runScript runs steps on c and sums up each answer.
func runScript(c *proxytest.Raw, steps []step) []string {
	var out []string
	var ids []uint32 // the statements prepared, in order
	for _, s := range steps {
		pkt := s.pkt
		// Statement n of the script is the n-th prepared: ids are the
		// server's.
		if len(pkt) >= 5 && pkt[0] >= 0x17 && pkt[0] <= 0x1a {
			if n := binary.LittleEndian.Uint32(pkt[1:]); n >= 1 && int(n) <= len(ids) {
				pkt = append([]byte(nil), pkt...)
				binary.LittleEndian.PutUint32(pkt[1:], ids[n-1])
			}
		}
		c.Send(0, pkt)
		if s.ans == ansPrep {
			p := c.Recv()
			if p[0] != 0x00 {
				out = append(out, sumPacket(p))
				continue
			}
			ids = append(ids, binary.LittleEndian.Uint32(p[1:]))
			out = append(out, readPrepared(c, p))
			continue
		}
		out = append(out, readAnswer(c, s.ans))
	}
	return out
}

func readAnswer(c *proxytest.Raw, a answer) string {
	s, more := readOne(c, a)
	for more {
		var next string
		next, more = readOne(c, ansResp)
		s += " + " + next
	}
	return s
}

// readOne reads one answer (one result of several); more says another
// follows (SERVER_MORE_RESULTS_EXISTS).
func readOne(c *proxytest.Raw, a answer) (string, bool) {
	switch a {
	case ansNone:
		return "-", false
	case ansString:
		p := c.Recv()
		if p[0] == 0xff || p[0] == 0x00 {
			return sumPacket(p), moreResults(p)
		}
		// The words, not the figures.
		var words []string
		for _, f := range strings.Fields(string(p)) {
			if strings.HasSuffix(f, ":") {
				words = append(words, f)
			}
		}
		return "string " + strings.Join(words, " "), false
	case ansAuth:
		p := c.Recv()
		if p[0] == 0xfe {
			c.Send(c.Seq, nil)
			p = c.Recv()
		}
		return sumPacket(p), moreResults(p)
	}
	p := c.Recv()
	switch {
	case p[0] == 0x00, p[0] == 0xff, p[0] == 0xfe && len(p) < 9:
		return sumPacket(p), moreResults(p)
	}
	n, _, _ := wire.ReadLenEncInt(p, 0)
	for i := uint64(0); i <= n; i++ { // columns, EOF
		c.Recv()
	}
	rows := 0
	var first string
	for {
		r := c.Recv()
		if r[0] == 0xff {
			return fmt.Sprintf("%d rows, then %s", rows, sumPacket(r)), false
		}
		if r[0] == 0xfe && len(r) < 9 {
			return fmt.Sprintf("%d rows %s, %s", rows, first, sumPacket(r)), moreResults(r)
		}
		if rows == 0 {
			first = strconv.Quote(string(r))
		}
		rows++
	}
}

// moreResults reads SERVER_MORE_RESULTS_EXISTS in an OK or EOF packet.
func moreResults(p []byte) bool {
	switch {
	case p[0] == 0xfe && len(p) >= 5:
		return binary.LittleEndian.Uint16(p[3:])&0x08 != 0
	case p[0] == 0x00:
		pos := 1
		for i := 0; i < 2; i++ {
			_, next, ok := wire.ReadLenEncInt(p, pos)
			if !ok {
				return false
			}
			pos = next
		}
		return len(p) >= pos+2 && binary.LittleEndian.Uint16(p[pos:])&0x08 != 0
	}
	return false
}

// readPrepared reads the rest of a COM_STMT_PREPARE's OK response (p).
func readPrepared(c *proxytest.Raw, p []byte) string {
	cols := int(binary.LittleEndian.Uint16(p[5:]))
	params := int(binary.LittleEndian.Uint16(p[7:]))
	for _, k := range []int{params, cols} {
		for i := 0; k > 0 && i <= k; i++ {
			c.Recv()
		}
	}
	return fmt.Sprintf("prepared, params %d", params)
}

// sumPacket sums up an OK, ERR or EOF packet.
func sumPacket(p []byte) string {
	switch {
	case p[0] == 0xff:
		return fmt.Sprintf("ERR %d", proxytest.ErrCode(p))
	case p[0] == 0x00:
		w, _ := okWarnings(p)
		return fmt.Sprintf("OK warnings %d", w)
	case p[0] == 0xfe && len(p) >= 3:
		return fmt.Sprintf("EOF warnings %d", binary.LittleEndian.Uint16(p[1:]))
	}
	return strconv.Quote(string(p))
}

// compareScript runs the script against MariaDB and the proxy (fresh
// connections to database test) and reports every answer that differs.
func compareScript(t *testing.T, p *proxytest.Proxy, steps []step) {
	t.Helper()
	compareScriptFor(t, p, func(string) []step { return steps })
}

// compareScriptFor is compareScript with steps that name the user logged
// in (MariaDB's and the proxy's differ).
func compareScriptFor(t *testing.T, p *proxytest.Proxy, build func(user string) []step) {
	t.Helper()
	got := map[string][]string{}
	var steps []step
	for _, tg := range probeTargets(p) {
		steps = build(tg.user)
		got[tg.name] = runScript(proxytest.Login(t, tg.addr, tg.user, p.Test), steps)
	}
	for i := range steps {
		m, x := got["mariadb"][i], got["proxy"][i]
		if m != x {
			t.Errorf("step %d %q: MariaDB %s, proxy %s", i, steps[i].pkt[:min(len(steps[i].pkt), 40)], m, x)
		} else {
			t.Logf("step %d %q: %s", i, steps[i].pkt[:min(len(steps[i].pkt), 40)], m)
		}
	}
}

// execPacket is a COM_STMT_EXECUTE of id with BIGINT parameters.
func execPacket(id uint32, vals ...int64) []byte {
	b := withID(0x17, id, 0, 1, 0, 0, 0)
	if len(vals) > 0 {
		b = append(b, make([]byte, (len(vals)+7)/8)...)
		b = append(b, 1)
		for range vals {
			b = append(b, 8, 0)
		}
		for _, v := range vals {
			b = binary.LittleEndian.AppendUint64(b, uint64(v))
		}
	}
	return b
}

// okWarnings reads the warning count of an OK packet.
func okWarnings(pkt []byte) (uint16, bool) {
	if len(pkt) < 7 || pkt[0] != 0x00 {
		return 0, false
	}
	pos := 1
	for i := 0; i < 2; i++ { // affected rows, insert id
		_, next, ok := wire.ReadLenEncInt(pkt, pos)
		if !ok {
			return 0, false
		}
		pos = next
	}
	if len(pkt) < pos+4 {
		return 0, false
	}
	return binary.LittleEndian.Uint16(pkt[pos+2:]), true
}

// TestProtocolPreparedCommands: COM_STMT_RESET, COM_STMT_SEND_LONG_DATA
// and COM_STMT_EXECUTE, good and bad, answered as MariaDB answers them;
// the connection goes on after each.
func TestProtocolPreparedCommands(t *testing.T) {
	p := proxytest.Start(t, proxytest.SharedTopology(t), nil)
	ping := cmd(0x0e)
	short := execPacket(1, 5)
	short = short[:len(short)-4]
	longData := func(id uint32, param uint16, data string) step {
		b := binary.LittleEndian.AppendUint16(withID(0x18, id), param)
		return silent(append(b, data...)...)
	}
	compareScript(t, p, []step{
		// Unknown statements.
		cmd(withID(0x1a, 99)...), ping,
		cmd(0x1a, 1), ping,
		longData(99, 0, "abc"), ping,
		silent(0x18, 1, 0), ping, // too short: ignored
		execTyped(77, 1), ping,
		prep("SELECT ? + 1"),
		// A parameter the statement lacks: every execute fails until
		// COM_STMT_RESET.
		longData(1, 5, "x"), ping,
		execTyped(1, 5), execTyped(1, 5),
		cmd(withID(0x1a, 1)...), execTyped(1, 5),
		// A value cut short.
		{pkt: short}, ping,
		// The first execute must bind the types; later ones need not.
		prep("SELECT ? + 2"),
		execUnbound(2, 7), execTyped(2, 7), execUnbound(2, 8),
		// Long data: the value is the data sent (a string: '12' + 3).
		prep("SELECT CONCAT(?, 'x')"),
		longData(3, 0, "ab"), longData(3, 0, "cd"),
		{pkt: append(withID(0x17, 3, 0, 1, 0, 0, 0), 0, 1, 0xfc, 0)},
		// Gone after the execute.
		{pkt: append(withID(0x17, 3, 0, 1, 0, 0, 0), 0, 1, 0xfc, 0, 1, 'z')},
		// COM_STMT_CLOSE, then the statement is unknown.
		silent(withID(0x19, 3)...), cmd(withID(0x1a, 3)...), ping,
		// Long data over 64 KiB, to an unknown statement and to a known.
		longData(99, 0, strings.Repeat("x", 100000)), ping,
		prep("SELECT LENGTH(?)"),
		longData(4, 0, strings.Repeat("x", 100000)), longData(4, 0, "yz"),
		{pkt: append(withID(0x17, 4, 0, 1, 0, 0, 0), 0, 1, 0xfc, 0)},
	})
}

// TestProtocolWarnings: the OK of a prepared statement carries its warning
// count, and counts past max_error_count (64) are the server's.
func TestProtocolWarnings(t *testing.T) {
	p := proxytest.Start(t, proxytest.SharedTopology(t), nil)
	db := p.Open(t, p.Test)
	proxytest.MustExec(t, db, "CREATE TABLE IF NOT EXISTS proto_w (id BIGINT PRIMARY KEY)")
	proxytest.MustExec(t, db, "INSERT IGNORE INTO proto_w VALUES (1)")
	dups := "INSERT IGNORE INTO proto_w VALUES (1)" + strings.Repeat(", (1)", 99)
	compareScript(t, p, []step{
		prep("INSERT IGNORE INTO proto_w VALUES (?)"),
		execTyped(1, 1),
		q("INSERT IGNORE INTO proto_w VALUES (1)"),
		q(dups),
		q("SELECT @@warning_count"),
		prep(dups),
		execTyped(2),
		q("SELECT 1"),
	})
}

// TestProtocolChangeUser: COM_CHANGE_USER authenticates again and starts
// the session over (user variables and prepared statements gone), in the
// database it names; a refused one leaves the connection usable.
func TestProtocolChangeUser(t *testing.T) {
	p := proxytest.Start(t, proxytest.SharedTopology(t), nil)
	change := func(user, db string) step {
		b := append([]byte{0x11}, user+"\x00"...)
		b = append(b, 0) // no auth response: the auth switch asks again
		b = append(b, db+"\x00"...)
		b = append(b, 45, 0)
		b = append(b, "mysql_native_password\x00"...)
		return step{pkt: b, ans: ansAuth}
	}
	compareScriptFor(t, p, func(user string) []step {
		return []step{
			q("SET @proto_a = 1"), prep("SELECT 1"), q("BEGIN"),
			change(user, p.Demo),
			q("SELECT @proto_a, DATABASE(), @@in_transaction"),
			execTyped(1),
			change("proto_nobody", p.Test), cmd(0x0e),
			q("SELECT DATABASE()"),
			change(user, ""),
			q("SELECT DATABASE()"),
			change(user, "proto_no_such_db"), cmd(0x0e),
		}
	})
}

// TestProtocolAdminCommands: COM_STATISTICS, COM_DEBUG and
// COM_PROCESS_INFO get MariaDB's kinds of answers, and mariadb-admin
// status and processlist work through the proxy.
func TestProtocolAdminCommands(t *testing.T) {
	p := proxytest.Start(t, proxytest.SharedTopology(t), nil)
	compareScript(t, p, []step{
		{pkt: []byte{0x09}, ans: ansString},
		cmd(0x0d),
		cmd(0x0e),
		{pkt: withID(0x0c, 2000000000)}, // COM_PROCESS_KILL of no session: 1094
	})
	c := proxytest.Login(t, p.Server.Addr(), "root", p.Test)
	c.Send(0, []byte{0x0a})
	if got := readAnswer(c, ansResp); !strings.Contains(got, "rows") {
		t.Errorf("COM_PROCESS_INFO: %s, want the process list", got)
	}
	admin, err := exec.LookPath("mariadb-admin")
	if err != nil {
		t.Skip("no mariadb-admin")
	}
	host, port, _ := net.SplitHostPort(p.Server.Addr())
	for _, sub := range []string{"status", "processlist", "ping"} {
		out, err := exec.Command(admin, "--no-defaults", "-h", host, "-P", port, "-u", "root", sub).CombinedOutput()
		if err != nil {
			t.Errorf("mariadb-admin %s: %v: %s", sub, err, out)
		} else {
			t.Logf("mariadb-admin %s: %s", sub, out)
		}
	}
	// mariadb-admin kill sends COM_PROCESS_KILL with the proxy's id.
	victim := p.Open(t, p.Test)
	victim.SetMaxOpenConns(1)
	var id string
	if err := victim.QueryRow("SELECT CONNECTION_ID()").Scan(&id); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(admin, "--no-defaults", "-h", host, "-P", port, "-u", "root", "kill", id).CombinedOutput(); err != nil {
		t.Errorf("mariadb-admin kill %s: %v: %s", id, err, out)
	}
	var n int
	if err := victim.QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = " + id).Scan(&n); err != nil || n != 0 {
		t.Errorf("after mariadb-admin kill %s: session listed %d times (%v), want a new connection without it", id, n, err)
	}
}

// TestProtocolQueryErrors: empty statements, stray semicolons and
// several statements where one is expected, with multi-statements on.
func TestProtocolQueryErrors(t *testing.T) {
	p := proxytest.Start(t, proxytest.SharedTopology(t), nil)
	compareScript(t, p, []step{
		prep("/* c */"),
		cmd(0x1b, 0, 0), // COM_SET_OPTION: multi-statements on
		prep("SELECT 1; SELECT 2"), prep(";"), prep("SELECT 1;"),
		q(""), q(";"), q("/* c */"), q("-- c\n"), q("SELECT 1;;"), q("SELECT 1 ; "), q(";SELECT 1"),
		q("SELECT 1; SELECT 2"), q("SELECT 1;;SELECT 2"), q("SELECT 1; /* c */"),
		q("select 1 from dual where 1 = 0"),
		cmd(0x1b, 1, 0), // multi-statements off
		q("SELECT 1;;"), q("SELECT 1; SELECT 2"), q("SELECT 1; /* c */"),
		cmd(0x0e),
	})
}

// TestProtocolFoundRows: a client with CLIENT_FOUND_ROWS (go-sql-driver's
// clientFoundRows=true; Connector/J's default) gets the rows an UPDATE
// matched, as from MariaDB itself; other clients the rows it changed.
func TestProtocolFoundRows(t *testing.T) {
	p := proxytest.Start(t, proxytest.SharedTopology(t), nil)
	setup := p.Open(t, p.Test)
	proxytest.MustExec(t, setup, "CREATE TABLE IF NOT EXISTS proto_fr (id INT PRIMARY KEY, v INT)")
	script := []string{
		"INSERT INTO proto_fr VALUES (1, 1), (2, 2), (3, 3)",
		"UPDATE proto_fr SET v = v WHERE id = 1",
		"UPDATE proto_fr SET v = 2 WHERE id <= 3",
		"UPDATE proto_fr SET v = 9 WHERE id = 99",
		"INSERT INTO proto_fr VALUES (1, 2) ON DUPLICATE KEY UPDATE v = VALUES(v)",
		"INSERT INTO proto_fr VALUES (1, 5) ON DUPLICATE KEY UPDATE v = VALUES(v)",
		"INSERT INTO proto_fr VALUES (4, 4) ON DUPLICATE KEY UPDATE v = VALUES(v)",
		"INSERT INTO proto_fr VALUES (1, 5), (2, 7), (5, 5), (3, 2) ON DUPLICATE KEY UPDATE v = VALUES(v)",
		"INSERT INTO proto_fr VALUES (1, 5), (2, 7) ON DUPLICATE KEY UPDATE v = VALUES(v)",
		"INSERT INTO proto_fr VALUES (1, 6), (2, 8) ON DUPLICATE KEY UPDATE v = VALUES(v)",
		"INSERT INTO proto_fr SELECT s.id, s.v + 1 FROM proto_fr AS s WHERE s.id <= 2 ON DUPLICATE KEY UPDATE v = 1",
		"REPLACE INTO proto_fr VALUES (1, 5)",
		"INSERT IGNORE INTO proto_fr VALUES (1, 1)",
		"DELETE FROM proto_fr WHERE id > 3",
	}
	direct := p.Topo.Shards()[0].Primary().DSN(p.Test)
	run := func(dsn string, prepared bool) []string {
		db, err := sql.Open("mysql", dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		proxytest.MustExec(t, db, "DELETE FROM proto_fr")
		var out []string
		for _, q := range script {
			var r sql.Result
			if prepared {
				var st *sql.Stmt
				if st, err = db.Prepare(q); err == nil {
					r, err = st.Exec()
					st.Close()
				}
			} else {
				r, err = db.Exec(q)
			}
			if err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			n, _ := r.RowsAffected()
			out = append(out, strconv.FormatInt(n, 10))
		}
		return out
	}
	for _, flag := range []string{"clientFoundRows=true", "clientFoundRows=false"} {
		for _, prepared := range []bool{false, true} {
			want := run(direct+"&"+flag, prepared)
			got := run(p.DSN(p.Test, flag), prepared)
			for i := range script {
				if got[i] != want[i] {
					t.Errorf("%s, prepared %v: %s: proxy %s rows affected, MariaDB %s", flag, prepared, script[i], got[i], want[i])
				}
			}
		}
	}
}

// TestProtocolFoundRowsScatter: the matched rows of every shard add up.
func TestProtocolFoundRowsScatter(t *testing.T) {
	p := proxytest.Start(t, proxytest.SharedTopology(t), func(c *config.Config) {
		c.Databases["demo"].Tables["proto_frs"] = &config.Table{Kind: "sharded", Column: "id"}
	})
	db := p.Open(t, p.Demo)
	proxytest.MustExec(t, db, "CREATE TABLE IF NOT EXISTS proto_frs (id BIGINT PRIMARY KEY, v INT)")
	proxytest.MustExec(t, db, "DELETE FROM proto_frs")
	for i := 1; i <= 10; i++ {
		proxytest.MustExec(t, db, "INSERT INTO proto_frs (id, v) VALUES (?, ?)", i, i)
	}
	for flag, want := range map[string]int64{"clientFoundRows=true": 10, "clientFoundRows=false": 0} {
		r := proxytest.MustExec(t, p.Open(t, p.Demo, flag), "UPDATE proto_frs SET v = v")
		if n, _ := r.RowsAffected(); n != want {
			t.Errorf("%s: UPDATE of every row, none changed, on both shards: %d rows affected, want %d", flag, n, want)
		}
	}
}

// TestProtocolBigStatement: max_allowed_packet is the client's statement
// size. The largest statement the shards' max_allowed_packet lets through
// (a packet one byte shorter: MariaDB refuses one of max_allowed_packet
// bytes) passes, directly and through the proxy, though the proxy's rewrite would
// make it longer (the session's USE/SET go in a round trip of their own,
// and a large statement of an unsharded database goes as written); one
// byte more gets 1153 from both, and the proxy pools no connection a shard
// closed (backend.max_open 1).
func TestProtocolBigStatement(t *testing.T) {
	p := proxytest.Start(t, proxytest.SharedTopology(t), func(c *config.Config) { c.Backend.MaxOpen = 1; c.Backend.MaxIdle = 1 })
	directAddr := p.Topo.Shards()[0].Primary().Addr()
	direct, err := sql.Open("mysql", p.Topo.Shards()[0].Primary().DSN(p.Test))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	var shardMax int
	if err := direct.QueryRow("SELECT @@max_allowed_packet").Scan(&shardMax); err != nil {
		t.Fatal(err)
	}
	if got := p.Server.MaxAllowedPacket(); got != min(shardMax, p.Config.MaxAllowedPacket) {
		t.Errorf("proxy's max_allowed_packet %d, shard's %d, configured %d", got, shardMax, p.Config.MaxAllowedPacket)
	}
	db := p.Open(t, p.Test)
	var proxyMax int
	if err := db.QueryRow("SELECT @@max_allowed_packet").Scan(&proxyMax); err != nil || proxyMax != shardMax {
		t.Errorf("SELECT @@max_allowed_packet through the proxy: %d %v, want %d", proxyMax, err, shardMax)
	}
	proxytest.MustExec(t, db, "CREATE TABLE IF NOT EXISTS proto_big (id INT PRIMARY KEY)")
	proxytest.MustExec(t, db, "DELETE FROM proto_big")

	// MariaDB takes packets shorter than max_allowed_packet: a statement
	// of shardMax-1 bytes with its command byte is the largest.
	for _, size := range []int{shardMax, shardMax - 1} {
		for _, side := range []struct{ name, addr, user string }{{"MariaDB", directAddr, localdb.AppUser}, {"proxy", p.Server.Addr(), "root"}} {
			c := proxytest.Login(t, side.addr, side.user, p.Test)
			// A statement of size bytes with its command byte: the packet
			// MariaDB compares with max_allowed_packet.
			head, tail := "\x03SELECT LENGTH('", "')"
			payload := make([]byte, 0, size)
			payload = append(payload, head...)
			for len(payload) < size-len(tail) {
				payload = append(payload, 'q')
			}
			payload = append(payload, tail...)
			// In 16 MiB pieces, as the protocol splits packets.
			var buf []byte
			seq := byte(0)
			for rest := payload; ; seq++ {
				n := min(len(rest), 1<<24-1)
				buf = append(buf, byte(n), byte(n>>8), byte(n>>16), seq)
				buf = append(buf, rest[:n]...)
				rest = rest[n:]
				if n < 1<<24-1 {
					break
				}
			}
			go func() { _, _ = c.Conn.Write(buf) }()
			pkt, err := c.Read()
			t.Logf("%s: statement of %d bytes (limit %d): %s %v", side.name, size, shardMax, sumPacket(pkt), err)
			switch {
			case size >= shardMax && (err != nil || proxytest.ErrCode(pkt) != 1153):
				t.Errorf("%s: statement of %d bytes (limit %d): %q %v, want ERR 1153", side.name, size, shardMax, pkt[:min(len(pkt), 80)], err)
			case size < shardMax && (err != nil || len(pkt) == 0 || pkt[0] != 1):
				t.Errorf("%s: statement of %d bytes (limit %d): %q %v, want its one column", side.name, size, shardMax, pkt[:min(len(pkt), 80)], err)
			}
			if size < shardMax && err == nil {
				c.Recv() // the column
				if pkt, err := c.Read(); err != nil || pkt[0] != 0xfe {
					t.Errorf("%s: no EOF after the column: %q %v", side.name, pkt, err)
				}
				row := c.Recv()
				if want := fmt.Sprint(size - len(head) - len(tail)); string(row[1:]) != want {
					t.Errorf("%s: LENGTH %q, want %s", side.name, row[1:], want)
				}
			}
		}
		if _, err := db.Exec("INSERT INTO proto_big VALUES (?)", size); err != nil {
			t.Errorf("the next client's INSERT: %v", err)
		}
	}
}

// TestProtocolChangeUserPassword: COM_CHANGE_USER to a user with a
// password, with either plugin: the client answers the auth switch's salt;
// a wrong answer is 1045 and the connection stays the old user's.
func TestProtocolChangeUserPassword(t *testing.T) {
	for _, plugin := range []string{"mysql_native_password", "caching_sha2_password"} {
		t.Run(plugin, func(t *testing.T) {
			p := proxytest.Start(t, proxytest.SharedTopology(t), func(c *config.Config) {
				c.Users = append(c.Users, config.User{Name: "proto_app", Password: "s3cret"})
				c.AuthPlugin = plugin
			})
			c := proxytest.Login(t, p.Server.Addr(), "root", p.Test)
			for _, pw := range []string{"wrong", "s3cret"} {
				b := append([]byte{0x11}, "proto_app\x00"...)
				b = append(b, 0)
				b = append(b, p.Test+"\x00"...)
				b = append(b, 45, 0)
				b = append(b, plugin+"\x00"...)
				c.Send(0, b)
				sw := c.Recv()
				name, salt, ok := bytes.Cut(sw[1:], []byte{0})
				if sw[0] != 0xfe || !ok || string(name) != plugin || len(salt) != 21 {
					t.Fatalf("auth switch: %q", sw)
				}
				scramble := mysql.ScrambleMysqlNativePassword
				if plugin == "caching_sha2_password" {
					scramble = mysql.ScrambleCachingSha2Password
				}
				c.Send(c.Seq, scramble(salt[:20], []byte(pw)))
				res := c.Recv()
				if res[0] == 0x01 { // caching_sha2_password: fast auth succeeded
					res = c.Recv()
				}
				if pw == "wrong" {
					if proxytest.ErrCode(res) != 1045 {
						t.Errorf("wrong password: %q, want 1045", res)
					}
					continue
				}
				if res[0] != 0x00 {
					t.Errorf("change to proto_app: %q", res)
				}
			}
			c.Send(0, []byte("\x03SELECT 1"))
			if _, row := readResponse(c); string(row) != "\x011" {
				t.Errorf("after COM_CHANGE_USER: %q", row)
			}
			if ss := p.Server.Executor().SessionByID(1); ss != nil {
				if _, _, user, _ := ss.Current(); user != "proto_app" {
					t.Errorf("session user %q, want proto_app", user)
				}
			}
		})
	}
}
