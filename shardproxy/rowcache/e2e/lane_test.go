package e2e

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/strata-db/strata/localdb"
	"github.com/strata-db/strata/shardproxy/config"
	"github.com/strata-db/strata/shardproxy/proxytest"
)

const (
	comQuery       = 0x03
	comStmtPrepare = 0x16
	comStmtExecute = 0x17
	typeLongLong   = 0x08
)

// answer reads one response to a command (a result set or an OK/ERR) and
// returns its packets as they came, headers included.
func answer(t *testing.T, c *proxytest.Raw, deprecateEOF bool) []byte {
	t.Helper()
	var out []byte
	read := func() []byte {
		seq, p, err := c.ReadPacket()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		out = append(out, proxytest.Packet(seq, p)...)
		return p
	}
	first := read()
	if first[0] == 0x00 || first[0] == 0xff {
		return out
	}
	n, _ := lenEnc(first)
	for range n {
		read()
	}
	if !deprecateEOF {
		read()
	}
	for {
		p := read()
		if (p[0] == 0xfe && len(p) < 9) || p[0] == 0xff {
			return out
		}
	}
}

func lenEnc(b []byte) (uint64, int) {
	switch b[0] {
	case 0xfc:
		return uint64(binary.LittleEndian.Uint16(b[1:])), 3
	case 0xfd:
		return uint64(b[1]) | uint64(b[2])<<8 | uint64(b[3])<<16, 4
	case 0xfe:
		return binary.LittleEndian.Uint64(b[1:]), 9
	}
	return uint64(b[0]), 1
}

// prepare prepares q (one parameter) and returns its statement id.
func prepare(t *testing.T, c *proxytest.Raw, q string, deprecateEOF bool) uint32 {
	t.Helper()
	c.Send(0, append([]byte{comStmtPrepare}, q...))
	ok := c.Recv()
	if ok[0] != 0 {
		t.Fatalf("prepare %s: %q", q, ok)
	}
	id := binary.LittleEndian.Uint32(ok[1:])
	cols, params := int(binary.LittleEndian.Uint16(ok[5:])), int(binary.LittleEndian.Uint16(ok[7:]))
	for _, n := range []int{params, cols} {
		if n == 0 {
			continue
		}
		for range n {
			c.Recv()
		}
		if !deprecateEOF {
			c.Recv()
		}
	}
	return id
}

func execute(c *proxytest.Raw, id uint32, arg int64) {
	p := []byte{comStmtExecute}
	p = binary.LittleEndian.AppendUint32(p, id)
	p = append(p, 0)                           // no cursor
	p = binary.LittleEndian.AppendUint32(p, 1) // iteration count
	p = append(p, 0, 1, typeLongLong, 0)       // null bitmap, types bound, BIGINT
	p = binary.LittleEndian.AppendUint64(p, uint64(arg))
	c.Send(0, p)
}

// TestLaneHitBytes: a cache hit answered in the fast lane (entry packets
// replayed, binary rows encoded from the entry) is byte for byte what the
// ordinary path (the listener encoding the cached result) sends, for text
// and prepared statements, with and without CLIENT_DEPRECATE_EOF, for a
// found row of many column types, a row with NULLs, a row with a DATETIME
// (whose binary form prepared statements leave to the listener) and a
// missing row; misses too are loaded in the lane.
func TestLaneHitBytes(t *testing.T) {
	topo := localdb.StartForTest(t, localdb.TestConfig(1, 0))
	admin, err := topo.Shards()[0].Primary().OpenAdmin("")
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	mustExec(t, admin, "CREATE DATABASE lanetest")
	mustExec(t, admin, `CREATE TABLE lanetest.t (id BIGINT PRIMARY KEY, i8 TINYINT, u64 BIGINT UNSIGNED, i24 MEDIUMINT, i16 SMALLINT UNSIGNED,
		f FLOAT, d DOUBLE, dec_ DECIMAL(10,3), s VARCHAR(50), ch CHAR(10) CHARACTER SET latin1, b BLOB, y YEAR, e ENUM('a','b'), n INT NULL, dt DATETIME NULL)`)
	mustExec(t, admin, `INSERT INTO lanetest.t VALUES
		(1, -5, 18446744073709551615, -8388608, 65535, 1.5, -2.25e100, -1234567.891, 'héllo', 'x', x'00ff10', 2024, 'b', 7, NULL),
		(2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
		(3, 1, 2, 3, 4, 5, 6, 7, 'a', 'b', '', 1999, 'a', NULL, '2024-02-29 12:34:56')`)
	c := proxyConfig(topo, time.Minute)
	c.Databases = map[string]*config.Database{"lanetest": {Shard: topo.Shards()[0].Name}}
	c.Cache.Tables = map[string]*config.CacheTable{"lanetest.t": {TTL: 5 * time.Minute, Memory: "4MiB"}}
	p := startProxy(t, c)
	addr := p.srv.Addr()
	const q = "SELECT * FROM t WHERE id = %d"
	for _, caps := range []uint32{0, proxytest.CapDeprecateEOF} {
		dep := caps != 0
		base := uint32(proxytest.CapProtocol41 | proxytest.CapSecureConnection | proxytest.CapPluginAuth | proxytest.CapConnectWithDB)
		lane := proxytest.LoginWith(t, addr, "root", "lanetest", base|caps)
		// sql_select_limit keeps every statement of this session off the
		// fast lane: the listener encodes the cached result.
		slow := proxytest.LoginWith(t, addr, "root", "lanetest", base|caps)
		slow.Send(0, []byte("\x03SET sql_select_limit = 1000"))
		if r := slow.Recv(); r[0] != 0 {
			t.Fatalf("SET: %q", r)
		}
		for k, id := range []int64{1, 2, 3, 999} {
			sql := fmt.Sprintf(q, id)
			before := p.srv.Executor().Stats().FastLaneHits
			var got [2][]byte
			for i := range got { // a miss loaded in the lane, then a hit
				lane.Send(0, append([]byte{comQuery}, sql...))
				got[i] = answer(t, lane, dep)
			}
			// A shape's first statement teaches the lane the shape.
			if n := p.srv.Executor().Stats().FastLaneHits - before; n != 2 && (k > 0 || n != 1) {
				t.Errorf("text, deprecateEOF=%v, id %d: %d of 2 answered in the fast lane", dep, id, n)
			}
			slow.Send(0, append([]byte{comQuery}, sql...))
			want := answer(t, slow, dep)
			for i, g := range got {
				if !bytes.Equal(g, want) {
					t.Errorf("text, deprecateEOF=%v, id %d, #%d: lane %q\nordinary %q", dep, id, i, g, want)
				}
			}
		}
		// A load that fails (the shard's 1054) is answered in the lane with
		// the error packet the listener would write.
		bad := "SELECT nosuch FROM t WHERE id = 1"
		var got [2][]byte
		before := p.srv.Executor().Stats().FastLaneHits
		for i := range got {
			lane.Send(0, append([]byte{comQuery}, bad...))
			got[i] = answer(t, lane, dep)
		}
		if p.srv.Executor().Stats().FastLaneHits == before {
			t.Errorf("failed load, deprecateEOF=%v: not answered in the fast lane", dep)
		}
		slow.Send(0, append([]byte{comQuery}, bad...))
		if want := answer(t, slow, dep); !bytes.Equal(got[1], want) || !bytes.Equal(got[0], want) || want[4] != 0xff {
			t.Errorf("failed load, deprecateEOF=%v: lane %q\nordinary %q", dep, got, want)
		}
		// The binary form of a DATETIME is the listener's: a shape with
		// one is not answered in the fast lane.
		for _, pq := range []struct {
			q    string
			lane bool
		}{{"SELECT id, i8, u64, i24, i16, f, d, dec_, s, ch, b, y, e, n FROM t WHERE id = ?", true}, {"SELECT * FROM t WHERE id = ?", false}} {
			ps := prepare(t, slow, pq.q, dep)
			pl := prepare(t, lane, pq.q, dep)
			for k, id := range []int64{1, 2, 3, 999} {
				before := p.srv.Executor().Stats().FastLaneHits
				var got [2][]byte
				for i := range got {
					execute(lane, pl, id)
					got[i] = answer(t, lane, dep)
				}
				// A shape's first execute teaches the lane its columns.
				if n := p.srv.Executor().Stats().FastLaneHits - before; pq.lane && n != 2 && (k > 0 || n != 1) || !pq.lane && n != 0 {
					t.Errorf("prepared %s, deprecateEOF=%v, id %d: %d of 2 answered in the fast lane", pq.q, dep, id, n)
				}
				execute(slow, ps, id)
				want := answer(t, slow, dep)
				for i, g := range got {
					if !bytes.Equal(g, want) {
						t.Errorf("prepared %s, deprecateEOF=%v, id %d, #%d: lane %q\nordinary %q", pq.q, dep, id, i, g, want)
					}
				}
			}
		}
	}
}
