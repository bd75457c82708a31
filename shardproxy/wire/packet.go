package wire

import (
	"encoding/binary"
	"net"
	"time"

	"vitess.io/vitess/go/mysql/sqlerror"
)

// ReadLenEncInt reads a length-encoded integer at pos.
func ReadLenEncInt(data []byte, pos int) (uint64, int, bool) {
	if pos >= len(data) {
		return 0, pos, false
	}
	switch b := data[pos]; {
	case b < 0xfb:
		return uint64(b), pos + 1, true
	case b == 0xfc && pos+3 <= len(data):
		return uint64(binary.LittleEndian.Uint16(data[pos+1:])), pos + 3, true
	case b == 0xfd && pos+4 <= len(data):
		return uint64(data[pos+1]) | uint64(data[pos+2])<<8 | uint64(data[pos+3])<<16, pos + 4, true
	case b == 0xfe && pos+9 <= len(data):
		return binary.LittleEndian.Uint64(data[pos+1:]), pos + 9, true
	}
	return 0, pos, false
}

// WriteRawError writes an ERR packet with sequence 0 to a connection
// that has not had a handshake.
func WriteRawError(c net.Conn, code sqlerror.ErrorCode, state, msg string) {
	payload := []byte{0xff, byte(code), byte(code >> 8), '#'}
	payload = append(payload, state...)
	payload = append(payload, msg...)
	pkt := []byte{byte(len(payload)), byte(len(payload) >> 8), byte(len(payload) >> 16), 0}
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = c.Write(append(pkt, payload...))
}
