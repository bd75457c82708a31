package rowcache

import (
	"bytes"
	"testing"

	"vitess.io/vitess/go/sqltypes"
	querypb "vitess.io/vitess/go/vt/proto/query"
)

// An entry's values are slices of its text packets and equal the loaded
// ones; AppendPackets numbers the packets from the given sequence id.
// (TestLaneHitBytes in e2e compares whole answers with the listener's.)
func TestEntryEncoding(t *testing.T) {
	fields := []*querypb.Field{{Name: "id", Type: sqltypes.Int64}, {Name: "c", Type: sqltypes.VarChar}, {Name: "n", Type: sqltypes.Int32}}
	long := string(bytes.Repeat([]byte("x"), 300)) // a 3-byte length prefix
	r := &sqltypes.Result{Fields: fields, Rows: [][]sqltypes.Value{{sqltypes.NewInt64(-7), sqltypes.NewVarChar(long), sqltypes.NULL}}}
	e := newEntry(r, newColumns(fields))
	if e.rows == nil || e.cols == nil {
		t.Fatal("not encoded")
	}
	for i, v := range e.res.Rows[0] {
		if w := r.Rows[0][i]; v.Type() != w.Type() || v.ToString() != w.ToString() || v.IsNull() != w.IsNull() {
			t.Errorf("value %d = %v, want %v", i, v, w)
		}
	}
	want := []byte{2, '-', '7', 0xfc, 44, 1}
	want = append(want, long...)
	want = append(want, 0xfb)
	if got := e.rows[4:]; !bytes.Equal(got, want) {
		t.Errorf("row payload %q, want %q", got, want)
	}
	out, seq := AppendPackets([]byte("x"), e.cols.pkts, 5)
	if seq != 9 { // the count and three definitions
		t.Errorf("next sequence id %d, want 9", seq)
	}
	for i, at, s := 0, 1, byte(5); at < len(out); i++ {
		n := int(out[at]) | int(out[at+1])<<8 | int(out[at+2])<<16
		if out[at+3] != s {
			t.Errorf("packet %d: sequence id %d, want %d", i, out[at+3], s)
		}
		at, s = at+4+n, s+1
	}
	bin, next, ok := AppendBinaryRows(nil, e.res, 1)
	if !ok || next != 2 || bin[4] != 0 || bin[5]&(1<<4) == 0 {
		t.Errorf("binary row %q (next %d, ok %v): want header 0 and the third column's NULL bit", bin, next, ok)
	}
	dt := &sqltypes.Result{Fields: []*querypb.Field{{Name: "d", Type: sqltypes.Datetime}}, Rows: [][]sqltypes.Value{{sqltypes.MakeTrusted(sqltypes.Datetime, []byte("2024-01-01 00:00:00"))}}}
	if _, _, ok := AppendBinaryRows(nil, dt, 1); ok || newColumns(dt.Fields).binary {
		t.Error("a DATETIME's binary form is the listener's")
	}
}
