package wire

import (
	"encoding/binary"

	"vitess.io/vitess/go/mysql"
)

// Cursors the proxy keeps itself. A COM_STMT_EXECUTE that asks for a cursor
// (CURSOR_TYPE_READ_ONLY) and that the session does not relay to a shard
// (a statement over several shards, whose rows the proxy merges) is answered
// by the listener with the whole result. Conn captures that answer on its
// way to the client and answers as MariaDB answers a cursor: the column
// definitions, then one EOF (or OK, under CLIENT_DEPRECATE_EOF) with
// SERVER_STATUS_CURSOR_EXISTS; it keeps the rows' packets, as the listener
// encoded them, and answers each COM_STMT_FETCH with the next ones, then
// SERVER_STATUS_LAST_ROW_SENT (and the cursor is closed) once a fetch
// found fewer rows than it asked for. COM_STMT_RESET, COM_STMT_CLOSE,
// another execute of the statement, COM_RESET_CONNECTION and
// COM_CHANGE_USER close it. An answer that is not a result set (OK, ERR)
// goes to the client as it is.

// cursorReadOnly is COM_STMT_EXECUTE's CURSOR_TYPE_READ_ONLY flag.
const cursorReadOnly = 0x01

const comResetConnection = 0x1f

// heldCursor is a cursor Conn keeps: the rows' packets (headers included)
// not fetched yet.
type heldCursor struct {
	rows []byte
}

// captureExecute starts capturing the listener's answer to the
// COM_STMT_EXECUTE of statement id at the head of the buffer (length bytes
// after its header) when it asks for a cursor.
func (f *Conn) captureExecute(id uint32, length int) {
	delete(f.proto.cursors, id) // executing a statement closes its cursor
	if length < 4+1+4 {
		return
	}
	b, err := f.r.Peek(10)
	if err != nil || b[9]&cursorReadOnly == 0 {
		return
	}
	f.proto.capturing, f.proto.captureID = true, id
	f.proto.captured = f.proto.captured[:0]
}

// capture takes the listener's bytes while capturing; when the answer is
// whole it goes to the client, as a cursor's answer if it is a result set.
func (f *Conn) capture(p []byte) error {
	f.proto.captured = append(f.proto.captured, p...)
	b := f.proto.captured
	pkt := func(at int) (payload []byte, next int, ok bool) {
		if at+4 > len(b) {
			return nil, at, false
		}
		n := int(b[at]) | int(b[at+1])<<8 | int(b[at+2])<<16
		if at+4+n > len(b) {
			return nil, at, false
		}
		return b[at+4 : at+4+n], at + 4 + n, true
	}
	first, at, ok := pkt(0)
	if !ok {
		return nil
	}
	pass := func() error {
		// Not a result set, or one that ended in an error: as it is.
		f.proto.capturing = false
		out := append([]byte(nil), b...)
		_, err := f.Write(out)
		return err
	}
	if len(first) == 0 || first[0] == mysql.OKPacket || first[0] == mysql.ErrPacket || first[0] == 0xfb {
		return pass()
	}
	ncols, _, ok := ReadLenEncInt(first, 0)
	if !ok {
		return pass()
	}
	seq := b[3] + 1 // of the packet after the last column definition
	for i := uint64(0); i < ncols; i++ {
		seq = b[at+3] + 1
		if _, at, ok = pkt(at); !ok {
			return nil
		}
	}
	colsEnd := at
	if !f.deprecate {
		if _, at, ok = pkt(at); !ok {
			return nil
		}
	}
	rowsStart := at
	var end []byte
	for cont := false; ; {
		start := at
		var payload []byte
		if payload, at, ok = pkt(at); !ok {
			return nil
		}
		if !cont && len(payload) > 0 && payload[0] == mysql.ErrPacket {
			return pass()
		}
		if !cont && len(payload) > 0 && payload[0] == mysql.EOFPacket && len(payload) < 0xffffff && (f.deprecate || len(payload) < 9) {
			end = b[start:at]
			at = start
			break
		}
		cont = len(payload) == 0xffffff
	}
	f.proto.capturing = false
	f.proto.watchExec = false
	status, warnings := endFlags(end[4:], f.deprecate)
	if f.proto.cursors == nil {
		f.proto.cursors = map[uint32]*heldCursor{}
	}
	f.proto.cursors[f.proto.captureID] = &heldCursor{rows: append([]byte(nil), b[rowsStart:at]...)}
	out := append([]byte(nil), b[:colsEnd]...)
	out = f.appendEnd(out, seq, status|mysql.ServerStatusCursorExists, warnings)
	f.proto.captured = f.proto.captured[:0]
	if cap(f.proto.captured) > 1<<20 {
		f.proto.captured = nil
	}
	_, err := f.w.Write(out)
	return err
}

// endFlags reads the status flags and warnings of what ends rows: an EOF,
// or an OK with an EOF header under CLIENT_DEPRECATE_EOF.
func endFlags(p []byte, deprecate bool) (status, warnings uint16) {
	if !deprecate {
		if len(p) < 5 {
			return 0, 0
		}
		return binary.LittleEndian.Uint16(p[3:]), binary.LittleEndian.Uint16(p[1:])
	}
	pos := 1
	for i := 0; i < 2; i++ {
		_, next, ok := ReadLenEncInt(p, pos)
		if !ok {
			return 0, 0
		}
		pos = next
	}
	if len(p) < pos+4 {
		return 0, 0
	}
	return binary.LittleEndian.Uint16(p[pos:]), binary.LittleEndian.Uint16(p[pos+2:])
}

// appendEnd appends what ends rows for this client, with sequence seq.
func (f *Conn) appendEnd(b []byte, seq byte, status, warnings uint16) []byte {
	if !f.deprecate {
		return append(b, 5, 0, 0, seq, mysql.EOFPacket, byte(warnings), byte(warnings>>8), byte(status), byte(status>>8))
	}
	return append(b, 7, 0, 0, seq, mysql.EOFPacket, 0, 0, byte(status), byte(status>>8), byte(warnings), byte(warnings>>8))
}

// fetchHeld answers COM_STMT_FETCH of n rows of cursor c (statement id).
func (f *Conn) fetchHeld(id uint32, c *heldCursor, n uint32) error {
	var out []byte
	seq := byte(1)
	at, rows := 0, uint32(0)
	for rows < n && at < len(c.rows) {
		// One row: a packet, and the pieces that continue one of 16 MiB.
		for {
			l := int(c.rows[at]) | int(c.rows[at+1])<<8 | int(c.rows[at+2])<<16
			out = append(out, c.rows[at:at+4+l]...)
			out[len(out)-l-1] = seq
			seq++
			at += 4 + l
			if l != 0xffffff {
				break
			}
		}
		rows++
	}
	c.rows = c.rows[at:]
	var status uint16
	if s := f.sess; s != nil && s.MySQL() != nil {
		status = s.MySQL().StatusFlags
	}
	if rows < n {
		// MariaDB learns that the rows are over when it reads past them.
		status |= mysql.ServerStatusLastRowSent
		delete(f.proto.cursors, id)
	} else {
		status |= mysql.ServerStatusCursorExists
	}
	out = f.appendEnd(out, seq, status, 0)
	_, err := f.w.Write(out)
	return err
}
