package wire

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"strconv"
	"time"

	"vitess.io/vitess/go/mysql"
	"vitess.io/vitess/go/mysql/sqlerror"
	"vitess.io/vitess/go/sqltypes"
	querypb "vitess.io/vitess/go/vt/proto/query"

	"github.com/strata-db/strata/shardproxy/config"
	"github.com/strata-db/strata/shardproxy/internal/rawio"
	"github.com/strata-db/strata/shardproxy/mysqlerr"
)

// Conn wraps a client connection below the vitess listener: every
// byte between client and listener passes through it. It
//   - terminates TLS itself (the listener is given no TLS config): it adds
//     CLIENT_SSL to the greeting, answers an SSLRequest with the TLS
//     handshake, and renumbers the rest of the login exchange (after an
//     SSLRequest the client's packets run one ahead of what the listener
//     expects); with tls.require, a client that does not upgrade gets 3159;
//   - reads the client's bytes through a buffer, packet by packet, so that it
//     can refuse a packet larger than max_allowed_packet with error 1153,
//     before reading its body (the listener would buffer any size), and
//     answer COM_FIELD_LIST (a command packet, sequence 0, whose first byte
//     is 0x04), which the listener refuses and the mariadb client sends at
//     connect to complete column names;
//
// and hands every other byte on untouched. Doing TLS here rather than in the
// listener keeps both over TLS connections as well.
type Conn struct {
	net.Conn // the raw connection: addresses, deadlines
	cfg      *Config
	srv      Server
	ID       uint32
	r        *reader   // the client's bytes, decrypted once TLS is on
	w        io.Writer // to the client, encrypted once TLS is on
	tlsConf  *tls.Config
	tlsConn  *tls.Conn

	remaining int  // bytes of the current packet still to pass on
	logical   int  // size so far of a packet split into 16 MiB pieces
	lastFull  bool // the previous piece was 16 MiB: this one continues it
	greeted   bool // the server's greeting went out
	seenHello bool // the client's handshake response went by
	login     bool // in the login exchange, until the server's OK or ERR
	shift     byte // 1 after an SSLRequest: the client's sequence numbers run ahead
	deprecate bool // the client set CLIENT_DEPRECATE_EOF
	// localFiles: the client set CLIENT_LOCAL_FILES (localinfile.go).
	localFiles bool
	// renum renumbers the listener's packets after a LOCAL INFILE
	// transfer, until the next command.
	renum renumber

	// The connection's session, set before the handshake; lane once the
	// listener handed the connection to it.
	sess Session
	lane bool
	// Out is the fast lane's response being built (WriteLane sends it).
	Out []byte
	raw *rawio.Conn // the raw connection, nil where there is none

	// A COM_STMT_EXECUTE on its way to the listener: its parameter types
	// lie at packet offsets [typesAt, typesEnd), and pktPos bytes of the
	// packet went by (fixParamFlags).
	typesAt, typesEnd, pktPos int

	proto protoConn // commands answered below the listener (protocol.go)

	// ok is what the OK packet the listener is writing gains (WithOK);
	// okBuf the memory fixOK builds it in, reused.
	ok    okExtras
	okBuf []byte
}

// okExtras are what MariaDB's OK packet has and the listener's lacks.
type okExtras struct {
	pending bool
	info    string // the info text
	status  uint16 // status flags added
	// session: the status flags are the session's (the listener answers
	// COM_RESET_CONNECTION with none, where MariaDB says autocommit).
	session bool
}

const comFieldList = 0x04

// laneMaxPacket: larger statements are not worth the fast lane (and may not
// fit the read buffer whole).
const laneMaxPacket = 8 << 10

// Config is what every client connection of a proxy is given.
type Config struct {
	// TLS is offered to clients when not nil; RequireTLS refuses clients
	// that do not upgrade (3159).
	TLS        *tls.Config
	RequireTLS bool
	// Users and AuthPlugin authenticate COM_CHANGE_USER.
	Users      []config.User
	AuthPlugin string
	Log        *slog.Logger
}

// Server is what a connection asks of the proxy.
type Server interface {
	// MaxPacket is the largest client packet taken (1153 above it).
	MaxPacket() int
	// CheckPrepareText is the error MariaDB gives a COM_STMT_PREPARE of
	// several statements, nil when it takes it.
	CheckPrepareText(query string) error
	// Statistics is the COM_STATISTICS answer.
	Statistics() []byte
}

// Session is what a connection asks of its client's session.
type Session interface {
	// MySQL is the listener's connection, nil before the handshake.
	MySQL() *mysql.Conn
	// LaneQuery and LaneExecute may answer a COM_QUERY (its text) or a
	// COM_STMT_EXECUTE (the payload after the command byte) in the fast
	// lane, below the listener, writing the answer with WriteLane; handled
	// false leaves the command to the listener.
	LaneQuery(c *Conn, body []byte) (handled bool, err error)
	LaneExecute(c *Conn, data []byte) (handled bool, err error)
	// LaneTyped reports whether the fast lane saw statement id's parameter
	// types bound.
	LaneTyped(id uint32) bool
	// WarningCount is the last statement's.
	WarningCount() uint16
	// FieldList is COM_FIELD_LIST's answer: the table's columns whose
	// names match wildcard (a LIKE pattern, "" for all).
	FieldList(table, wildcard string) ([]*querypb.Field, error)
	// ChangedUser starts the session over after COM_CHANGE_USER changed
	// the connection's user (db: the database it names, "" for none).
	ChangedUser(db string) error
	// Fetch answers COM_STMT_FETCH (data: the packet after the command
	// byte), writing the answer with WriteLane; CloseCursor closes
	// statement id's cursor, if open (COM_STMT_RESET, COM_STMT_CLOSE).
	Fetch(c *Conn, data []byte) error
	CloseCursor(id uint32)
}

// NewConn wraps client connection c (connection id id) before the
// listener's handshake.
func NewConn(c net.Conn, id uint32, cfg *Config, srv Server) *Conn {
	f := &Conn{Conn: c, cfg: cfg, srv: srv, ID: id, w: c, tlsConf: cfg.TLS, login: true}
	// Plain connections are read, and the fast lane's answers written, with
	// raw system calls (package rawio says why).
	f.raw = rawio.New(c)
	f.r = newReader(f.raw, c)
	return f
}

// SetSession gives the connection its session (before the handshake).
func (f *Conn) SetSession(s Session) { f.sess = s }

// Session is the connection's session, nil if none was set.
func (f *Conn) Session() Session { return f.sess }

// Ready says the listener has done the handshake: from here on the
// listener reads commands, and the fast lane may take them first.
// deprecateEOF: the client set CLIENT_DEPRECATE_EOF.
func (f *Conn) Ready(deprecateEOF bool) {
	f.deprecate = deprecateEOF
	f.lane = true
}

// DeprecateEOF reports whether the client set CLIENT_DEPRECATE_EOF.
func (f *Conn) DeprecateEOF() bool { return f.deprecate }

// Read gives the listener the client's bytes, a packet at a time.
func (f *Conn) Read(p []byte) (int, error) {
	for f.remaining == 0 {
		if len(f.proto.inject) > 0 {
			return f.injected(p), nil
		}
		hdr, err := f.r.Peek(4)
		if err != nil {
			return f.r.Read(p)
		}
		length := int(hdr[0]) | int(hdr[1])<<8 | int(hdr[2])<<16
		seq := hdr[3]
		if !f.seenHello && f.login && length >= 4 {
			f.seenHello = true
			b, err := f.r.Peek(8)
			if err != nil {
				return f.r.Read(p)
			}
			flags := binary.LittleEndian.Uint32(b[4:8])
			f.deprecate = flags&mysql.CapabilityClientDeprecateEOF != 0
			f.localFiles = flags&clientLocalFiles != 0
			if f.tlsConf != nil && flags&mysql.CapabilityClientSSL != 0 && length == 32 {
				if err := f.startTLS(); err != nil {
					return 0, err
				}
				continue // the real handshake response follows, encrypted
			}
			if f.cfg.RequireTLS {
				f.writeErr(seq+1, mysqlerr.ERSecureTransportRequired, mysqlerr.SSConnectionRejected, "Connections using insecure transport are prohibited while --require_secure_transport=ON.")
				return 0, errInsecure
			}
		}
		if f.login && f.shift != 0 {
			// Renumber in place for the listener (Peek's bytes are the
			// buffer's).
			hdr[3] -= f.shift
		}
		if f.lastFull {
			f.logical += length
		} else {
			f.logical = length
		}
		f.lastFull = length == 0xffffff
		// MariaDB refuses a packet of max_allowed_packet bytes or more
		// (net_realloc): its largest statement is one byte shorter.
		if f.logical >= f.srv.MaxPacket() {
			f.tooLarge(seq)
			return 0, errTooLarge
		}
		f.typesAt, f.typesEnd, f.pktPos = 0, 0, 0
		if seq == 0 && !f.login {
			f.renum = renumber{} // a new command
		}
		if seq == 0 && !f.login && length > 0 {
			if handled, err := f.command(length); err != nil {
				return 0, err
			} else if handled {
				continue
			}
		}
		f.remaining = 4 + length
	}
	if len(p) > f.remaining {
		p = p[:f.remaining]
	}
	n, err := f.r.Read(p)
	if f.typesEnd > f.pktPos {
		f.fixParamFlags(p[:n])
	}
	f.pktPos += n
	f.remaining -= n
	return n, err
}

// command looks at a command packet (length bytes after its header) at the
// head of the buffer before the listener reads it: it answers those the
// proxy answers itself (COM_FIELD_LIST, protocol.go), runs the fast lane's,
// and notes a COM_STMT_EXECUTE's parameter types for Read to fix. handled
// says the packet was consumed.
func (f *Conn) command(length int) (handled bool, err error) {
	b, err := f.r.Peek(5)
	if err != nil {
		return false, nil // Read passes on what there is, and the error
	}
	cmd := b[4]
	if f.proto.capturing {
		// An answer capture did not understand: as it came.
		f.proto.capturing = false
		if _, err := f.w.Write(f.proto.captured); err != nil {
			return false, err
		}
	}
	if cmd == comFieldList && length < 1<<16 {
		pkt, err := f.readPacket(length)
		if err != nil {
			return true, err
		}
		return true, f.answer(pkt[1:])
	}
	if handled, err := f.intercept(cmd, length); err != nil || handled {
		return handled, err
	}
	if cmd == mysql.ComStmtExecute && len(f.proto.cursors) > 0 && length >= 5 {
		if h, err := f.r.Peek(9); err == nil {
			delete(f.proto.cursors, binary.LittleEndian.Uint32(h[5:])) // executing a statement closes its cursor
		}
	}
	if f.lane && length <= laneMaxPacket && (cmd == mysql.ComQuery || cmd == mysql.ComStmtExecute) {
		b, err := f.r.Peek(4 + length)
		if err != nil {
			return false, nil
		}
		if cmd == mysql.ComQuery {
			handled, err = f.sess.LaneQuery(f, b[5:])
		} else {
			handled, err = f.sess.LaneExecute(f, b[5:])
		}
		if err != nil || handled {
			if handled {
				_, _ = f.r.Discard(4 + length)
			}
			return handled, err
		}
	}
	f.proto.watchExec = false // a new command: what the listener writes now answers it
	f.proto.watchPrepare = cmd == mysql.ComPrepare
	if cmd != mysql.ComStmtExecute || f.sess == nil || f.sess.MySQL() == nil || length < 5 {
		return false, nil // (shorter: the listener says the packet is malformed)
	}
	h, err := f.r.Peek(9)
	if err != nil {
		return false, nil
	}
	id := binary.LittleEndian.Uint32(h[5:])
	prep := f.sess.MySQL().PrepareData[id]
	if length != 0xffffff {
		if handled, err := f.checkExecute(length, id, prep); err != nil || handled {
			return handled, err
		}
	}
	f.captureExecute(id, length)
	f.findParamTypes(length, prep)
	return false, nil
}

// findParamTypes notes where the parameter types of a COM_STMT_EXECUTE of
// prep (the packet at the head of the buffer, length bytes after its
// header) are when it binds them, so that Read fixes their flags on the way
// to the listener.
func (f *Conn) findParamTypes(length int, prep *mysql.PrepareData) {
	if prep == nil || prep.ParamsCount == 0 {
		return
	}
	// Header, command, statement id, cursor flags, iteration count.
	const head = 4 + 1 + 4 + 1 + 4
	n := int(prep.ParamsCount)
	bound := head + (n+7)/8 // after the NULL bitmap: new-params-bound flag
	if 4+length <= bound {
		return
	}
	// At most 8 KiB of bitmap: within the buffer.
	if b, err := f.r.Peek(bound + 1); err != nil || b[bound] != 1 {
		return
	}
	f.typesAt, f.typesEnd = bound+1, min(bound+1+2*n, 4+length)
}

// fixParamFlags rewrites, in b (the packet's bytes from offset pktPos on,
// for the listener), the flag byte of each parameter type. The protocol
// marks an unsigned parameter with 0x80 there; vitess v0.24.4
// (parseComStmtExecute) hands the byte to sqltypes.MySQLToType, which takes
// column flags and reads 0x80 as BINARY_FLAG, so that a client's
// 18446744073709551615 arrived as -1. The listener gets column flags
// instead (paramFlags).
func (f *Conn) fixParamFlags(b []byte) {
	from, to := max(f.pktPos, f.typesAt), min(f.pktPos+len(b), f.typesEnd)
	for i := from; i < to; i++ {
		if (i-f.typesAt)%2 == 1 {
			b[i-f.pktPos] = byte(paramFlags(b[i-f.pktPos]))
		}
	}
}

// paramFlags are the column flags (as sqltypes.MySQLToType takes them) of a
// COM_STMT_EXECUTE parameter's flag byte, whose only flag is 0x80,
// unsigned.
func paramFlags(flag byte) int64 {
	if flag&0x80 != 0 {
		return int64(querypb.MySqlFlag_UNSIGNED_FLAG)
	}
	return 0
}

// ParamType is the type of a COM_STMT_EXECUTE parameter (type and flag
// bytes), unsigned when the client said so.
func ParamType(typ, flag byte) (querypb.Type, error) {
	return sqltypes.MySQLToType(typ, paramFlags(flag))
}

// Write sends the listener's bytes to the client. Only the login exchange
// is looked at: the greeting gains CLIENT_SSL when TLS is offered, and after
// an SSLRequest every packet's sequence number moves one up; the server's OK
// or ERR ends the exchange. The listener writes each login packet whole, in
// one call.
func (f *Conn) Write(p []byte) (int, error) {
	if f.proto.capturing {
		if err := f.capture(p); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	var q []byte
	if f.proto.watchExec {
		f.proto.watchExec = false
		q = f.fixExecAnswer(p)
	}
	if f.proto.watchPrepare {
		f.proto.watchPrepare = false
		q = fixPrepareAnswer(p)
	}
	if f.ok.pending {
		src := q
		if src == nil {
			src = p
		}
		if r := f.fixOK(src, f.ok); r != nil || f.ok.session {
			q, f.ok = r, okExtras{}
		}
	}
	if q != nil {
		if f.renum.add != 0 {
			q = f.renum.apply(q)
		}
		if _, err := f.w.Write(q); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	if !f.login {
		if f.renum.add != 0 {
			if _, err := f.w.Write(f.renum.apply(p)); err != nil {
				return 0, err
			}
			return len(p), nil
		}
		return f.w.Write(p)
	}
	q = append([]byte(nil), p...)
	if !f.greeted {
		f.greeted = true
		if f.tlsConf != nil {
			addSSLCapability(q)
		}
		addCapability(q, clientLocalFiles)
	} else {
		for i := 0; i+4 < len(q); {
			n := int(q[i]) | int(q[i+1])<<8 | int(q[i+2])<<16
			q[i+3] += f.shift
			if q[i+4] == 0x00 || q[i+4] == 0xff {
				f.login, f.shift = false, 0
			}
			i += 4 + n
		}
	}
	if _, err := f.w.Write(q); err != nil {
		return 0, err
	}
	return len(p), nil
}

// addSSLCapability sets CLIENT_SSL in a HandshakeV10 packet.
func addSSLCapability(pkt []byte) { addCapability(pkt, mysql.CapabilityClientSSL) }

// addCapability sets flag, one of the low 16 capability flags, in a
// HandshakeV10 packet: protocol version, server version (NUL-terminated),
// connection id, 8 bytes of salt, a filler, then the low capability flags.
func addCapability(pkt []byte, flag uint16) {
	if len(pkt) < 5 {
		return
	}
	end := bytes.IndexByte(pkt[5:], 0)
	if end < 0 {
		return
	}
	capAt := 5 + end + 1 + 4 + 8 + 1
	if capAt+2 > len(pkt) {
		return
	}
	flags := binary.LittleEndian.Uint16(pkt[capAt:])
	binary.LittleEndian.PutUint16(pkt[capAt:], flags|flag)
}

// startTLS consumes the SSLRequest and runs the TLS handshake on the raw
// connection (bytes the client already sent, such as its ClientHello, are
// read from the buffer first).
func (f *Conn) startTLS() error {
	if _, err := f.r.Discard(4 + 32); err != nil {
		return err
	}
	tc := tls.Server(&bufferedConn{Conn: f.Conn, r: f.r}, f.tlsConf)
	_ = f.Conn.SetDeadline(time.Now().Add(10 * time.Second))
	err := tc.Handshake()
	_ = f.Conn.SetDeadline(time.Time{})
	if err != nil {
		return err
	}
	f.tlsConn, f.shift = tc, 1
	f.r, f.w = newReader(nil, tc), tc
	return nil
}

// TLS is the connection's TLS state, once the client turned TLS on.
func (f *Conn) TLS() (tls.ConnectionState, bool) {
	if f.tlsConn == nil {
		return tls.ConnectionState{}, false
	}
	return f.tlsConn.ConnectionState(), true
}

// Close closes the connection (with TLS's close_notify when on).
func (f *Conn) Close() error {
	if f.tlsConn != nil {
		_ = f.tlsConn.SetDeadline(time.Now().Add(time.Second))
		return f.tlsConn.Close()
	}
	return f.Conn.Close()
}

// bufferedConn reads through a buffer that may already hold bytes.
type bufferedConn struct {
	net.Conn
	r *reader
}

func (b *bufferedConn) Read(p []byte) (int, error) { return b.r.Read(p) }

var errInsecure = errors.New("client did not upgrade to TLS and tls.require is set")

func (f *Conn) writeErr(seq byte, code sqlerror.ErrorCode, state, msg string) {
	pkt := AppendErr(nil, seq, code, state, msg)
	_ = f.Conn.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = f.w.Write(pkt)
}

var errTooLarge = errors.New("client packet larger than max_allowed_packet")

// tooLarge tells the client its packet is over the limit, as MySQL does.
func (f *Conn) tooLarge(seq byte) {
	f.writeErr(seq+1, sqlerror.ERNetPacketTooLarge, sqlerror.SSNetError, "Got a packet bigger than 'max_allowed_packet' bytes")
	f.cfg.Log.Warn("shardproxy: client packet over max_allowed_packet", "conn", f.ID, "limit", f.srv.MaxPacket(), "remote", f.Conn.RemoteAddr().String())
}

func readFull(r *reader, b []byte) (int, error) {
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
func (f *Conn) answer(body []byte) error {
	table, wildcard, _ := bytes.Cut(body, []byte{0})
	var out []byte
	seq := byte(1)
	write := func(payload []byte) {
		out = appendPacket(out, seq, payload)
		seq++
	}
	fields, err := f.sess.FieldList(string(table), string(wildcard))
	if err != nil {
		se := mysqlerr.From(err)
		write(errPayload(se.Num, se.State, se.Message))
	} else {
		for _, fl := range fields {
			write(columnDefinition(fl))
		}
		write(f.eofPayload())
	}
	_, werr := f.w.Write(out)
	return werr
}

// eofPayload ends an answer the proxy writes itself (after COM_FIELD_LIST's
// columns, or alone for COM_DEBUG): an OK with an EOF header under
// CLIENT_DEPRECATE_EOF, an EOF otherwise.
func (f *Conn) eofPayload() []byte {
	if f.deprecate {
		return []byte{mysql.EOFPacket, 0, 0, 2, 0, 0, 0}
	}
	return []byte{mysql.EOFPacket, 0, 0, 2, 0}
}

// columnDefinition encodes Protocol::ColumnDefinition41 with the trailing
// default value that COM_FIELD_LIST adds.
func columnDefinition(fl *querypb.Field) []byte {
	var b []byte
	lenenc := func(s string) {
		b = AppendLenEnc(b, uint64(len(s)))
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

// AppendLenEnc appends n as a length-encoded integer.
func AppendLenEnc(b []byte, n uint64) []byte {
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

// paramNames are the listener's names for a prepared statement's
// parameters.
var paramNames = func() []string {
	n := make([]string, 64)
	for i := range n {
		n[i] = "v" + strconv.Itoa(i+1)
	}
	return n
}()

// ParamName is the listener's name of a prepared statement's parameter i
// (0-based): v1, v2, ...
func ParamName(i int) string {
	if i < len(paramNames) {
		return paramNames[i]
	}
	return "v" + strconv.Itoa(i+1)
}

// WriteLane writes the fast lane's bytes to the client: with a raw system
// call on a plain connection, through TLS otherwise.
func (f *Conn) WriteLane(b []byte) error {
	var err error
	if f.raw != nil && f.tlsConn == nil {
		_, err = f.raw.Write(b)
	} else {
		_, err = f.w.Write(b)
	}
	return err
}

// WithOK runs write, in which the listener writes the OK packet that
// answers a statement, and sends that OK with info as its info text
// ("Records: 3  Duplicates: 0  Warnings: 0"), which vitess's listener
// leaves empty, and status added to its status flags (the shard's
// SERVER_QUERY_NO_INDEX_USED). The listener buffers what it writes: what
// is buffered goes out first, so that the OK reaches Write alone and is
// rewritten there. Only an OK with something to add pays for the flush.
func (f *Conn) WithOK(info string, status uint16, write func() error) error {
	var c *mysql.Conn
	if f.sess != nil {
		c = f.sess.MySQL()
	}
	if info == "" && status == 0 || c == nil {
		return write()
	}
	if err := c.FlushWriteBuffer(); err != nil {
		return err
	}
	f.ok = okExtras{pending: true, info: info, status: status}
	err := write()
	if ferr := c.FlushWriteBuffer(); err == nil {
		err = ferr
	}
	f.ok = okExtras{}
	return err
}

// fixOK is p, the listener's OK packet (no info text) after, maybe, the
// EOF that ends the previous result's rows (the listener writes it when
// the next result comes), with x added to the OK; nil when p is not that.
func (f *Conn) fixOK(p []byte, x okExtras) []byte {
	at := 0
	for {
		if at+4 > len(p) {
			return nil
		}
		n := int(p[at]) | int(p[at+1])<<8 | int(p[at+2])<<16
		if at+4+n == len(p) {
			break
		}
		if n == 0 || p[at+4] != mysql.EOFPacket {
			return nil
		}
		at += 4 + n
	}
	head, p := p[:at], p[at:]
	if len(p) < 4+7 || p[4] != mysql.OKPacket {
		return nil
	}
	pos := 5
	for i := 0; i < 2; i++ { // affected rows, insert id
		_, next, ok := ReadLenEncInt(p, pos)
		if !ok {
			return nil
		}
		pos = next
	}
	statusAt := pos
	pos += 4 // status flags, warnings
	if pos > len(p) {
		return nil
	}
	// MariaDB writes the info as a length-encoded string, with or without
	// CLIENT_SESSION_TRACK (where the session state follows it), and
	// clients read it so; none at all when it is empty. The listener
	// writes an empty one under CLIENT_SESSION_TRACK, nothing otherwise.
	rest := p[pos:]
	track := f.sess.MySQL().Capabilities&mysql.CapabilityClientSessionTrack != 0
	if track {
		if len(rest) == 0 || rest[0] != 0 {
			return nil
		}
		rest = rest[1:]
	} else if len(rest) != 0 {
		return nil
	}
	q := append(f.okBuf[:0], head...)
	ok := len(q)
	q = append(q, p[:pos]...)
	status := binary.LittleEndian.Uint16(q[ok+statusAt:]) | x.status
	if x.session {
		status = f.sess.MySQL().StatusFlags
	}
	binary.LittleEndian.PutUint16(q[ok+statusAt:], status)
	if x.info != "" || track {
		q = AppendLenEnc(q, uint64(len(x.info)))
		q = append(q, x.info...)
	}
	q = append(q, rest...)
	m := len(q) - ok - 4
	q[ok], q[ok+1], q[ok+2] = byte(m), byte(m>>8), byte(m>>16)
	if cap(q) <= 1<<10 {
		f.okBuf = q // written before the next OK is built
	}
	return q
}
