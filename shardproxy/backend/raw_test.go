package backend

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"vitess.io/vitess/go/mysql/sqlerror"
	"vitess.io/vitess/go/sqltypes"

	"github.com/strata-db/strata/localdb"
)

// collect is a Sink that keeps copies of what it got.
type collect struct {
	kinds   []PacketKind
	rows    [][]byte
	cols    int
	end     Packet
	payload [][]byte
}

func (c *collect) Packet(p *Packet) error {
	c.kinds = append(c.kinds, p.Kind)
	c.payload = append(c.payload, append([]byte(nil), p.Payload...))
	switch p.Kind {
	case PacketColumn:
		c.cols++
	case PacketRow:
		if p.Cont {
			last := len(c.rows) - 1
			c.rows[last] = append(c.rows[last], p.Payload...)
		} else {
			c.rows = append(c.rows, append([]byte(nil), p.Payload...))
		}
	case PacketEnd, PacketOK, PacketErr:
		c.end = *p
		c.end.Payload = append([]byte(nil), p.Payload...)
	}
	return nil
}

// textRow decodes a text-protocol row: NULL is "<NULL>".
func textRow(t *testing.T, b []byte) []string {
	t.Helper()
	var out []string
	for pos := 0; pos < len(b); {
		if b[pos] == 0xfb {
			out = append(out, "<NULL>")
			pos++
			continue
		}
		n, p, ok := readLenEnc(b, pos)
		if !ok || p+int(n) > len(b) {
			t.Fatalf("malformed row %q", b)
		}
		out = append(out, string(b[p:p+int(n)]))
		pos = p + int(n)
	}
	return out
}

func resultRows(res *sqltypes.Result) [][]string {
	var out [][]string
	for _, r := range res.Rows {
		var row []string
		for _, v := range r {
			if v.IsNull() {
				row = append(row, "<NULL>")
			} else {
				row = append(row, v.ToString())
			}
		}
		out = append(out, row)
	}
	return out
}

// TestRaw: QueryRaw and ExecStmtRaw hand on exactly the server's response
// (the rows Exec decodes), with and without CLIENT_DEPRECATE_EOF on the
// connection, take turns with Exec on one connection, apply the session's
// database and variables, and leave the connection usable after statement
// errors.
func TestRaw(t *testing.T) {
	topo := localdb.StartForTest(t, localdb.TestConfig(1, 0))
	if err := topo.Shards()[0].Primary().Exec(context.Background(),
		"CREATE DATABASE app",
		"CREATE TABLE app.t (id INT PRIMARY KEY, s VARCHAR(300), d DECIMAL(10,3), f DOUBLE, n INT NULL)",
		"INSERT INTO app.t SELECT seq, REPEAT(CHAR(65 + seq % 26), 200 + seq % 100), seq / 7, seq * 1.5, IF(seq % 3 = 0, NULL, seq) FROM app.seq_1_to_3000",
		"CREATE PROCEDURE app.two() BEGIN SELECT 1; SELECT 2; END",
	); err != nil {
		t.Fatal(err)
	}
	for _, deprecate := range []bool{true, false} {
		t.Run(fmt.Sprintf("deprecateEOF=%v", deprecate), func(t *testing.T) {
			c := testCluster(t, topo, func(o *Options) { o.MaxOpen = 1; o.noDeprecateEOF = !deprecate })
			p := c.Shard("s0").Primary
			conn, err := p.Get(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Put(conn)
			if conn.deprecateEOF() != deprecate {
				t.Fatalf("connection deprecateEOF %v", conn.deprecateEOF())
			}
			st := c.States.With(nil, "sql_mode", "@@session.sql_mode = 'ANSI_QUOTES'")
			for _, q := range []string{
				"SELECT * FROM t WHERE id = 7",
				"SELECT * FROM t WHERE id < 0",
				"SELECT id, n, NULL, '' FROM t WHERE id BETWEEN 1 AND 6",
				"SELECT * FROM t",                       // 700 KB: many reads
				"SELECT REPEAT('x', 100000), 1",         // a row larger than the buffer
				"SELECT DATABASE(), @@session.sql_mode", // state applied
			} {
				var got collect
				if _, err := conn.QueryRaw(q, "app", st, 0, &got); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
				want, _, err := conn.Exec(context.Background(), q, ExecOptions{DB: "app", State: st})
				if err != nil {
					t.Fatalf("%s: Exec: %v", q, err)
				}
				if got.cols != len(want.Fields) || len(got.rows) != len(want.Rows) {
					t.Fatalf("%s: %d columns %d rows, want %d and %d", q, got.cols, len(got.rows), len(want.Fields), len(want.Rows))
				}
				wrows := resultRows(want)
				for i, r := range got.rows {
					if g := textRow(t, r); strings.Join(g, "|") != strings.Join(wrows[i], "|") {
						t.Fatalf("%s: row %d: %q, want %q", q, i, g, wrows[i])
					}
				}
				if got.kinds[0] != PacketColumnCount || got.kinds[len(got.kinds)-1] != PacketEnd {
					t.Errorf("%s: packets %v", q, got.kinds)
				}
				if !conn.rd.idle() || conn.c.Buffered() != 0 {
					t.Fatalf("%s: bytes left over", q)
				}
			}
			var got collect
			if _, err := conn.QueryRaw("SELECT DATABASE(), @@session.sql_mode", "app", st, 0, &got); err != nil || !strings.Contains(string(got.rows[0]), "app") || !strings.Contains(string(got.rows[0]), "ANSI_QUOTES") {
				t.Errorf("state: %q %v", got.rows, err)
			}
			// Statements without rows, and errors.
			got = collect{}
			if _, err := conn.QueryRaw("UPDATE t SET n = n WHERE id = 1", "app", st, 0, &got); err != nil || got.end.Kind != PacketOK {
				t.Errorf("update: %v %v", got.kinds, err)
			}
			got = collect{}
			_, err = conn.QueryRaw("SELECT nosuch FROM t WHERE id = 1", "app", st, 0, &got)
			var se *sqlerror.SQLError
			if !errors.As(err, &se) || se.Number() != sqlerror.ERBadFieldError || got.end.Kind != PacketErr || conn.Broken() {
				t.Errorf("bad column: %v %v broken=%v", got.kinds, err, conn.Broken())
			}
			got = collect{}
			_, err = conn.QueryRaw("CALL two()", "app", st, 0, &got)
			if !errors.As(err, &se) || se.Number() != sqlerror.ERNotSupportedYet || conn.Broken() {
				t.Errorf("two results: %v broken=%v", err, conn.Broken())
			}
			got = collect{}
			if _, err := conn.QueryRaw("SELECT CAST('1x' AS SIGNED)", "app", st, 0, &got); err != nil || got.end.Warnings != 1 {
				t.Errorf("warnings: %+v %v", got.end, err)
			}
			if res, _, err := conn.Exec(context.Background(), "SELECT 41+1", ExecOptions{State: st}); err != nil || res.Rows[0][0].ToString() != "42" {
				t.Errorf("Exec after raw: %v %v", res, err)
			}

			// Prepared statements: binary rows, prepared once per text.
			text := "SELECT id, s, n FROM t WHERE id = ?"
			prepares := func() string { return statusVar(t, conn, "Com_stmt_prepare") }
			before := prepares()
			for _, id := range []int64{3, 4, 3000} {
				got = collect{}
				if err := conn.ExecStmtRaw(text, "app", st, 1, execArgs(id), 0, &got); err != nil {
					t.Fatalf("execute: %v", err)
				}
				if len(got.rows) != 1 || got.rows[0][0] != 0 || int64(binary.LittleEndian.Uint32(got.rows[0][2:])) != id {
					t.Fatalf("execute %d: binary row %x", id, got.rows)
				}
				wantNull := id%3 == 0 // the bitmap's bits start at 2
				if null := got.rows[0][1]&(1<<(2+2)) != 0; null != wantNull {
					t.Errorf("execute %d: NULL bit %v", id, null)
				}
			}
			if after := prepares(); after != fmt.Sprint(atoi(before)+1) {
				t.Errorf("Com_stmt_prepare %s -> %s, want one prepare", before, after)
			}
			err = conn.ExecStmtRaw("SELEC nothing ?", "app", st, 1, execArgs(1), 0, &got)
			if !errors.Is(err, ErrPrepare) || conn.Broken() {
				t.Errorf("bad statement: %v broken=%v", err, conn.Broken())
			}
			// More texts than a connection keeps: the oldest are closed.
			for i := 0; i < maxStmts+8; i++ {
				got = collect{}
				if err := conn.ExecStmtRaw(fmt.Sprintf("SELECT ? + %d", i), "app", st, 1, execArgs(1), 0, &got); err != nil || len(got.rows) != 1 {
					t.Fatalf("statement %d: %v", i, err)
				}
			}
			if n := len(conn.stmts); n > maxStmts {
				t.Errorf("%d statements kept", n)
			}
			if n := atoi(statusVar(t, conn, "Prepared_stmt_count")); n > maxStmts {
				t.Errorf("server holds %d statements", n)
			}
		})
	}
}

// TestRawInterrupt: a statement in QueryRaw is aborted by Interrupt, and
// the connection is not reused.
func TestRawInterrupt(t *testing.T) {
	topo := localdb.StartForTest(t, localdb.TestConfig(1, 0))
	c := testCluster(t, topo, nil)
	p := c.Shard("s0").Primary
	conn, err := p.Get(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(100*time.Millisecond, conn.Interrupt)
	start := time.Now()
	var got collect
	_, err = conn.QueryRaw("SELECT SLEEP(5)", "", nil, 0, &got)
	p.Put(conn)
	if err == nil || !IsConnError(err) || time.Since(start) > 2*time.Second || !conn.Broken() {
		t.Fatalf("interrupt: %v after %v", err, time.Since(start))
	}
	if got := exec(t, p, "SELECT 1", "", nil); got != "1" {
		t.Fatalf("pool after interrupt: %q", got)
	}
}

// execArgs is a COM_STMT_EXECUTE payload after the statement id for one
// BIGINT parameter.
func execArgs(v int64) []byte {
	const typeLongLong = 8 // MYSQL_TYPE_LONGLONG
	b := []byte{0, 1, 0, 0, 0, 0, 1, typeLongLong, 0}
	return binary.LittleEndian.AppendUint64(b, uint64(v))
}

func statusVar(t *testing.T, conn *Conn, name string) string {
	t.Helper()
	res, _, err := conn.Exec(context.Background(), "SHOW SESSION STATUS LIKE '"+name+"'", ExecOptions{State: conn.State()})
	if err != nil || len(res.Rows) != 1 {
		t.Fatalf("%s: %v", name, err)
	}
	return res.Rows[0][1].ToString()
}

func atoi(s string) int {
	var n int
	fmt.Sscan(s, &n)
	return n
}
