package shardproxy_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	vtmysql "vitess.io/vitess/go/mysql"
	"vitess.io/vitess/go/sqltypes"

	"github.com/strata-db/strata/localdb"
	"github.com/strata-db/strata/shardproxy/proxytest"
)

// laneTable creates demo.t3 (sharded by id) through the proxy with rows
// 1..40 of most column types, and returns a function that names the shard
// server holding an id.
func laneTable(t *testing.T, p *proxytest.Proxy) func(id int) *localdb.Server {
	t.Helper()
	db := p.Open(t, p.Demo, "interpolateParams=true")
	proxytest.MustExec(t, db, "DROP TABLE IF EXISTS t3")
	proxytest.MustExec(t, db, `CREATE TABLE t3 (id BIGINT PRIMARY KEY, s VARCHAR(50), d DECIMAL(10,2), f DOUBLE,
		dt DATETIME(3), b VARBINARY(20), n INT NULL, u BIGINT UNSIGNED, e ENUM('a','b'), j TEXT)`)
	for id := 1; id <= 40; id++ {
		var n any
		if id%3 != 0 {
			n = id * 10
		}
		proxytest.MustExec(t, db, "INSERT INTO t3 (id, s, d, f, dt, b, n, u, e, j) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", id, fmt.Sprintf("row 'ü' %d", id),
			fmt.Sprintf("%d.25", id), float64(id)/3, fmt.Sprintf("2024-02-29 10:00:%02d.123", id%60),
			[]byte{0, byte(id), 0xff}, n, uint64(1)<<63+uint64(id), []string{"a", "b"}[id%2], strings.Repeat("j", id))
	}
	return func(id int) *localdb.Server {
		for _, sh := range p.Topo.Shards() {
			sdb, err := sh.Primary().Open(p.Demo)
			if err != nil {
				t.Fatal(err)
			}
			var k int
			err = sdb.QueryRow("SELECT COUNT(*) FROM t3 WHERE id = ?", id).Scan(&k)
			sdb.Close()
			if err != nil {
				t.Fatal(err)
			}
			if k > 0 {
				return sh.Primary()
			}
		}
		return p.Topo.Shards()[0].Primary()
	}
}

var laneQueries = []struct {
	q  string
	id int
}{
	{"SELECT * FROM t3 WHERE id = %d", 5},
	{"SELECT id, s FROM t3 WHERE id = %d", 999},
	{"select n, s, b, e FROM t3 WHERE id=%d", 3},
	{"SELECT COUNT(*) AS c, MAX(d) AS md, MIN(dt) AS mt FROM t3 WHERE id = %d", 7},
	{"SELECT u, f, j, d * 2 AS dd FROM t3 WHERE id IN (%d)", 11},
	{"SELECT id FROM t3 WHERE id = %d FOR UPDATE", 12},
}

// TestLaneText: text statements the fast lane answers give the client what
// the shard itself gives (column definitions and rows, decoded by vitess's
// client), with and without CLIENT_DEPRECATE_EOF on the client's side.
func TestLaneText(t *testing.T) {
	p := proxytest.Start(t, proxytest.SharedTopology(t), nil)
	holder := laneTable(t, p)
	host, port, _ := net.SplitHostPort(p.Server.Addr())
	pn, _ := strconv.Atoi(port)
	ctx := context.Background()
	for _, noDeprecate := range []bool{false, true} {
		proxy, err := vtmysql.Connect(ctx, &vtmysql.ConnParams{Host: host, Port: pn, Uname: "root", DbName: p.Demo, DisableClientDeprecateEOF: noDeprecate})
		if err != nil {
			t.Fatal(err)
		}
		defer proxy.Close()
		for _, lq := range laneQueries {
			q := fmt.Sprintf(lq.q, lq.id)
			srv := holder(lq.id)
			sh, sp, _ := net.SplitHostPort(srv.Addr())
			spn, _ := strconv.Atoi(sp)
			direct, err := vtmysql.Connect(ctx, &vtmysql.ConnParams{Host: sh, Port: spn, Uname: localdb.AppUser, DbName: p.Demo, DisableClientDeprecateEOF: noDeprecate})
			if err != nil {
				t.Fatal(err)
			}
			want, err := direct.ExecuteFetch(q, 1000, true)
			direct.Close()
			if err != nil {
				t.Fatalf("%s on the shard: %v", q, err)
			}
			for round := 0; round < 3; round++ { // learned, then the lane
				before := p.Server.Stats().FastLaneHits
				got, err := proxy.ExecuteFetch(q, 1000, true)
				if err != nil {
					t.Fatalf("%s: %v", q, err)
				}
				laned := p.Server.Stats().FastLaneHits > before
				if round > 0 && !laned {
					t.Errorf("%s: round %d did not take the fast lane", q, round)
				}
				if !laned {
					continue // the ordinary path's encoding is vitess's, not the lane's business
				}
				if !reflect.DeepEqual(fieldsOf(got), fieldsOf(want)) {
					t.Errorf("%s (deprecateEOF=%v): fields\n%v\nwant\n%v", q, !noDeprecate, got.Fields, want.Fields)
				}
				if !reflect.DeepEqual(got.Rows, want.Rows) {
					t.Errorf("%s: rows %v, want %v", q, got.Rows, want.Rows)
				}
				if got.StatusFlags != vtmysql.ServerStatusAutocommit {
					t.Errorf("%s: status flags %#x", q, got.StatusFlags)
				}
			}
		}
	}
}

// fieldsOf is fields as values, for comparison.
func fieldsOf(r *sqltypes.Result) []string {
	var out []string
	for _, f := range r.Fields {
		out = append(out, f.String())
	}
	return out
}

// TestLanePrepared: prepared statements (go-sql-driver without
// interpolateParams: COM_STMT_PREPARE and COM_STMT_EXECUTE) take the fast
// lane, run as prepared statements on the shard, and give what the shard
// gives a client that prepares them itself.
func TestLanePrepared(t *testing.T) {
	p := proxytest.Start(t, proxytest.SharedTopology(t), nil)
	holder := laneTable(t, p)
	proxy := p.Open(t, p.Demo, "interpolateParams=false")
	proxy.SetMaxOpenConns(1)
	for _, lq := range laneQueries {
		q := strings.Replace(lq.q, "%d", "?", 1)
		direct, err := holder(lq.id).Open(p.Demo)
		if err != nil {
			t.Fatal(err)
		}
		want := queryAll(t, direct, q, lq.id)
		direct.Close()
		before := p.Server.Stats().FastLaneHits
		for round := 0; round < 3; round++ {
			if got := queryAll(t, proxy, q, lq.id); !reflect.DeepEqual(got, want) {
				t.Errorf("%s: %v\nwant %v", q, got, want)
			}
		}
		if n := p.Server.Stats().FastLaneHits - before; n < 3 {
			t.Errorf("%s: %d of 3 executes took the fast lane", q, n)
		}
	}
	// Parameters of other types route and run alike.
	stmt, err := proxy.Prepare("SELECT id, s FROM t3 WHERE id = ? AND s LIKE ? AND (n IS NULL OR n > ?) AND f > ?")
	if err != nil {
		t.Fatal(err)
	}
	defer stmt.Close()
	for _, args := range [][]any{{int64(5), "row%", int8(-1), 0.5}, {uint64(6), []byte("row%"), nil, float32(1)}, {"7", "row%", uint16(3), int32(-4)}} {
		var id int
		var s string
		if err := stmt.QueryRow(args...).Scan(&id, &s); err != nil || fmt.Sprint(id) != fmt.Sprint(args[0]) {
			t.Errorf("%v: %d %q %v", args, id, s, err)
		}
	}
}

// queryAll runs a query and returns its column types and rows as text.
func queryAll(t *testing.T, db *sql.DB, q string, args ...any) []string {
	t.Helper()
	rows, err := db.Query(q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cts, err := rows.ColumnTypes()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ct := range cts {
		n, _ := ct.Nullable()
		l, _ := ct.Length()
		pr, sc, _ := ct.DecimalSize()
		out = append(out, fmt.Sprintf("%s %s null=%v len=%d dec=%d,%d %v", ct.Name(), ct.DatabaseTypeName(), n, l, pr, sc, ct.ScanType()))
	}
	vals := make([]sql.RawBytes, len(cts))
	ptrs := make([]any, len(cts))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		var r []string
		for _, v := range vals {
			if v == nil {
				r = append(r, "<NULL>")
			} else {
				r = append(r, string(v))
			}
		}
		out = append(out, strings.Join(r, "|"))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestLaneSession: around the fast lane the session behaves as on the
// ordinary path: warnings and errors of lane statements are there for SHOW
// WARNINGS and SHOW ERRORS, a transaction leaves the lane and a large
// result arrives whole.
func TestLaneSession(t *testing.T) {
	p := proxytest.Start(t, proxytest.SharedTopology(t), nil)
	laneTable(t, p)
	ctx := context.Background()
	db := p.Open(t, p.Demo, "interpolateParams=true")
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	warnings := func() int {
		rows, err := conn.QueryContext(ctx, "SHOW WARNINGS")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		n := 0
		for rows.Next() {
			n++
		}
		return n
	}
	for round := 0; round < 3; round++ {
		before := p.Server.Stats().FastLaneHits
		var v int
		if err := conn.QueryRowContext(ctx, "SELECT CAST('12x' AS SIGNED) AS v FROM t3 WHERE id = 4").Scan(&v); err != nil || v != 12 {
			t.Fatalf("warning statement: %d %v", v, err)
		}
		if round > 0 && p.Server.Stats().FastLaneHits == before {
			t.Errorf("round %d: not in the fast lane", round)
		}
		if n := warnings(); n != 1 {
			t.Errorf("round %d: %d warnings, want 1", round, n)
		}
		_, err := conn.ExecContext(ctx, "SELECT nosuch FROM t3 WHERE id = 4")
		if proxytest.SQLErr(err) != 1054 {
			t.Errorf("round %d: unknown column: %v", round, err)
		}
		var level, msg string
		var code int
		if err := conn.QueryRowContext(ctx, "SHOW ERRORS").Scan(&level, &code, &msg); err != nil || code != 1054 {
			t.Errorf("round %d: SHOW ERRORS: %d %q %v", round, code, msg, err)
		}
	}
	// In a transaction the statement takes the ordinary path (pinned
	// connection), and the lane serves it again after COMMIT.
	if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	before := p.Server.Stats().FastLaneHits
	var s string
	if err := conn.QueryRowContext(ctx, "SELECT s FROM t3 WHERE id = 9").Scan(&s); err != nil {
		t.Fatal(err)
	}
	if p.Server.Stats().FastLaneHits != before {
		t.Error("a statement in a transaction took the fast lane")
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRowContext(ctx, "SELECT s FROM t3 WHERE id = 9").Scan(&s); err != nil || p.Server.Stats().FastLaneHits == before {
		t.Errorf("after COMMIT: %v, lane %v", err, p.Server.Stats().FastLaneHits > before)
	}

	// A result larger than the lane's buffer (written as it arrives), on an
	// unsharded database.
	tdb := p.Open(t, p.Test, "interpolateParams=true")
	proxytest.MustExec(t, tdb, "DROP TABLE IF EXISTS lane_big")
	proxytest.MustExec(t, tdb, "CREATE TABLE lane_big (id INT PRIMARY KEY, v VARCHAR(300))")
	proxytest.MustExec(t, tdb, "INSERT INTO lane_big SELECT seq, REPEAT(CHAR(65 + seq % 26), 250) FROM seq_1_to_3000")
	var first []string
	for round := 0; round < 2; round++ {
		before := p.Server.Stats().FastLaneHits
		got := queryAll(t, tdb, "SELECT * FROM lane_big WHERE id > 0")
		if round == 0 {
			first = got
			continue
		}
		if p.Server.Stats().FastLaneHits == before {
			t.Error("large result: not in the fast lane")
		}
		if len(got) != 3002 || !reflect.DeepEqual(got, first) {
			t.Errorf("large result: %d lines, equal %v", len(got), reflect.DeepEqual(got, first))
		}
	}
}

// TestLaneBoundTypes: a client that sends its parameter types only on the
// first execute of a statement (libmariadb does) gets the same answer from
// the fast lane on the next ones, whose types the lane supplies to the
// shard.
func TestLaneBoundTypes(t *testing.T) {
	p := proxytest.Start(t, proxytest.SharedTopology(t), nil)
	laneTable(t, p)
	c, err := net.DialTimeout("tcp", p.Server.Addr(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	rc := &rawClient{t: t, c: c}
	rc.login(p.Demo)
	rc.Send(append([]byte{0x16}, "SELECT s, n FROM t3 WHERE id = ?"...))
	prep := rc.response()
	id := binary.LittleEndian.Uint32(prep[0][1:])
	exec := func(bound bool, v int64) [][]byte {
		b := []byte{0x17}
		b = binary.LittleEndian.AppendUint32(b, id)
		b = append(b, 0, 1, 0, 0, 0, 0) // no cursor, 1 iteration, NULL bitmap
		if bound {
			b = append(b, 1, 8, 0) // BIGINT
		} else {
			b = append(b, 0)
		}
		b = binary.LittleEndian.AppendUint64(b, uint64(v))
		rc.Send(b)
		return rc.response()
	}
	before := p.Server.Stats().FastLaneHits
	withTypes := exec(true, 5)
	for i := 0; i < 3; i++ {
		if got := exec(false, 5); !reflect.DeepEqual(got, withTypes) {
			t.Fatalf("execute without types:\n%q\nwant\n%q", got, withTypes)
		}
	}
	if other := exec(false, 6); reflect.DeepEqual(other, withTypes) || !bytes.Contains(bytes.Join(other, nil), []byte("row 'ü' 6")) {
		t.Errorf("id 6: %q", other)
	}
	if n := p.Server.Stats().FastLaneHits - before; n != 5 {
		t.Errorf("%d of 5 executes took the fast lane", n)
	}
}

// rawClient speaks the protocol by hand, for what drivers do not let a test
// choose.
type rawClient struct {
	t *testing.T
	c net.Conn
}

func (rc *rawClient) packet() (seq byte, payload []byte) {
	hdr := make([]byte, 4)
	if _, err := io.ReadFull(rc.c, hdr); err != nil {
		rc.t.Fatal(err)
	}
	n := int(hdr[0]) | int(hdr[1])<<8 | int(hdr[2])<<16
	payload = make([]byte, n)
	if _, err := io.ReadFull(rc.c, payload); err != nil {
		rc.t.Fatal(err)
	}
	return hdr[3], payload
}

func (rc *rawClient) Send(payload []byte) {
	if _, err := rc.c.Write(proxytest.Packet(0, payload)); err != nil {
		rc.t.Fatal(err)
	}
}

// login logs in as root to db (without CLIENT_DEPRECATE_EOF).
func (rc *rawClient) login(db string) {
	rc.packet() // greeting
	if _, err := rc.c.Write(proxytest.Packet(1, proxytest.LoginPacket("root", db, proxytest.CapProtocol41|proxytest.CapSecureConnection|proxytest.CapPluginAuth|proxytest.CapConnectWithDB|proxytest.CapMultiStatements))); err != nil {
		rc.t.Fatal(err)
	}
	for {
		seq, p := rc.packet()
		switch p[0] {
		case 0xfe: // auth switch: empty password
			if _, err := rc.c.Write(proxytest.Packet(seq+1, nil)); err != nil {
				rc.t.Fatal(err)
			}
		case 0x00:
			return
		default:
			rc.t.Fatalf("login: %q", p)
		}
	}
}

// response reads one response: up to the EOF after the rows (or the OK or
// ERR that ends it), checking sequence numbers.
func (rc *rawClient) response() [][]byte {
	var out [][]byte
	eofs := 0
	for want := byte(1); ; want++ {
		seq, p := rc.packet()
		if seq != want {
			rc.t.Fatalf("packet %d has sequence %d", want, seq)
		}
		out = append(out, p)
		switch {
		case p[0] == 0xff:
			return out
		case len(out) == 1 && p[0] == 0x00 && len(p) == 12: // prepare OK
			cols, params := binary.LittleEndian.Uint16(p[5:]), binary.LittleEndian.Uint16(p[7:])
			for _, k := range []uint16{params, cols} {
				if k > 0 {
					for i := uint16(0); i <= k; i++ {
						_, q := rc.packet()
						out = append(out, q)
						want++
					}
				}
			}
			return out
		case len(out) == 1 && p[0] == 0x00:
			return out
		case p[0] == 0xfe && len(p) < 9:
			if eofs++; eofs == 2 {
				return out
			}
		}
	}
}

// TestLaneQuestions: COM_STATISTICS counts a statement the fast lane
// answered once, as any other (it was counted twice).
func TestLaneQuestions(t *testing.T) {
	p := proxytest.Start(t, proxytest.SharedTopology(t), nil)
	laneTable(t, p)
	ctx := context.Background()
	db := p.Open(t, p.Demo, "interpolateParams=true")
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	raw := proxytest.Login(t, p.Server.Addr(), "root", p.Demo)
	questions := func() int {
		raw.Send(0, []byte{0x09}) // COM_STATISTICS
		_, after, _ := strings.Cut(string(raw.Recv()), "Questions: ")
		n, err := strconv.Atoi(strings.Fields(after)[0])
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	var v int
	for i := 0; i < 2; i++ { // learned, then the lane
		if err := conn.QueryRowContext(ctx, "SELECT id FROM t3 WHERE id = 4").Scan(&v); err != nil {
			t.Fatal(err)
		}
	}
	before, lane := questions(), p.Server.Stats().FastLaneHits
	for i := 0; i < 10; i++ {
		if err := conn.QueryRowContext(ctx, "SELECT id FROM t3 WHERE id = 4").Scan(&v); err != nil {
			t.Fatal(err)
		}
	}
	if n := p.Server.Stats().FastLaneHits - lane; n != 10 {
		t.Fatalf("%d of 10 statements in the fast lane", n)
	}
	if n := questions() - before; n != 10 {
		t.Errorf("Questions grew by %d for 10 statements, want 10", n)
	}
}
