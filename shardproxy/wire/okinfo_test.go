package wire

import (
	"bytes"
	"testing"

	"vitess.io/vitess/go/mysql"
)

// okSession is a Session whose listener connection has the given
// capabilities (fixOK reads CLIENT_SESSION_TRACK there).
type okSession struct {
	Session
	c *mysql.Conn
}

func (s okSession) MySQL() *mysql.Conn { return s.c }

func TestFixOK(t *testing.T) {
	info := "Records: 3  Duplicates: 0  Warnings: 0"
	lenenc := append([]byte{byte(len(info))}, info...)
	// OK: affected 3, insert id 0, status 0x0002, warnings 0.
	ok := []byte{0x00, 3, 0, 0x02, 0x00, 0, 0}
	eof := []byte{0xfe, 0, 0, 0x0a, 0x00}
	pkt := func(seq byte, payload ...[]byte) []byte {
		p := bytes.Join(payload, nil)
		return append([]byte{byte(len(p)), 0, 0, seq}, p...)
	}
	for _, tc := range []struct {
		name  string
		caps  uint32
		in    []byte
		x     okExtras
		want  []byte
		wantN bool // nil: not an OK fixOK takes
	}{
		{name: "info", in: pkt(1, ok), x: okExtras{info: info}, want: pkt(1, ok, lenenc)},
		{name: "index flag, no info", in: pkt(1, ok), x: okExtras{status: 0x20}, want: pkt(1, []byte{0x00, 3, 0, 0x22, 0x00, 0, 0})},
		{name: "after the previous result's EOF", in: append(pkt(5, eof), pkt(6, ok)...), x: okExtras{info: info}, want: append(pkt(5, eof), pkt(6, ok, lenenc)...)},
		{name: "session tracking", caps: mysql.CapabilityClientSessionTrack, in: pkt(1, ok, []byte{0}), x: okExtras{info: info}, want: pkt(1, ok, lenenc)},
		{name: "a row, not an OK", in: pkt(3, []byte{0x00, 1, 'a'}), x: okExtras{info: info}, wantN: true},
		{name: "an OK and more", in: append(pkt(1, ok), pkt(2, ok)...), x: okExtras{info: info}, wantN: true},
		{name: "an error", in: pkt(1, []byte{0xff, 0x15, 0x04, '#', 'H', 'Y', '0', '0', '0', 'x'}), x: okExtras{info: info}, wantN: true},
	} {
		f := &Conn{sess: okSession{c: &mysql.Conn{Capabilities: tc.caps}}}
		got := f.fixOK(tc.in, tc.x)
		if tc.wantN {
			if got != nil {
				t.Errorf("%s: %q, want nil", tc.name, got)
			}
			continue
		}
		if !bytes.Equal(got, tc.want) {
			t.Errorf("%s:\n got  %q\n want %q", tc.name, got, tc.want)
		}
	}
}
