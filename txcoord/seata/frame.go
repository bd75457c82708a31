package seata

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/seata/seata-go/pkg/protocol/codec"
	"github.com/seata/seata-go/pkg/protocol/message"
)

// The Seata v1 frame, as seata-go's getty RpcPackageHandler writes it:
//
//	magic 0xdada | version 1 | total length u32 | head length u16 |
//	message type u8 | codec u8 | compressor u8 | request id u32 |
//	head map (u16 key length, key, u16 value length, value)... | body
//
// The body is a 2-byte type code and the message, in seata-go's own codec.
// seata-go's reader trusts every length it reads; this one checks them, so
// a bad frame closes the connection instead of crashing the TC.

const headLen = 16

var errBadFrame = errors.New("seata: bad frame")

var initCodecs sync.Once

// Frame is one decoded Seata RPC message.
type Frame struct {
	Type    message.GettyRequestType
	ID      int32
	HeadMap map[string]string
	Body    any // a message.* struct; nil for heartbeats
}

// readFrame reads one frame. A body whose type has no codec, or that the
// codec cannot decode, is returned with Body nil and no error: the
// connection stays usable.
func readFrame(r *bufio.Reader) (Frame, error) {
	var h [headLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return Frame{}, err
	}
	if h[0] != message.MagicCodeBytes[0] || h[1] != message.MagicCodeBytes[1] {
		return Frame{}, fmt.Errorf("%w: magic %#x%02x", errBadFrame, h[0], h[1])
	}
	total := binary.BigEndian.Uint32(h[3:7])
	hl := uint32(binary.BigEndian.Uint16(h[7:9]))
	if hl < headLen || total < hl || total > message.MaxFrameLength {
		return Frame{}, fmt.Errorf("%w: lengths total %d head %d", errBadFrame, total, hl)
	}
	f := Frame{Type: message.GettyRequestType(h[9]), ID: int32(binary.BigEndian.Uint32(h[12:16]))}
	rest, err := readN(r, int(total-headLen))
	if err != nil {
		return Frame{}, err
	}
	hm, body := rest[:hl-headLen], rest[hl-headLen:]
	for len(hm) > 0 {
		k, n, ok := cut16(hm)
		if !ok {
			return Frame{}, fmt.Errorf("%w: head map", errBadFrame)
		}
		v, n2, ok := cut16(hm[n:])
		if !ok {
			return Frame{}, fmt.Errorf("%w: head map", errBadFrame)
		}
		if f.HeadMap == nil {
			f.HeadMap = map[string]string{}
		}
		f.HeadMap[k] = v
		hm = hm[n+n2:]
	}
	switch f.Type {
	case message.GettyRequestTypeHeartbeatRequest, message.GettyRequestTypeHeartbeatResponse:
		return f, nil
	}
	if h[10] != byte(codec.CodecTypeSeata) || h[11] != 0 || len(body) < 2 {
		return f, nil // other codecs and compression are not served
	}
	f.Body = decodeBody(body)
	return f, nil
}

// eagerFrame is the largest rest of a frame allocated before it arrives.
const eagerFrame = 64 << 10

// readN reads n bytes. A large n is not allocated up front: a header that
// claims 8 MiB and never sends it would make every such connection hold
// 8 MiB; the buffer grows only as the bytes come.
func readN(r io.Reader, n int) ([]byte, error) {
	if n <= eagerFrame {
		b := make([]byte, n)
		_, err := io.ReadFull(r, b)
		return b, err
	}
	var buf bytes.Buffer
	buf.Grow(eagerFrame)
	m, err := io.CopyN(&buf, r, int64(n))
	if m < int64(n) {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf.Bytes(), nil
}

func cut16(b []byte) (string, int, bool) {
	if len(b) < 2 {
		return "", 0, false
	}
	n := int(binary.BigEndian.Uint16(b))
	if len(b) < 2+n {
		return "", 0, false
	}
	return string(b[2 : 2+n]), 2 + n, true
}

// Field kinds of the messages whose seata-go decoders read a 32-bit
// length: a string with a 16- or 32-bit length, or a fixed-size integer.
const (
	fS16 = iota
	fS32
	fU8
	fU64
)

// layouts are those messages' fields in the order their decoders read
// them (seata-go v1.2.0 pkg/protocol/codec).
var layouts = map[message.MessageType][]int{
	message.MessageTypeBranchCommit:       {fS16, fU64, fU8, fS16, fS32},
	message.MessageTypeBranchRollback:     {fS16, fU64, fU8, fS16, fS32},
	message.MessageTypeBranchRegister:     {fS16, fU8, fS16, fS32, fS32},
	message.MessageTypeBranchStatusReport: {fS16, fU64, fU8, fS16, fS32, fU8},
	message.MessageTypeGlobalLockQuery:    {fS16, fU8, fS16, fS32, fS32},
	message.MessageTypeRegRm:              {fS16, fS16, fS16, fS16, fS32},
}

// lengthsFit reports whether every length in a body fits in it. seata-go's
// decoders allocate whatever a length says before reading (up to 4 GiB for
// a 32-bit one), so a frame of a few bytes could make the TC allocate
// gigabytes; such a body is not handed to them.
func lengthsFit(typ message.MessageType, b []byte) bool {
	for _, k := range layouts[typ] {
		var n int
		switch k {
		case fU8:
			n = 1
		case fU64:
			n = 8
		case fS16:
			if len(b) < 2 {
				return false
			}
			n = 2 + int(binary.BigEndian.Uint16(b))
		case fS32:
			if len(b) < 4 {
				return false
			}
			n = 4 + int(binary.BigEndian.Uint32(b))
		}
		if n > len(b) {
			return false
		}
		b = b[n:]
	}
	return true
}

// decodeBody decodes with seata-go's codec, which panics on a short body
// (its byte buffer reads past the end) and on a type it has no codec for
// (it logs through seata-go's logger, nil in the TC); a panic is a body we
// cannot read.
func decodeBody(body []byte) (msg any) {
	initCodecs.Do(codec.Init)
	if !lengthsFit(message.MessageType(binary.BigEndian.Uint16(body)), body[2:]) {
		return nil
	}
	defer func() {
		if recover() != nil {
			msg = nil
		}
	}()
	return codec.GetCodecManager().Decode(codec.CodecTypeSeata, body)
}

// appendFrame encodes one frame.
func appendFrame(dst []byte, f Frame) ([]byte, error) {
	initCodecs.Do(codec.Init)
	var body []byte
	if f.Type != message.GettyRequestTypeHeartbeatRequest && f.Type != message.GettyRequestTypeHeartbeatResponse {
		if _, ok := f.Body.(message.MessageTypeAware); !ok {
			return dst, fmt.Errorf("seata: cannot encode %T", f.Body)
		}
		body = encodeBody(f.Body)
		if body == nil {
			return dst, fmt.Errorf("seata: no codec for %T", f.Body)
		}
	}
	var hm []byte
	for k, v := range f.HeadMap {
		hm = binary.BigEndian.AppendUint16(hm, uint16(len(k)))
		hm = append(hm, k...)
		hm = binary.BigEndian.AppendUint16(hm, uint16(len(v)))
		hm = append(hm, v...)
	}
	hl := headLen + len(hm)
	dst = append(dst, message.MagicCodeBytes[0], message.MagicCodeBytes[1], message.VERSION)
	dst = binary.BigEndian.AppendUint32(dst, uint32(hl+len(body)))
	dst = binary.BigEndian.AppendUint16(dst, uint16(hl))
	dst = append(dst, byte(f.Type), byte(codec.CodecTypeSeata), 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(f.ID))
	dst = append(dst, hm...)
	return append(dst, body...), nil
}

// encodeBody encodes with seata-go's codec, which logs through a logger
// that is nil unless seata-go's client initialised it (it is not, in the
// TC): a message without a codec would panic there instead of returning nil.
func encodeBody(msg any) (b []byte) {
	defer func() {
		if recover() != nil {
			b = nil
		}
	}()
	return codec.GetCodecManager().Encode(codec.CodecTypeSeata, msg)
}
