package seata

import (
	"bufio"
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
	rest := make([]byte, total-headLen)
	if _, err := io.ReadFull(r, rest); err != nil {
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

// decodeBody decodes with seata-go's codec, which panics on a short body
// (its byte buffer reads past the end); a panic is a body we cannot read.
func decodeBody(body []byte) (msg any) {
	initCodecs.Do(codec.Init)
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
		body = codec.GetCodecManager().Encode(codec.CodecTypeSeata, f.Body)
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
