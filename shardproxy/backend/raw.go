package backend

import (
	"errors"
	"io"
	"time"

	"vitess.io/vitess/go/mysql"
	"vitess.io/vitess/go/mysql/sqlerror"
)

// The raw side of a connection: a statement's response read packet by
// packet and handed on as the server sent it, for a caller that passes it
// to its client without decoding it into a sqltypes.Result and encoding it
// again (the proxy does so for statements that one shard answers whole).
// The connection's vitess side (Exec, Ping) and its raw side take turns:
// each leaves nothing buffered when its exchange is over.

// PacketKind says what a packet of a statement's response is.
type PacketKind uint8

const (
	// PacketOK ends a statement that returns no rows.
	PacketOK PacketKind = iota + 1
	// PacketErr ends a statement that failed, before or among its rows.
	PacketErr
	// PacketColumnCount starts a result set.
	PacketColumnCount
	// PacketColumn is one column definition.
	PacketColumn
	// PacketColumnsDone follows the last column definition. It has no
	// payload: the EOF packet a server sends there to clients without
	// CLIENT_DEPRECATE_EOF is not passed on.
	PacketColumnsDone
	// PacketRow is one row, in the text or binary format the command asked
	// for.
	PacketRow
	// PacketEnd ends the rows (an EOF packet, or an OK packet with an EOF
	// header).
	PacketEnd
)

// Packet is one packet of a response. Payload is the server's bytes, valid
// until the Sink returns.
type Packet struct {
	Kind    PacketKind
	Payload []byte
	// Cont marks the pieces after the first of a payload of 16 MiB or more,
	// which the protocol splits into several packets.
	Cont bool
	// Status, Warnings, Affected and InsertID are read from PacketOK and
	// PacketEnd.
	Status, Warnings   uint16
	Affected, InsertID uint64
}

// Sink receives a response's packets in order.
type Sink interface {
	Packet(p *Packet) error
}

// rawReader reads whole packets from a connection into one buffer.
type rawReader struct {
	src  io.Reader
	buf  []byte
	r, w int
	seq  byte  // the sequence number of the last packet read
	err  error // a read's error that send met, for the next need
}

const rawBufSize = 16 << 10

// packet returns the next packet's payload, valid until the next call.
func (rr *rawReader) packet() ([]byte, error) {
	if err := rr.need(4); err != nil {
		return nil, err
	}
	h := rr.buf[rr.r:]
	n := int(h[0]) | int(h[1])<<8 | int(h[2])<<16
	if err := rr.need(4 + n); err != nil {
		return nil, err
	}
	rr.seq = rr.buf[rr.r+3]
	p := rr.buf[rr.r+4 : rr.r+4+n]
	rr.r += 4 + n
	return p, nil
}

// need reads until n bytes are buffered.
func (rr *rawReader) need(n int) error {
	if rr.r == rr.w {
		rr.r, rr.w = 0, 0
	}
	for rr.w-rr.r < n {
		if rr.err != nil {
			err := rr.err
			rr.err = nil
			return err
		}
		if len(rr.buf)-rr.r < n {
			// Make room: move what is buffered to the front, and grow the
			// buffer for a packet larger than it.
			size := max(len(rr.buf), rawBufSize)
			for size < n {
				size *= 2
			}
			buf := rr.buf
			if size > len(buf) {
				buf = make([]byte, size)
			}
			copy(buf, rr.buf[rr.r:rr.w])
			rr.buf, rr.w, rr.r = buf, rr.w-rr.r, 0
		}
		m, err := rr.src.Read(rr.buf[rr.w:])
		rr.w += m
		if err != nil && rr.w-rr.r < n {
			return err
		}
	}
	return nil
}

// send writes request b to s and, where s reads with raw system calls,
// reads the first bytes of the answer in the same wait (sock.sendRead); a
// read's error is need's. The error is the write's (or the wait's).
func (rr *rawReader) send(s *sock, b []byte) error {
	if rr.r == rr.w {
		rr.r, rr.w = 0, 0
	}
	if len(rr.buf) == 0 {
		rr.buf = make([]byte, rawBufSize)
	}
	n, rerr, werr := s.sendRead(b, rr.buf[rr.w:])
	rr.w += n
	rr.err = rerr
	return werr
}

// idle reports whether nothing is buffered, and gives back a buffer a huge
// packet grew.
func (rr *rawReader) idle() bool {
	if rr.r != rr.w {
		return false
	}
	rr.r, rr.w = 0, 0
	if len(rr.buf) > 1<<20 {
		rr.buf = nil
	}
	return true
}

func (c *Conn) reader() *rawReader {
	if c.rd == nil {
		c.snd = newSock(c.c.GetRawConn())
		c.rd = &rawReader{src: c.snd}
	}
	return c.rd
}

func (c *Conn) deprecateEOF() bool {
	return c.c.Capabilities&mysql.CapabilityClientDeprecateEOF != 0
}

// QueryRaw runs sql as Exec does (the session's database db and state st
// applied first, in the same round trip), and hands the statement's
// response to sink packet by packet. started reports whether sink got any
// packet. A statement error comes back as the server's *sqlerror.SQLError,
// after sink got its ERR packet; any other error means the connection
// failed (sink may have had part of the response), and the connection is
// broken.
func (c *Conn) QueryRaw(sql, db string, st *State, timeout time.Duration, sink Sink) (started bool, err error) {
	if c.c.Buffered() != 0 {
		c.broken = true
		return false, c.connError(errors.New("backend: unread bytes from the server before a statement"))
	}
	if len(sql) > bigStatement {
		if err := c.applyAlone(db, st, "", timeout); err != nil {
			return false, err
		}
		db, st = "", c.state
	}
	rd := c.reader()
	buf, nPre := c.queryPacket(sql, db, st)
	if n := len(buf) - 4; n >= 1<<24-1 {
		// The protocol splits a statement this long into pieces; vitess does.
		if err := c.c.WriteComQuery(string(buf[4:])); err != nil {
			c.broken = true
			return false, c.connError(err)
		}
	} else {
		buf[0], buf[1], buf[2], buf[3] = byte(n), byte(n>>8), byte(n>>16), 0
		if timeout > 0 {
			c.setDeadline(timeout)
			defer c.clearDeadline()
		}
		if err := rd.send(c.snd, buf); err != nil {
			c.broken = true
			return false, c.connError(sqlerror.NewSQLError(sqlerror.CRServerGone, sqlerror.SSUnknownSQLState, err.Error()))
		}
	}
	for i := 0; i < nPre; i++ {
		if err := c.readPrefixResult(rd); err != nil {
			return false, err
		}
	}
	if nPre > 0 {
		c.applied(db, st)
	}
	return c.readResponse(rd, sink)
}

// queryPacket builds a COM_QUERY of sql, after the statements that bring
// the connection to db and st (nPre of them), in c.buf; the header's length
// is the caller's to set.
func (c *Conn) queryPacket(sql, db string, st *State) (buf []byte, nPre int) {
	buf = append(c.buf[:0], 0, 0, 0, 0, mysql.ComQuery)
	buf, nPre = c.appendPrefix(buf, db, st, "")
	buf = append(buf, sql...)
	c.buf = buf[:0]
	return buf, nPre
}

// applied notes that the connection is now in database db (unless "") and
// state st.
func (c *Conn) applied(db string, st *State) {
	if db != "" {
		c.db = db
	}
	c.state = st
}

// readPrefixResult reads the OK of one statement put in front of the
// caller's (USE, SET, BEGIN): anything else leaves the connection in an
// unknown state.
func (c *Conn) readPrefixResult(rd *rawReader) error {
	data, err := rd.packet()
	if err != nil {
		c.broken = true
		return c.connError(err)
	}
	if len(data) > 0 && data[0] == mysql.ErrPacket {
		c.broken = true
		return c.connError(mysql.ParseErrorPacket(data))
	}
	var p Packet
	if len(data) == 0 || data[0] != mysql.OKPacket || !parseOK(data, &p) || p.Status&mysql.ServerMoreResultsExists == 0 {
		c.broken = true
		return c.connError(errors.New("backend: unexpected answer to a session statement"))
	}
	return nil
}

// readResponse reads one statement's response into sink.
func (c *Conn) readResponse(rd *rawReader, sink Sink) (started bool, err error) {
	fail := func(err error) (bool, error) {
		c.broken = true
		return started, c.connError(err)
	}
	deliver := func(p *Packet) error {
		started = true
		if err := sink.Packet(p); err != nil {
			// The rest of the response stays unread: the connection is out
			// of step with the server.
			c.broken = true
			return err
		}
		return nil
	}
	p := &c.pkt
	// errEnd ends the response with an ERR packet (before the rows or
	// among them): the statement's error.
	errEnd := func(data []byte) (bool, error) {
		*p = Packet{Kind: PacketErr, Payload: data}
		serr := c.serverErr(data)
		if err := deliver(p); err != nil {
			return started, err
		}
		if err := c.finishRaw(rd); err != nil {
			return started, err
		}
		return started, serr
	}
	// more: a result of several ended; with c.multi it goes to sink and
	// the next is read.
	more := func() (bool, error) {
		if !c.multi {
			return c.moreResults(rd, started)
		}
		return started, deliver(p)
	}
next:
	data, err := rd.packet()
	if err != nil {
		return fail(err)
	}
	if len(data) == 0 {
		return fail(errors.New("backend: empty packet from the server"))
	}
	switch data[0] {
	case mysql.OKPacket:
		*p = Packet{Kind: PacketOK, Payload: data}
		if !parseOK(data, p) {
			return fail(errors.New("backend: malformed OK packet"))
		}
		if p.Status&mysql.ServerMoreResultsExists != 0 {
			if _, err := more(); err != nil || !c.multi {
				return started, err
			}
			goto next
		}
		if err := deliver(p); err != nil {
			return started, err
		}
		return started, c.finishRaw(rd)
	case mysql.ErrPacket:
		return errEnd(data)
	case 0xfb:
		// LOCAL INFILE request: only ExecLocal answers it (loadlocal.go).
		if c.infile != nil {
			return c.answerInfile(rd, data[1:], sink)
		}
		return fail(errors.New("backend: LOCAL INFILE request for a statement that is not a LOAD DATA LOCAL the proxy sent as one"))
	}
	ncols, ok := lenEncInt(data)
	if !ok || ncols == 0 || ncols > 1<<16 {
		return fail(errors.New("backend: malformed column count"))
	}
	*p = Packet{Kind: PacketColumnCount, Payload: data}
	if err := deliver(p); err != nil {
		return started, err
	}
	for i := uint64(0); i < ncols; i++ {
		if data, err = rd.packet(); err != nil {
			return fail(err)
		}
		*p = Packet{Kind: PacketColumn, Payload: data}
		if err := deliver(p); err != nil {
			return started, err
		}
	}
	deprecate := c.deprecateEOF()
	if !deprecate {
		if data, err = rd.packet(); err != nil {
			return fail(err)
		}
		if len(data) == 0 || data[0] != mysql.EOFPacket {
			return fail(errors.New("backend: no EOF after the column definitions"))
		}
	}
	*p = Packet{Kind: PacketColumnsDone}
	if err := deliver(p); err != nil {
		return started, err
	}
	if !deprecate && len(data) >= 5 && (uint16(data[3])|uint16(data[4])<<8)&mysql.ServerStatusCursorExists != 0 {
		// A cursor opened (COM_STMT_EXECUTE with a cursor type): no rows
		// follow, COM_STMT_FETCH asks for them. Under CLIENT_DEPRECATE_EOF
		// the server ends the same way, with an OK after the columns.
		*p = Packet{Kind: PacketEnd, Payload: data}
		if !parseEnd(data, false, p) {
			return fail(errors.New("backend: malformed end of rows"))
		}
		if err := deliver(p); err != nil {
			return started, err
		}
		return started, c.finishRaw(rd)
	}
	cont := false
	for {
		if data, err = rd.packet(); err != nil {
			return fail(err)
		}
		switch {
		case cont:
			*p = Packet{Kind: PacketRow, Payload: data, Cont: true}
		case len(data) > 0 && data[0] == mysql.EOFPacket && len(data) < 1<<24-1 && (deprecate || len(data) < 9):
			*p = Packet{Kind: PacketEnd, Payload: data}
			if !parseEnd(data, deprecate, p) {
				return fail(errors.New("backend: malformed end of rows"))
			}
			if p.Status&mysql.ServerMoreResultsExists != 0 {
				if _, err := more(); err != nil || !c.multi {
					return started, err
				}
				goto next
			}
			if err := deliver(p); err != nil {
				return started, err
			}
			return started, c.finishRaw(rd)
		case len(data) > 0 && data[0] == mysql.ErrPacket:
			return errEnd(data)
		default:
			*p = Packet{Kind: PacketRow, Payload: data}
		}
		cont = len(data) == 1<<24-1
		if err := deliver(p); err != nil {
			return started, err
		}
	}
}

// moreResults drains the results after the first (a CALL), which the proxy
// does not pass on, and fails the statement as Exec does.
func (c *Conn) moreResults(rd *rawReader, started bool) (bool, error) {
	for more := true; more; {
		var d drain
		if _, err := c.readResponse(rd, &d); err != nil && c.broken {
			return started, err
		}
		more = d.more
	}
	return started, sqlerror.NewSQLError(sqlerror.ERNotSupportedYet, sqlerror.SSUnknownSQLState, "statements with more than one result are not supported through the proxy")
}

type drain struct{ more bool }

func (d *drain) Packet(p *Packet) error {
	if p.Kind == PacketOK || p.Kind == PacketEnd {
		d.more = p.Status&mysql.ServerMoreResultsExists != 0
	}
	return nil
}

// serverErr is the server's error in an ERR packet; one after which the
// server closes the connection marks it broken.
func (c *Conn) serverErr(data []byte) error {
	serr := mysql.ParseErrorPacket(data)
	if closesConn(serr) {
		c.broken = true
	}
	return serr
}

// finishRaw checks that the response was all the server sent.
func (c *Conn) finishRaw(rd *rawReader) error {
	if c.piped {
		return nil
	}
	if !rd.idle() {
		c.broken = true
		return c.connError(errors.New("backend: the server sent more than its response"))
	}
	return nil
}

// parseOK reads an OK packet: header, affected rows, last insert id, status
// flags, warnings.
func parseOK(data []byte, p *Packet) bool {
	pos := 1
	var ok bool
	if p.Affected, pos, ok = readLenEnc(data, pos); !ok {
		return false
	}
	if p.InsertID, pos, ok = readLenEnc(data, pos); !ok {
		return false
	}
	if len(data) < pos+4 {
		return false
	}
	p.Status = uint16(data[pos]) | uint16(data[pos+1])<<8
	p.Warnings = uint16(data[pos+2]) | uint16(data[pos+3])<<8
	return true
}

// OKInfo is the info text of an OK packet's payload from the server: a
// length-encoded string after its affected rows, insert id, status flags
// and warnings, when there is more (MariaDB writes it so with or without
// CLIENT_SESSION_TRACK).
func OKInfo(payload []byte) string {
	pos := 1
	var ok bool
	for i := 0; i < 2; i++ {
		if _, pos, ok = readLenEnc(payload, pos); !ok {
			return ""
		}
	}
	pos += 4
	if pos >= len(payload) {
		return ""
	}
	n, pos, ok := readLenEnc(payload, pos)
	if !ok || uint64(len(payload)-pos) < n {
		return ""
	}
	return string(payload[pos : pos+int(n)])
}

// parseEnd reads the packet that ends rows: an OK with an EOF header under
// CLIENT_DEPRECATE_EOF, else an EOF (header, warnings, status flags).
func parseEnd(data []byte, deprecate bool, p *Packet) bool {
	if deprecate {
		return parseOK(data, p)
	}
	if len(data) < 5 {
		return false
	}
	p.Warnings = uint16(data[1]) | uint16(data[2])<<8
	p.Status = uint16(data[3]) | uint16(data[4])<<8
	return true
}

func lenEncInt(data []byte) (uint64, bool) {
	v, _, ok := readLenEnc(data, 0)
	return v, ok
}

// readLenEnc reads a length-encoded integer at pos.
func readLenEnc(data []byte, pos int) (uint64, int, bool) {
	if pos >= len(data) {
		return 0, pos, false
	}
	switch b := data[pos]; {
	case b < 0xfb:
		return uint64(b), pos + 1, true
	case b == 0xfc:
		if pos+3 > len(data) {
			return 0, pos, false
		}
		return uint64(data[pos+1]) | uint64(data[pos+2])<<8, pos + 3, true
	case b == 0xfd:
		if pos+4 > len(data) {
			return 0, pos, false
		}
		return uint64(data[pos+1]) | uint64(data[pos+2])<<8 | uint64(data[pos+3])<<16, pos + 4, true
	case b == 0xfe:
		if pos+9 > len(data) {
			return 0, pos, false
		}
		var v uint64
		for i := 8; i >= 1; i-- {
			v = v<<8 | uint64(data[pos+i])
		}
		return v, pos + 9, true
	}
	return 0, pos, false
}
