package wire

import (
	"bufio"
	"bytes"
	"slices"
	"testing"

	vtmysql "vitess.io/vitess/go/mysql"
	querypb "vitess.io/vitess/go/vt/proto/query"
)

// TestParamFlagsInPacket: the flag bytes of a COM_STMT_EXECUTE's parameter
// types, and nothing else, reach the listener as column flags (0x80,
// unsigned, becomes UNSIGNED_FLAG), however the listener's reads cut the
// packet; an execute that binds no types and other commands pass
// untouched.
func TestParamFlagsInPacket(t *testing.T) {
	execute := func(bound bool) []byte {
		body := []byte{vtmysql.ComStmtExecute, 7, 0, 0, 0, 0, 1, 0, 0, 0, 0b100} // id 7, 3 params, the third NULL
		if bound {
			// LONGLONG, VAR_STRING and TINY, each with the unsigned flag.
			body = append(body, 1, 8, 0x80, 253, 0x80, 1, 0x81)
		} else {
			body = append(body, 0)
		}
		body = append(body, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 'a', 0x80)
		return append([]byte{byte(len(body)), 0, 0, 0}, body...)
	}
	query := append([]byte{9, 0, 0, 0, vtmysql.ComQuery}, "SELECT ?"...)
	want := execute(true)
	for _, i := range []int{17, 19, 21} { // the flag bytes
		want[i] = byte(querypb.MySqlFlag_UNSIGNED_FLAG)
	}
	srv := fakeServer{maxPacket: 16 << 20}
	sess := &fakeSession{c: &vtmysql.Conn{PrepareData: map[uint32]*vtmysql.PrepareData{7: {StatementID: 7, ParamsCount: 3}}}}
	for _, chunk := range []int{1, 2, 3, 5, 4096} {
		in := slices.Concat(execute(true), query, execute(false))
		f := &Conn{cfg: &Config{}, srv: srv, sess: sess, r: bufio.NewReader(bytes.NewReader(in))}
		var out []byte
		buf := make([]byte, chunk)
		for {
			n, err := f.Read(buf)
			out = append(out, buf[:n]...)
			if err != nil {
				break
			}
		}
		if exp := slices.Concat(want, query, execute(false)); !bytes.Equal(out, exp) {
			t.Errorf("reads of %d bytes:\n got % x\nwant % x", chunk, out, exp)
		}
	}
}

// fakeServer and fakeSession stand in for the executor in unit tests of the
// connection's framing (the proxy's tests run the real ones).
type fakeServer struct{ maxPacket int }

func (s fakeServer) MaxPacket() int                { return s.maxPacket }
func (s fakeServer) CheckPrepareText(string) error { return nil }
func (s fakeServer) Statistics() []byte            { return nil }

type fakeSession struct{ c *vtmysql.Conn }

func (s *fakeSession) MySQL() *vtmysql.Conn                    { return s.c }
func (s *fakeSession) LaneQuery(*Conn, []byte) (bool, error)   { return false, nil }
func (s *fakeSession) LaneExecute(*Conn, []byte) (bool, error) { return false, nil }
func (s *fakeSession) LaneTyped(uint32) bool                   { return false }
func (s *fakeSession) WarningCount() uint16                    { return 0 }
func (s *fakeSession) FieldList(string, string) ([]*querypb.Field, error) {
	return nil, nil
}
func (s *fakeSession) ChangedUser(string) error  { return nil }
func (s *fakeSession) Fetch(*Conn, []byte) error { return nil }
func (s *fakeSession) CloseCursor(uint32)        {}
