// Package byteio stands in for vimagination.zapto.org/byteio, which
// seata-go v1.2.0 requires but which the Go module proxy available to this
// project does not serve (its vanity host is unreachable from here). go.mod
// replaces the module with this directory.
//
// It implements only what seata-go calls: BigEndianReader.ReadInt16, used by
// pkg/protocol/codec to read a message's type code. Do not grow it; if
// seata-go ever needs more, prefer the real module.
package byteio

import "io"

// BigEndianReader reads big-endian integers from Reader.
type BigEndianReader struct {
	io.Reader
}

// ReadInt16 reads two bytes as a big-endian int16 and returns it with the
// number of bytes read.
func (r BigEndianReader) ReadInt16() (int16, int, error) {
	var b [2]byte
	n, err := io.ReadFull(r.Reader, b[:])
	if err != nil {
		return 0, n, err
	}
	return int16(uint16(b[0])<<8 | uint16(b[1])), n, nil
}
