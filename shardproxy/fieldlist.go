package shardproxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"time"

	"vitess.io/vitess/go/mysql"
	"vitess.io/vitess/go/mysql/sqlerror"
	"vitess.io/vitess/go/sqltypes"
	querypb "vitess.io/vitess/go/vt/proto/query"
	"vitess.io/vitess/go/vt/sqlparser"
)

// fieldListConn wraps a client connection below the vitess listener. It
// reads the client's bytes through a buffer, packet by packet, and
//   - refuses a packet larger than max_allowed_packet with error 1153 and
//     closes the connection, before reading its body (the listener would
//     buffer any size);
//   - answers COM_FIELD_LIST (a command packet, sequence 0, whose first byte
//     is 0x04), which the listener refuses and the mariadb client sends at
//     connect to complete column names;
//
// and hands every other byte to the listener untouched. A connection that
// upgrades to TLS is passed through from then on (its bytes are encrypted
// below this layer): over TLS, COM_FIELD_LIST gets the listener's error and
// packet sizes are not checked here.
type fieldListConn struct {
	net.Conn
	srv *Server
	id  uint32
	r   *bufio.Reader

	remaining   int  // bytes of the current packet still to pass on
	logical     int  // size so far of a packet split into 16 MiB pieces
	lastFull    bool // the previous piece was 16 MiB: this one continues it
	passthrough bool // TLS: stop looking at packets
	seenHello   bool // the handshake response went by
	deprecate   bool // the client set CLIENT_DEPRECATE_EOF
}

const comFieldList = 0x04

func newFieldListConn(c net.Conn, srv *Server, id uint32) *fieldListConn {
	return &fieldListConn{Conn: c, srv: srv, id: id, r: bufio.NewReaderSize(c, 16384)}
}

func (f *fieldListConn) Read(p []byte) (int, error) {
	for f.remaining == 0 && !f.passthrough {
		hdr, err := f.r.Peek(4)
		if err != nil {
			return f.r.Read(p)
		}
		length := int(hdr[0]) | int(hdr[1])<<8 | int(hdr[2])<<16
		seq := hdr[3]
		if !f.seenHello && seq == 1 && length >= 4 {
			// The handshake response: note the client's capabilities.
			if b, err := f.r.Peek(8); err == nil {
				flags := binary.LittleEndian.Uint32(b[4:8])
				f.deprecate = flags&mysql.CapabilityClientDeprecateEOF != 0
				if flags&mysql.CapabilityClientSSL != 0 && length == 32 {
					f.passthrough = true // an SSLRequest: TLS follows
				}
			}
			f.seenHello = true
		}
		if f.lastFull {
			f.logical += length
		} else {
			f.logical = length
		}
		f.lastFull = length == 0xffffff
		if f.logical > f.srv.cfg.MaxAllowedPacket {
			f.tooLarge(seq)
			return 0, errTooLarge
		}
		if seq == 0 && length > 0 && length < 1<<16 {
			b, err := f.r.Peek(5)
			if err == nil && b[4] == comFieldList {
				pkt := make([]byte, 4+length)
				if _, err := readFull(f.r, pkt); err != nil {
					return 0, err
				}
				if err := f.answer(pkt[5:]); err != nil {
					return 0, err
				}
				continue
			}
		}
		f.remaining = 4 + length
	}
	if f.passthrough {
		return f.r.Read(p)
	}
	if len(p) > f.remaining {
		p = p[:f.remaining]
	}
	n, err := f.r.Read(p)
	f.remaining -= n
	return n, err
}

var errTooLarge = errors.New("client packet larger than max_allowed_packet")

// tooLarge tells the client its packet is over the limit, as MySQL does.
func (f *fieldListConn) tooLarge(seq byte) {
	msg := "Got a packet bigger than 'max_allowed_packet' bytes"
	p := []byte{0xff, 0x81, 0x04, '#', '0', '8', 'S', '0', '1'} // 1153, 08S01
	p = append(p, msg...)
	pkt := append([]byte{byte(len(p)), byte(len(p) >> 8), byte(len(p) >> 16), seq + 1}, p...)
	_ = f.Conn.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = f.Conn.Write(pkt)
	f.srv.log.Warn("shardproxy: client packet over max_allowed_packet", "conn", f.id, "limit", f.srv.cfg.MaxAllowedPacket, "remote", f.Conn.RemoteAddr().String())
}

func readFull(r *bufio.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := r.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// answer writes the response to COM_FIELD_LIST (table NUL wildcard): the
// table's column definitions, then EOF, or an error packet.
func (f *fieldListConn) answer(body []byte) error {
	table, wildcard, _ := bytes.Cut(body, []byte{0})
	var out bytes.Buffer
	seq := byte(1)
	write := func(payload []byte) {
		out.Write([]byte{byte(len(payload)), byte(len(payload) >> 8), byte(len(payload) >> 16), seq})
		out.Write(payload)
		seq++
	}
	fields, err := f.fields(string(table), string(wildcard))
	if err != nil {
		se := toSQLError(err)
		p := []byte{0xff, byte(se.Num), byte(se.Num >> 8), '#'}
		p = append(p, se.State...)
		p = append(p, se.Message...)
		write(p)
	} else {
		for _, fl := range fields {
			write(columnDefinition(fl))
		}
		if f.deprecate {
			write([]byte{0xfe, 0, 0, 2, 0, 0, 0})
		} else {
			write([]byte{0xfe, 0, 0, 2, 0})
		}
	}
	_, werr := f.Conn.Write(out.Bytes())
	return werr
}

// fields reads a table's columns through the session (so that routing and
// the current database are the session's) with a query that returns none
// of its rows.
func (f *fieldListConn) fields(table, wildcard string) ([]*querypb.Field, error) {
	ss := f.srv.sessionByID(f.id)
	if ss == nil {
		return nil, sqlerror.NewSQLError(sqlerror.ERUnknownComError, sqlerror.SSNetError, "no session")
	}
	if ss.db == "" {
		return nil, sqlerror.NewSQLError(sqlerror.ERNoDb, sqlerror.SSNoDB, "No database selected")
	}
	sql := "SELECT * FROM " + sqlparser.String(sqlparser.NewIdentifierCS(table)) + " LIMIT 0"
	res, err := ss.execute(context.Background(), sql)
	if err != nil {
		return nil, err
	}
	if wildcard == "" || wildcard == "%" {
		return res.Fields, nil
	}
	re := likeToRegexp(wildcard)
	var out []*querypb.Field
	for _, fl := range res.Fields {
		if re.MatchString(fl.Name) {
			out = append(out, fl)
		}
	}
	return out, nil
}

// columnDefinition encodes Protocol::ColumnDefinition41 with the trailing
// default value that COM_FIELD_LIST adds.
func columnDefinition(fl *querypb.Field) []byte {
	var b []byte
	lenenc := func(s string) {
		b = appendLenEnc(b, uint64(len(s)))
		b = append(b, s...)
	}
	lenenc("def")
	lenenc(fl.Database)
	lenenc(fl.Table)
	lenenc(fl.OrgTable)
	lenenc(fl.Name)
	lenenc(fl.OrgName)
	b = append(b, 0x0c)
	b = binary.LittleEndian.AppendUint16(b, uint16(fl.Charset))
	b = binary.LittleEndian.AppendUint32(b, fl.ColumnLength)
	typ, flags := sqltypes.TypeToMySQL(fl.Type)
	if fl.Flags != 0 {
		flags = int64(fl.Flags)
	}
	b = append(b, typ)
	b = binary.LittleEndian.AppendUint16(b, uint16(flags))
	b = append(b, byte(fl.Decimals), 0, 0)
	b = append(b, 0xfb) // default value: NULL
	return b
}

func appendLenEnc(b []byte, n uint64) []byte {
	switch {
	case n < 251:
		return append(b, byte(n))
	case n < 1<<16:
		return append(b, 0xfc, byte(n), byte(n>>8))
	case n < 1<<24:
		return append(b, 0xfd, byte(n), byte(n>>8), byte(n>>16))
	}
	b = append(b, 0xfe)
	return binary.LittleEndian.AppendUint64(b, n)
}
