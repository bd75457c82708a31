package executor

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"vitess.io/vitess/go/mysql"
	"vitess.io/vitess/go/mysql/sqlerror"

	"github.com/strata-db/strata/shardproxy/backend"
	"github.com/strata-db/strata/shardproxy/engine"
	"github.com/strata-db/strata/shardproxy/mysqlerr"
	"github.com/strata-db/strata/shardproxy/session"
	"github.com/strata-db/strata/shardproxy/sqlmode"
	"github.com/strata-db/strata/shardproxy/vschema"
	"github.com/strata-db/strata/shardproxy/wire"
)

// Prepared statements whose answer the listener cannot write (it writes one
// result set and no cursor) are relayed below it, like the fast lane's
// reads: the shard runs the statement as a prepared statement of its own,
// with the client's parameters as they came, and its packets go to the
// client as it sent them, with the client's sequence numbers and the
// session's status flags (SERVER_MORE_RESULTS_EXISTS, SERVER_PS_OUT_PARAMS,
// SERVER_STATUS_CURSOR_EXISTS and SERVER_STATUS_LAST_ROW_SENT are the
// shard's), EOF packets added or dropped when the client and the backend
// connection disagree on CLIENT_DEPRECATE_EOF.
//
//   - A prepared CALL (callShard says where it runs): each result set, then
//     the final OK; a procedure that fails after a result (SIGNAL) sends
//     that result and then the error, as MariaDB does. MariaDB sends the
//     OUT parameters' result set only to connections that set
//     CLIENT_PS_MULTI_RESULTS, which the proxy's backend connections (the
//     vitess client's) do not: a CALL's OUT parameters bound to ? do not
//     reach the client (those bound to @variables do).
//   - A cursor (COM_STMT_EXECUTE with CURSOR_TYPE_READ_ONLY) of a read the
//     fast lane runs (one shard answers it whole): the shard opens it, the
//     column definitions go to the client, and the backend connection stays
//     with the session (cursors) until the last row was fetched, or
//     COM_STMT_RESET, COM_STMT_CLOSE, another execute of the statement or
//     the session's end closes it. Each COM_STMT_FETCH is passed on.
//     Anything else with a cursor type gets the whole result at once
//     (without SERVER_STATUS_CURSOR_EXISTS, as MariaDB answers statements
//     it opens no cursor for), and COM_STMT_FETCH then MariaDB's 1421.

// cursorReadOnly is COM_STMT_EXECUTE's CURSOR_TYPE_READ_ONLY flag.
const cursorReadOnly = 0x01

// Status flags that a relayed response takes from the shard.
const relayedStatus = mysql.ServerMoreResultsExists | mysql.ServerPsOutParams |
	mysql.ServerStatusCursorExists | mysql.ServerStatusLastRowSent |
	mysql.ServerStatusNoGoodIndexUsed | mysql.ServerStatusNoIndexUsed

// cursor is an open cursor of a client's prepared statement: the backend
// connection it lives on and the shard's statement id.
type cursor struct {
	conn *backend.Conn
	stmt uint32
	// owned: the cursor took conn from its pool and gives it back; else
	// conn is the session's (its transaction's or a reserved one), and the
	// cursor lives while the session still has it.
	owned bool
}

// live reports whether c's connection still serves it.
func (s *Session) live(c *cursor) bool {
	if c.owned {
		return true
	}
	return s.Tx == c.conn || s.HeldConn(c.conn.Pool().Shard) == c.conn
}

// isCall reports whether a statement's text is a CALL.
func isCall(text string) bool {
	return len(text) >= 4 && sqlmode.Verb(text, 0) == "CALL"
}

// callShard is the shard a CALL in the session's database runs on: the
// unsharded database's shard, or in a sharded database the home shard when
// the statement names none of the database's tables but reference tables
// (a procedure's body is the server's: what it touches is the
// application's choice, as for a CALL in text). ok false: the ordinary
// path answers it.
func (s *Session) callShard(text string) (shard string, ok bool) {
	d := s.srv.vs.Databases[s.DB]
	if d == nil {
		return "", false
	}
	for _, q := range sqlmode.Qualifiers(text, 0) {
		if od := s.srv.vs.Databases[q]; od != nil && q != s.DB {
			return "", false // passRaw or the planner says what is wrong
		}
	}
	if !d.Sharded {
		return d.Shard, true
	}
	for _, t := range sqlmode.Tokens(text, 0) {
		if t.Kind != sqlmode.Word && t.Kind != sqlmode.Ident {
			continue
		}
		if tb := d.Tables[strings.ToLower(t.Name(text))]; tb != nil && tb.Kind != vschema.Reference {
			return "", false
		}
	}
	return s.srv.homeShardOf(s.DB), true
}

// relayCall runs a COM_STMT_EXECUTE (data: the packet after its command
// byte) of prepared CALL p below the listener. handled false leaves it to
// the listener (which answers what MariaDB refuses before running it).
func (s *Session) relayCall(f *wire.Conn, data []byte, p *prepared) (handled bool, err error) {
	shard, ok := s.callShard(p.query)
	if !ok {
		return false, nil
	}
	return s.relay(f, data, p, shard, p.query, true)
}

// relayCursor runs a COM_STMT_EXECUTE with a cursor type of a read in an
// unsharded database that the fast lane does not take now (in a
// transaction, or with reserved connections) on the connection the session
// uses there; the cursor stays on it. The settings that keep statements off
// the fast lane (session.Vars.LaneOff: a sql_mode that changes how text is
// read, sql_select_limit) keep them off here too.
func (s *Session) relayCursor(f *wire.Conn, data []byte, p *prepared) (handled bool, err error) {
	d := s.srv.vs.Databases[s.DB]
	if d == nil || d.Sharded || p.laneText == "" || p.kind != kindSelect || p.cp == nil || p.cp.needs != nil || s.Vars.LaneOff() {
		return false, nil
	}
	return s.relay(f, data, p, d.Shard, p.laneText, false)
}

// relay runs a COM_STMT_EXECUTE (data) of prepared statement p as text on
// shard, below the listener; call: p is a CALL.
func (s *Session) relay(f *wire.Conn, data []byte, p *prepared, shard, text string, call bool) (handled bool, err error) {
	id := binary.LittleEndian.Uint32(data)
	prep := s.Conn.PrepareData[id]
	if prep == nil || p.query != prep.PrepareStmt || len(prep.BindVars) != 0 || int(prep.ParamsCount) != p.params || s.vc != nil {
		return false, nil
	}
	if binary.LittleEndian.Uint32(data[5:]) != 1 {
		return false, nil // an array of parameter sets
	}
	args, ok := s.relayArgs(data, p, prep)
	if !ok {
		return false, nil
	}
	ctx := context.Background()
	start := time.Now()
	s.Running(p.query, start)
	s.ClearWarnings()
	rs := &relaySink{out: pktOut{f: f, seq: 1}, status: s.StatusFlags(), eofAt: -1, stmtID: id, cursor: data[4]&cursorReadOnly != 0}
	kind := p.kind
	if call {
		// Every result set of a CALL is followed by another result: the
		// EOF after its columns says so, as MariaDB's does.
		rs.colsStatus, kind = mysql.ServerMoreResultsExists, kindOther
	}
	f.Out = f.Out[:0]
	xerr := s.relayOnSafe(ctx, shard, p, text, call, args, rs)
	if errors.Is(xerr, backend.ErrPrepare) && !rs.done && !rs.out.flushed {
		// The shard would not prepare it: its error is the client's, as
		// it would be directly (MariaDB refuses at prepare what it
		// refuses to run); any other refusal leaves it to the listener.
		var se *sqlerror.SQLError
		if !errors.As(xerr, &se) {
			s.Running("", time.Time{})
			return false, nil
		}
		xerr = se
	}
	switch {
	case rs.done:
		// The shard's whole response is in Out; xerr is its statement error.
	case rs.out.flushed:
		s.finish(kind, p.query, start, xerr)
		return true, fmt.Errorf("shardproxy: result broken off: %w", xerr)
	default:
		if xerr == nil {
			xerr = sqlerror.NewSQLError(sqlerror.ERUnknownError, sqlerror.SSUnknownSQLState, "internal error in the proxy: a relayed statement got no response")
		}
		f.Out = f.Out[:0]
		rs.out.seq = 1
		rs.out.err(xerr)
	}
	switch {
	case xerr != nil:
		s.RecordError(xerr)
	case !call:
		s.RowCount = -1
	default:
		s.RowCount = int64(rs.affected)
		if rs.insertID != 0 {
			s.LastInsertID = rs.insertID
		}
	}
	s.Conn.StatusFlags = s.StatusFlags()
	s.finish(kind, p.query, start, xerr)
	if err := f.WriteLane(f.Out); err != nil {
		return true, err
	}
	if cap(f.Out) > laneFlushAt {
		f.Out = nil
	}
	return true, nil
}

// relayArgs are the COM_STMT_EXECUTE arguments (after the statement id) to
// send to the shard: always with the parameter types, which the shard's
// statement (shared by sessions) may have been given others of. ok false:
// the listener should judge the packet.
func (s *Session) relayArgs(data []byte, p *prepared, prep *mysql.PrepareData) ([]byte, bool) {
	n := p.params
	if n == 0 {
		return data[4:9], len(data) == 9
	}
	pos := 9
	nb := (n + 7) / 8
	if len(data) < pos+nb+1 {
		return nil, false
	}
	nulls := data[pos : pos+nb]
	pos += nb
	bound := data[pos] == 1
	pos++
	if !bound {
		if len(p.rawTypes) != 2*n {
			return nil, false
		}
		a := append(s.fp.args[:0], data[4:9]...)
		a = append(a, nulls...)
		a = append(a, 1)
		a = append(a, p.rawTypes...)
		a = append(a, data[pos:]...)
		s.fp.args = a
		return a, true
	}
	if len(data) < pos+2*n {
		return nil, false
	}
	types := data[pos : pos+2*n]
	for i := 0; i < n; i++ {
		t, err := wire.ParamType(types[2*i], types[2*i+1])
		if err != nil {
			return nil, false
		}
		// As the listener would have noted them, for an execute that
		// takes its path.
		prep.ParamsType[i] = int32(t)
	}
	p.rawTypes = append(p.rawTypes[:0], types...)
	return data[4:], true
}

// relayOnSafe is relayOn with a panic made the statement's error, as on
// the ordinary path.
func (s *Session) relayOnSafe(ctx context.Context, shard string, p *prepared, text string, call bool, args []byte, rs *relaySink) (err error) {
	defer s.srv.guard(s.ID, "relayed prepared statement", p.query, &err)
	return s.relayOn(ctx, shard, p, text, call, args, rs)
}

// relayOn runs prepared statement p (as text, for the shard) with args on
// shard, on the connection the session uses there (its transaction's, its
// reserved one, or a pooled one), into rs. A cursor the shard opened stays
// on that connection (keepCursor).
func (s *Session) relayOn(ctx context.Context, shard string, p *prepared, text string, call bool, args []byte, rs *relaySink) error {
	var conn *backend.Conn
	var done func(error)
	switch {
	case s.InTx() && !s.OutsideTx:
		if s.TxLost != nil {
			return s.TxLost
		}
		if s.Tx == nil {
			// Open the transaction there as any statement would.
			if _, err := s.ExecuteShards(ctx, []engine.ShardQuery{{Shard: shard, SQL: "DO 0", Read: true}}); err != nil {
				return err
			}
		}
		if s.Tx == nil || s.TxShard != shard || len(s.Branches) > 0 {
			return mysqlerr.NotSupported("a prepared CALL in a transaction that spans shards")
		}
		s.TxUsed()
		conn = s.Tx
		done = func(err error) {
			if rs.cursorOpen && err == nil && !conn.Broken() {
				s.keepCursor(rs.stmtID, conn, conn.LastStmt(), false)
			}
			if conn.Broken() {
				s.TxLost = sqlerror.NewSQLErrorf(sqlerror.CRServerLost, sqlerror.SSUnknownSQLState,
					"the transaction on shard %s was lost (%v): ROLLBACK and retry it", shard, mysqlerr.From(err).Message)
				s.ReleaseTx(err)
				return
			}
			if rs.final&mysql.ServerStatusInTrans == 0 && rs.done && err == nil {
				// The procedure ended the transaction (COMMIT in its body).
				s.ReleaseTx(nil)
				s.ExplicitTx = false
			}
		}
	case s.HeldConn(shard) != nil:
		conn = s.HeldConn(shard)
		done = func(err error) {
			if rs.cursorOpen && err == nil && !conn.Broken() {
				s.keepCursor(rs.stmtID, conn, conn.LastStmt(), false)
			}
			if conn.Broken() {
				_ = s.LostHeld(shard, conn, "closed during a CALL")
			}
		}
	default:
		t, err := s.srv.cluster.Route(ctx, shard, false, &s.Hint)
		if err != nil {
			return err
		}
		if conn, err = t.Pool.GetFor(ctx, s.State, uint64(s.ID)); err != nil {
			if t.Done != nil {
				t.Done(err)
			}
			return err
		}
		done = func(err error) {
			if rs.cursorOpen && err == nil && !conn.Broken() {
				s.keepCursor(rs.stmtID, conn, conn.LastStmt(), true)
			} else {
				t.Pool.Put(conn)
			}
			if t.Done != nil {
				t.Done(err)
			}
		}
	}
	start := time.Now()
	if reads, sets := userVars(text); call && len(reads) > 0 {
		// The user variables it names travel with it (session.RawVars).
		s.Raw = &session.RawVars{Reads: reads, Sets: sets}
		defer func() { s.Raw = nil }()
		if err := s.RawBefore(ctx, conn, shard); err != nil {
			done(err)
			return err
		}
	}
	err := conn.ExecStmtAll(text, s.DBOn(shard), s.State, p.params, args, s.srv.cfg.QueryTimeout, rs)
	if s.Raw != nil && !conn.Broken() {
		s.RawAfter(ctx, conn)
	}
	if rs.warns > 0 && !conn.Broken() {
		s.CollectWarnings(conn)
	}
	if m := s.srv.shared.Metrics.Shard(shard); m != nil {
		m.Observe(start, err)
	}
	done(err)
	return err
}

// pktOut appends the packets of a response for the client to f.Out, with
// the client's sequence numbers; large responses go out as they grow.
type pktOut struct {
	f       *wire.Conn
	seq     byte
	flushed bool // part of the response went to the client already
}

func (o *pktOut) packet(payload []byte) {
	n := len(payload)
	o.f.Out = append(o.f.Out, byte(n), byte(n>>8), byte(n>>16), o.seq)
	o.f.Out = append(o.f.Out, payload...)
	o.seq++
}

func (o *pktOut) flush() error {
	if len(o.f.Out) < laneFlushAt {
		return nil
	}
	o.flushed = true
	err := o.f.WriteLane(o.f.Out)
	o.f.Out = o.f.Out[:0]
	return err
}

// eof appends an EOF packet.
func (o *pktOut) eof(status, warnings uint16) {
	o.f.Out = append(o.f.Out, 5, 0, 0, o.seq, mysql.EOFPacket, byte(warnings), byte(warnings>>8), byte(status), byte(status>>8))
	o.seq++
}

// ok appends an OK packet with header (OKPacket, or EOFPacket where an OK
// ends rows under CLIENT_DEPRECATE_EOF).
func (o *pktOut) ok(header byte, affected, insertID uint64, status, warnings uint16) {
	out := append(o.f.Out, 0, 0, 0, o.seq, header)
	at := len(out) - 5
	out = wire.AppendLenEnc(out, affected)
	out = wire.AppendLenEnc(out, insertID)
	out = append(out, byte(status), byte(status>>8), byte(warnings), byte(warnings>>8))
	n := len(out) - at - 4
	out[at], out[at+1], out[at+2] = byte(n), byte(n>>8), byte(n>>16)
	o.f.Out = out
	o.seq++
}

// end appends what ends rows: an EOF, or an OK with an EOF header under
// CLIENT_DEPRECATE_EOF.
func (o *pktOut) end(status, warnings uint16) {
	if o.f.DeprecateEOF() {
		o.ok(mysql.EOFPacket, 0, 0, status, warnings)
	} else {
		o.eof(status, warnings)
	}
}

// err appends the ERR packet of an error, as the listener writes it.
func (o *pktOut) err(err error) {
	se := mysqlerr.From(err)
	msg := se.Message
	if len(msg) > 1<<16 {
		msg = msg[:1<<16]
	}
	o.f.Out = wire.AppendErr(o.f.Out, o.seq, se.Num, se.State, msg)
	o.seq++
}

// relaySink is the backend.Sink of a relayed statement: the shard's
// results become the client's.
type relaySink struct {
	out    pktOut
	status uint16 // the session's status flags
	// colsStatus is added to status in the EOF after a result's columns.
	colsStatus uint16
	// colsEOF: the columns of a result went out and, for a client
	// without CLIENT_DEPRECATE_EOF, their EOF not yet: a cursor's carries
	// SERVER_STATUS_CURSOR_EXISTS, known only when the shard's answer ends.
	colsEOF bool
	// eofAt is where in Out the status of the last result's columns' EOF
	// is (-1: none, or sent): the shard's index flags, known at the end
	// of the rows, are added to it there, as MariaDB has them.
	eofAt int
	// done: the whole response is in Out; final is the status of its last
	// packet.
	done  bool
	final uint16
	// cursor: the execute asked for one; cursorOpen: the shard opened it
	// (for client statement stmtID).
	cursor, cursorOpen bool
	stmtID             uint32
	rows               uint64
	warns              uint16
	affected, insertID uint64
}

// Packet implements backend.Sink.
func (rs *relaySink) Packet(p *backend.Packet) error {
	o := &rs.out
	switch p.Kind {
	case backend.PacketColumnCount, backend.PacketColumn:
		o.packet(p.Payload)
	case backend.PacketColumnsDone:
		rs.colsEOF = !o.f.DeprecateEOF()
	case backend.PacketRow:
		if rs.colsEOF {
			rs.eofAt = len(o.f.Out) + 7
			o.eof(rs.status|rs.colsStatus, 0)
			rs.colsEOF = false
		}
		if !p.Cont {
			rs.rows++
		}
		o.packet(p.Payload)
		if len(o.f.Out) >= laneFlushAt {
			rs.eofAt = -1
		}
		return o.flush()
	case backend.PacketEnd:
		st := rs.status | p.Status&relayedStatus
		if rs.eofAt >= 0 && rs.eofAt < len(o.f.Out) {
			o.f.Out[rs.eofAt] |= byte(p.Status & (mysql.ServerStatusNoGoodIndexUsed | mysql.ServerStatusNoIndexUsed))
		}
		rs.eofAt = -1
		rs.warns = p.Warnings
		if p.Status&mysql.ServerStatusCursorExists != 0 {
			rs.cursorOpen = true
		}
		if rs.colsEOF {
			rs.colsEOF = false
			if rs.cursorOpen {
				// A cursor: one EOF after the columns, with its flag.
				o.eof(st, p.Warnings)
				break
			}
			o.eof(rs.status|rs.colsStatus|p.Status&(mysql.ServerStatusNoGoodIndexUsed|mysql.ServerStatusNoIndexUsed), 0)
		}
		o.end(st, p.Warnings)
	case backend.PacketOK:
		st := rs.status | p.Status&relayedStatus
		rs.warns, rs.affected, rs.insertID = p.Warnings, p.Affected, p.InsertID
		o.ok(mysql.OKPacket, p.Affected, p.InsertID, st, p.Warnings)
	case backend.PacketErr:
		o.packet(p.Payload)
		rs.done, rs.final = true, rs.status
		return nil
	}
	if (p.Kind == backend.PacketEnd || p.Kind == backend.PacketOK) && p.Status&mysql.ServerMoreResultsExists == 0 {
		rs.done, rs.final = true, p.Status
	}
	return nil
}

// keepCursor keeps the connection a cursor of client statement id opened
// (shard statement stmt), in place of giving it back.
func (s *Session) keepCursor(id uint32, conn *backend.Conn, stmt uint32, owned bool) {
	if s.cursors == nil {
		s.cursors = map[uint32]*cursor{}
	}
	s.cursors[id] = &cursor{conn: conn, stmt: stmt, owned: owned}
}

// CloseCursor implements wire.Session: statement id's cursor, if open, is
// closed on the shard and its connection given back.
func (s *Session) CloseCursor(id uint32) {
	c := s.cursors[id]
	if c == nil {
		return
	}
	delete(s.cursors, id)
	s.dropCursor(c)
}

func (s *Session) dropCursor(c *cursor) {
	if !s.live(c) {
		return // gone with the session's transaction or reserved connection
	}
	if !c.conn.Broken() {
		_ = c.conn.ResetStmt(c.stmt, s.srv.cfg.QueryTimeout)
	}
	if c.owned {
		c.conn.Pool().Put(c.conn)
	}
}

// closeCursors closes every open cursor (session end and reset).
func (s *Session) closeCursors() {
	for id, c := range s.cursors {
		delete(s.cursors, id)
		s.dropCursor(c)
	}
}

// Fetch implements wire.Session: COM_STMT_FETCH (data after the command
// byte: statement id, number of rows) of an open cursor is passed to its
// shard, and the rows and the end (SERVER_STATUS_LAST_ROW_SENT after the
// last: the cursor is then closed) go to the client.
func (s *Session) Fetch(f *wire.Conn, data []byte) error {
	f.Out = f.Out[:0]
	o := pktOut{f: f, seq: 1}
	var id uint32
	if len(data) >= 4 {
		id = binary.LittleEndian.Uint32(data)
	}
	c := s.cursors[id]
	switch {
	case len(data) < 8 || s.Conn == nil || s.Conn.PrepareData[id] == nil:
		o.err(sqlerror.NewSQLErrorf(sqlerror.ERUnknownStmtHandler, sqlerror.SSUnknownSQLState,
			"Unknown prepared statement handler (%d) given to mysqld_stmt_fetch", id))
	case c == nil || !s.live(c):
		if c != nil {
			delete(s.cursors, id) // its transaction ended
		}
		o.err(sqlerror.NewSQLErrorf(mysqlerr.ERStmtHasNoOpenCursor, sqlerror.SSUnknownSQLState,
			"The statement (%d) has no open cursor", id))
	default:
		fs := &fetchSink{out: o, status: s.StatusFlags()}
		start := time.Now()
		err := c.conn.FetchStmt(c.stmt, binary.LittleEndian.Uint32(data[4:]), s.srv.cfg.QueryTimeout, fs)
		o = fs.out
		if fs.last || c.conn.Broken() {
			delete(s.cursors, id)
			switch {
			case c.owned:
				c.conn.Pool().Put(c.conn)
			case c.conn.Broken():
				_ = s.LostHeld(c.conn.Pool().Shard, c.conn, "closed during COM_STMT_FETCH")
			}
		}
		if m := s.srv.shared.Metrics.Shard(c.conn.Pool().Shard); m != nil {
			m.Observe(start, err)
		}
		if err != nil && !fs.done {
			if o.flushed {
				return fmt.Errorf("shardproxy: COM_STMT_FETCH broken off: %w", err)
			}
			f.Out = f.Out[:0]
			o.seq = 1
			o.err(err)
		}
	}
	err := f.WriteLane(f.Out)
	if cap(f.Out) > laneFlushAt {
		f.Out = nil
	}
	return err
}

// fetchSink is the backend.Sink of a COM_STMT_FETCH.
type fetchSink struct {
	out    pktOut
	status uint16
	done   bool // the response is in Out
	last   bool // the last row went: the shard closed the cursor
}

// Packet implements backend.Sink.
func (fs *fetchSink) Packet(p *backend.Packet) error {
	switch p.Kind {
	case backend.PacketRow:
		fs.out.packet(p.Payload)
		return fs.out.flush()
	case backend.PacketEnd:
		fs.done = true
		fs.last = p.Status&mysql.ServerStatusLastRowSent != 0
		fs.out.end(fs.status|p.Status&relayedStatus, p.Warnings)
	case backend.PacketErr:
		fs.done = true
		fs.out.packet(p.Payload)
	}
	return nil
}
