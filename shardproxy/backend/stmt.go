package backend

import (
	"encoding/binary"
	"errors"
	"time"

	"vitess.io/vitess/go/mysql"
	"vitess.io/vitess/go/mysql/sqlerror"
)

// Server-side prepared statements on a pooled connection, for clients that
// use prepared statements themselves: their COM_STMT_EXECUTE goes to the
// server as a COM_STMT_EXECUTE of the same parameters, so that the server
// does not parse the statement again and its binary rows reach the client
// as they are. A connection prepares each statement text once (per
// database and session state, which both shape how the server reads it)
// and keeps up to maxStmts of them.

// maxStmts bounds the statements prepared on one connection: the server
// counts them against max_prepared_stmt_count (16382 by default) over all
// its connections.
const maxStmts = 32

type stmtKey struct {
	db   string
	st   *State
	text string
}

type stmt struct {
	id     uint32
	params int
}

// ErrPrepare wraps the server's refusal to prepare a statement: the
// statement may still run as text.
var ErrPrepare = errors.New("backend: the server did not prepare the statement")

// ExecStmtRaw runs the statement text with the parameters of a client's
// COM_STMT_EXECUTE on the server as a prepared statement, and hands the
// response (binary rows) to sink. args is the COM_STMT_EXECUTE payload after
// the statement id (flags, iteration count, NULL bitmap, new-params-bound
// flag, types, values); params is the number of parameters text has. The
// connection is first brought to the database db and state st. Errors are
// as for QueryRaw; a statement the server would not prepare gives an error
// that wraps ErrPrepare, before sink got anything.
func (c *Conn) ExecStmtRaw(text, db string, st *State, params int, args []byte, timeout time.Duration, sink Sink) error {
	if (db != "" && db != c.db) || st != c.state {
		// A prepared statement cannot carry USE and SET in front of it: one
		// more round trip, only when the session's state differs from the
		// connection's (rarely: pools hand a session its connection back).
		if _, _, err := c.exec("DO 0", db, st, "", 0, timeout); err != nil {
			return err
		}
	}
	if c.c.Buffered() != 0 {
		c.broken = true
		return c.connError(errors.New("backend: unread bytes from the server before a statement"))
	}
	rd := c.reader()
	if timeout > 0 {
		c.setDeadline(timeout)
		defer c.clearDeadline()
	}
	key := stmtKey{db: c.db, st: c.state, text: text}
	s, ok := c.stmts[key]
	if !ok {
		var err error
		if s, err = c.prepare(rd, key, params); err != nil {
			return err
		}
	}
	c.lastStmt = s.id
	buf := append(c.buf[:0], 0, 0, 0, 0, mysql.ComStmtExecute)
	buf = binary.LittleEndian.AppendUint32(buf, s.id)
	buf = append(buf, args...)
	c.buf = buf[:0]
	n := len(buf) - 4
	if n >= 1<<24-1 {
		// Not worth splitting: long values travel as text on the ordinary path.
		return errors.Join(ErrPrepare, errors.New("parameters over 16 MiB"))
	}
	buf[0], buf[1], buf[2], buf[3] = byte(n), byte(n>>8), byte(n>>16), 0
	if err := rd.send(c.snd, buf); err != nil {
		c.broken = true
		return c.connError(sqlerror.NewSQLError(sqlerror.CRServerGone, sqlerror.SSUnknownSQLState, err.Error()))
	}
	_, err := c.readResponse(rd, sink)
	return err
}

// prepare prepares text on the server (COM_STMT_PREPARE) and remembers it.
func (c *Conn) prepare(rd *rawReader, key stmtKey, params int) (stmt, error) {
	buf := append(c.buf[:0], 0, 0, 0, 0, mysql.ComPrepare)
	buf = append(buf, key.text...)
	c.buf = buf[:0]
	n := len(buf) - 4
	if n >= 1<<24-1 {
		return stmt{}, errors.Join(ErrPrepare, errors.New("statement over 16 MiB"))
	}
	buf[0], buf[1], buf[2], buf[3] = byte(n), byte(n>>8), byte(n>>16), 0
	if err := c.snd.send(buf); err != nil {
		c.broken = true
		return stmt{}, c.connError(sqlerror.NewSQLError(sqlerror.CRServerGone, sqlerror.SSUnknownSQLState, err.Error()))
	}
	s, err := c.readPrepare(rd)
	if err != nil {
		if !c.broken {
			if ferr := c.finishRaw(rd); ferr != nil {
				return stmt{}, ferr
			}
		}
		return stmt{}, err
	}
	if err := c.finishRaw(rd); err != nil {
		return stmt{}, err
	}
	if s.params != params {
		// The statement is not the one the caller planned: do not use it.
		_ = c.closeStmt(s.id)
		return stmt{}, errors.Join(ErrPrepare, errors.New("parameter count differs"))
	}
	if err := c.keepStmt(key, s); err != nil {
		return stmt{}, err
	}
	return s, nil
}

// keepStmt remembers statement s, deallocating one kept before when the
// connection keeps maxStmts already.
func (c *Conn) keepStmt(key stmtKey, s stmt) error {
	if len(c.stmts) >= maxStmts {
		for k, old := range c.stmts {
			if err := c.closeStmt(old.id); err != nil {
				return err
			}
			delete(c.stmts, k)
			break
		}
	}
	if c.stmts == nil {
		c.stmts = map[stmtKey]stmt{}
	}
	c.stmts[key] = s
	return nil
}

// readPrepare reads the answer to a COM_STMT_PREPARE.
func (c *Conn) readPrepare(rd *rawReader) (stmt, error) {
	data, err := rd.packet()
	if err != nil {
		c.broken = true
		return stmt{}, c.connError(err)
	}
	if len(data) > 0 && data[0] == mysql.ErrPacket {
		return stmt{}, errors.Join(ErrPrepare, c.serverErr(data))
	}
	if len(data) < 12 || data[0] != mysql.OKPacket {
		c.broken = true
		return stmt{}, c.connError(errors.New("backend: malformed prepare response"))
	}
	s := stmt{id: binary.LittleEndian.Uint32(data[1:]), params: int(binary.LittleEndian.Uint16(data[7:]))}
	cols := int(binary.LittleEndian.Uint16(data[5:]))
	// Parameter and column definitions follow, each list closed by an EOF
	// unless CLIENT_DEPRECATE_EOF: the proxy has its own.
	for _, k := range []int{s.params, cols} {
		if k == 0 {
			continue
		}
		if !c.deprecateEOF() {
			k++
		}
		for i := 0; i < k; i++ {
			if _, err := rd.packet(); err != nil {
				c.broken = true
				return stmt{}, c.connError(err)
			}
		}
	}
	return s, nil
}

// closeStmt deallocates a statement on the server (COM_STMT_CLOSE has no
// response).
func (c *Conn) closeStmt(id uint32) error {
	b := [9]byte{5, 0, 0, 0, mysql.ComStmtClose}
	binary.LittleEndian.PutUint32(b[5:], id)
	if err := c.snd.write(b[:]); err != nil {
		c.broken = true
		return c.connError(sqlerror.NewSQLError(sqlerror.CRServerGone, sqlerror.SSUnknownSQLState, err.Error()))
	}
	return nil
}

// ExecStmtAll is ExecStmtRaw for a statement that may answer with several
// results (a CALL: each result set, then its OUT parameters, then an OK):
// every result goes to sink, each ended by a PacketOK or PacketEnd whose
// Status carries SERVER_MORE_RESULTS_EXISTS when another follows. The
// response of a CALL that fails after its first results is those results,
// then the PacketErr.
func (c *Conn) ExecStmtAll(text, db string, st *State, params int, args []byte, timeout time.Duration, sink Sink) error {
	c.multi = true
	defer func() { c.multi = false }()
	return c.ExecStmtRaw(text, db, st, params, args, timeout, sink)
}

// LastStmt is the server's id of the statement ExecStmtRaw or ExecStmtAll
// ran last on the connection (for FetchStmt and ResetStmt).
func (c *Conn) LastStmt() uint32 { return c.lastStmt }

// FetchStmt asks the server for up to rows rows of the cursor that
// statement id opened (COM_STMT_FETCH) and hands them to sink, then the
// PacketEnd (its Status has SERVER_STATUS_LAST_ROW_SENT after the last row:
// the cursor is closed) or the PacketErr. Errors are as for QueryRaw.
func (c *Conn) FetchStmt(id, rows uint32, timeout time.Duration, sink Sink) error {
	if c.c.Buffered() != 0 {
		c.broken = true
		return c.connError(errors.New("backend: unread bytes from the server before a statement"))
	}
	rd := c.reader()
	if timeout > 0 {
		c.setDeadline(timeout)
		defer c.clearDeadline()
	}
	b := [13]byte{9, 0, 0, 0, mysql.ComStmtFetch}
	binary.LittleEndian.PutUint32(b[5:], id)
	binary.LittleEndian.PutUint32(b[9:], rows)
	if err := c.snd.send(b[:]); err != nil {
		c.broken = true
		return c.connError(sqlerror.NewSQLError(sqlerror.CRServerGone, sqlerror.SSUnknownSQLState, err.Error()))
	}
	p := &c.pkt
	deprecate := c.deprecateEOF()
	cont := false
	for {
		data, err := rd.packet()
		if err != nil {
			c.broken = true
			return c.connError(err)
		}
		switch {
		case cont:
			*p = Packet{Kind: PacketRow, Payload: data, Cont: true}
		case len(data) > 0 && data[0] == mysql.EOFPacket && len(data) < 1<<24-1 && (deprecate || len(data) < 9):
			*p = Packet{Kind: PacketEnd, Payload: data}
			if !parseEnd(data, deprecate, p) {
				c.broken = true
				return c.connError(errors.New("backend: malformed end of rows"))
			}
			if err := sink.Packet(p); err != nil {
				c.broken = true
				return err
			}
			return c.finishRaw(rd)
		case len(data) > 0 && data[0] == mysql.ErrPacket:
			*p = Packet{Kind: PacketErr, Payload: data}
			serr := c.serverErr(data)
			if err := sink.Packet(p); err != nil {
				c.broken = true
				return err
			}
			if err := c.finishRaw(rd); err != nil {
				return err
			}
			return serr
		default:
			*p = Packet{Kind: PacketRow, Payload: data}
		}
		cont = len(data) == 1<<24-1
		if err := sink.Packet(p); err != nil {
			c.broken = true
			return err
		}
	}
}

// ResetStmt closes the cursor statement id has open, if any
// (COM_STMT_RESET), so that the server drops what it materialized.
func (c *Conn) ResetStmt(id uint32, timeout time.Duration) error {
	if c.c.Buffered() != 0 {
		c.broken = true
		return c.connError(errors.New("backend: unread bytes from the server before a statement"))
	}
	rd := c.reader()
	if timeout > 0 {
		c.setDeadline(timeout)
		defer c.clearDeadline()
	}
	b := [9]byte{5, 0, 0, 0, mysql.ComStmtReset}
	binary.LittleEndian.PutUint32(b[5:], id)
	if err := c.snd.send(b[:]); err != nil {
		c.broken = true
		return c.connError(sqlerror.NewSQLError(sqlerror.CRServerGone, sqlerror.SSUnknownSQLState, err.Error()))
	}
	data, err := rd.packet()
	if err != nil {
		c.broken = true
		return c.connError(err)
	}
	if len(data) > 0 && data[0] == mysql.ErrPacket {
		serr := c.serverErr(data)
		if err := c.finishRaw(rd); err != nil {
			return err
		}
		return serr
	}
	if len(data) == 0 || data[0] != mysql.OKPacket {
		c.broken = true
		return c.connError(errors.New("backend: malformed answer to COM_STMT_RESET"))
	}
	return c.finishRaw(rd)
}
