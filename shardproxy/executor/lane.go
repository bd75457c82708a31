package executor

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"vitess.io/vitess/go/mysql"
	"vitess.io/vitess/go/mysql/sqlerror"
	"vitess.io/vitess/go/sqltypes"
	querypb "vitess.io/vitess/go/vt/proto/query"
	"vitess.io/vitess/go/vt/sqlparser"

	"github.com/strata-db/strata/shardproxy/backend"
	"github.com/strata-db/strata/shardproxy/engine"
	"github.com/strata-db/strata/shardproxy/mysqlerr"
	"github.com/strata-db/strata/shardproxy/session"
	"github.com/strata-db/strata/shardproxy/wire"
)

// The fast lane runs the commonest statements below the listener, in
// Conn, the way a TCP proxy would pass them: a read that one shard
// answers whole, of a shape the fast path knows (fastpath.go), outside a
// transaction. The statement is routed as on the ordinary path (same plan,
// same bind variables, same SQL for the shard), but the shard's response is
// not decoded into a sqltypes.Result and encoded again by the listener: its
// packets go to the client as the shard sent them, with the client's
// sequence numbers, the session's status flags, and EOF packets added or
// removed when the client and the backend connection disagree on
// CLIENT_DEPRECATE_EOF. The response goes out in one write.
//
// Everything else, and anything the lane finds it cannot do before the
// shard has answered (a route to several shards, a read whose connection
// failed), is left to the listener and the ordinary path, which then runs
// the statement as if the lane had never seen it.

// laneFlushAt is the size at which a large result's first packets are
// written before the rest has arrived (after that, a failure can only
// close the client's connection, as it would through a TCP proxy).
const laneFlushAt = 256 << 10

// errNotLane tells the lane that a statement needs the ordinary path; it is
// returned before anything was sent to a shard.
var errNotLane = errors.New("shardproxy: not for the fast lane")

// laneResult is what a lane statement's plan returns: the rows went to the
// client already.
var laneResult = &sqltypes.Result{}

// laneCursor is the VCursor of a statement in the fast lane and the Sink of
// its shard's response, which it translates into the client's packets in
// Conn.out.
type laneCursor struct {
	s   *Session
	f   *wire.Conn
	res [1]*sqltypes.Result

	// For a prepared statement: the shard's statement text, its number of
	// parameters, and the client's COM_STMT_EXECUTE payload after the
	// statement id (with the parameter types).
	stmtText   string
	stmtParams int
	stmtArgs   []byte
	// stmtID is the client's statement; cursor: its execute asked for a
	// cursor (relay.go), which the shard opened when cursorOpen.
	stmtID             uint32
	cursor, cursorOpen bool
	colsEOF            bool // the columns' EOF is not yet written (relaySink.colsEOF)

	// cp is the statement's plan; piped: its answer is read from a
	// pipeline (runPiped).
	cp        *cachedPlan
	piped     bool
	used      bool      // ExecuteShards ran
	noPrepare bool      // the shard would not prepare stmtText
	done      bool      // the shard's whole response is in out (or went out)
	flushed   bool      // part of the response went to the client already
	retry     bool      // a read whose connection failed before any response
	start     time.Time // when the statement started
	seq       byte      // the next packet's sequence number
	status    uint16    // the session's status flags
	rows      uint64
	warns     uint16
}

// ready reports whether the session may use the fast lane now.
func (s *Session) laneReady() bool {
	return s.vc == nil && !s.InTx() && s.Tx == nil && s.TxLost == nil && !s.OutsideTx && len(s.Reserved) == 0 && !s.Vars.LaneOff()
}

// laneQuery runs a COM_QUERY (body: the statement's text, which lives in the
// client's read buffer) in the fast lane. handled false leaves it to the
// listener; err means the client's connection failed.
func (s *Session) LaneQuery(f *wire.Conn, body []byte) (handled bool, err error) {
	if !s.laneReady() || len(body) == 0 {
		return false, nil
	}
	sql := unsafe.String(unsafe.SliceData(body), len(body))
	if mayHoldSeveral(sql) || mentionsStrata(sql) {
		return false, nil
	}
	fs := &s.fp
	key, lits, _, ok := scanShape(sql, s.DB, fs.key[:0], fs.lits[:0])
	fs.key, fs.lits = key, lits
	if !ok {
		return false, nil
	}
	e := s.srv.fast.getBytes(key)
	if e == nil || !e.fast {
		return false, nil
	}
	if e.cp.point != nil {
		if !e.cp.point.Usable() || e.cp.needs != nil {
			return false, nil
		}
		bv, ok := s.fastBindVars(sql, e, lits)
		if !ok {
			return false, nil
		}
		return s.laneCached(f, e.cp, bv, sql, false)
	}
	if !e.cp.lane {
		return false, nil
	}
	bv, ok := s.fastBindVars(sql, e, lits)
	if !ok {
		return false, nil
	}
	s.lane = laneCursor{s: s, f: f, seq: 1, status: s.StatusFlags()}
	s.Hint.ForcePrimary = false
	handled, err = s.runLane(f, e.cp, bv, sql, nil)
	if handled {
		s.srv.fastHits.Add(1)
	}
	return handled, err
}

// runLane runs a planned read in the fast lane and writes its response
// (s.lane is set up for it). p is the prepared statement being executed,
// nil for text.
func (s *Session) runLane(f *wire.Conn, cp *cachedPlan, bv map[string]*querypb.BindVariable, text string, p *prepared) (handled bool, err error) {
	lc := &s.lane
	lc.cp = cp
	f.Out = f.Out[:0]
	s.ClearWarnings()
	start := time.Now()
	lc.start = start
	s.Running(text, start)
	xerr := s.lanePlanSafe(cp, bv, text)
	switch {
	case lc.done:
		// The shard's response is in out; xerr is its statement error.
	case !lc.flushed && (errors.Is(xerr, errNotLane) || lc.retry || lc.noPrepare):
		if lc.noPrepare && p != nil {
			// The shard would not prepare it: this session's executes of
			// the statement take the ordinary path (as text) from now on.
			p.laneText = ""
		}
		s.Running("", time.Time{})
		return false, nil
	case lc.flushed:
		// Rows went out and the rest cannot follow.
		s.finish(kindSelect, text, start, xerr)
		return true, fmt.Errorf("shardproxy: result broken off: %w", xerr)
	default:
		if xerr == nil {
			xerr = sqlerror.NewSQLError(sqlerror.ERUnknownError, sqlerror.SSUnknownSQLState, "internal error in the proxy: the fast lane got no response")
		}
		f.Out = f.Out[:0]
		lc.seq = 1
		lc.emitErr(xerr)
	}
	if xerr != nil {
		s.RecordError(xerr)
	} else {
		s.RowCount = -1
		s.FoundRows = lc.rows
	}
	s.finish(kindSelect, text, start, xerr)
	s.srv.laneHits.Add(1)
	if err := f.WriteLane(f.Out); err != nil {
		return true, err
	}
	if cap(f.Out) > laneFlushAt {
		f.Out = nil
	}
	return true, nil
}

// lanePlanSafe runs the plan with the lane's cursor; a panic becomes the
// statement's error, as on the ordinary path.
func (s *Session) lanePlanSafe(cp *cachedPlan, bv map[string]*querypb.BindVariable, text string) (err error) {
	defer s.srv.guard(s.ID, "statement", text, &err)
	if cp.needs != nil {
		s.fillNeeds(cp.needs, bv)
	}
	res, err := cp.plan.Execute(context.Background(), &s.lane, bv)
	if err == nil && res != laneResult {
		// Not a plan lanePlan admits: its result cannot reach the client.
		return sqlerror.NewSQLError(sqlerror.ERUnknownError, sqlerror.SSUnknownSQLState, "internal error in the proxy: a fast-lane plan changed its result")
	}
	return err
}

// Scratch implements engine.ScratchLender: the lane's one shard query is
// built in the session's scratch, which it holds only while the query runs
// (run copies the SQL into the backend connection's buffer).
func (lc *laneCursor) Scratch() *engine.Scratch { return &lc.s.laneScratch }

// PreferredShard implements engine.ShardPreferrer (the lane runs outside
// transactions: no preference).
func (lc *laneCursor) PreferredShard() string { return lc.s.TxShard }

// ExecuteShards implements engine.VCursor for one query: it runs it on a
// pooled connection and passes the response to the client. Several queries
// are the ordinary path's business.
func (lc *laneCursor) ExecuteShards(ctx context.Context, qs []engine.ShardQuery) ([]*sqltypes.Result, error) {
	if len(qs) != 1 || lc.used {
		return nil, errNotLane
	}
	lc.used = true
	q := qs[0]
	s := lc.s
	err := lc.run(ctx, q, q.Read && !s.Hint.ForcePrimary)
	if m := s.srv.shared.Metrics.Shard(q.Shard); m != nil {
		// From the statement's start: the routing before the connection
		// is taken is well under the histogram's resolution, and it saves
		// a clock read per statement.
		m.Observe(lc.start, err)
	}
	if err != nil {
		return nil, err
	}
	lc.res[0] = laneResult
	return lc.res[:], nil
}

func (lc *laneCursor) run(ctx context.Context, q engine.ShardQuery, read bool) error {
	s := lc.s
	t, err := s.srv.cluster.Route(ctx, q.Shard, read, &s.Hint)
	if err != nil {
		return err
	}
	text, ok := lc.stmtText, true
	if text != "" && q.Tables != nil {
		text, ok = engine.ResolveTables(text, q)
	}
	if cp := lc.cp; ok && cp != nil && cp.pipe && !cp.pipeOff.Load() {
		if err, piped := lc.runPiped(t, q, text); piped {
			return err
		}
	}
	conn, err := t.Pool.GetFor(ctx, s.State, uint64(s.ID))
	if err != nil {
		if t.Done != nil {
			t.Done(err)
		}
		if read && backend.IsConnError(err) {
			// A dial that failed, or a server ejected after routing:
			// nothing was sent, the ordinary path routes it again.
			lc.retry = true
		}
		return err
	}
	// Tracked for KILL QUERY while the shard runs it (session/kill.go).
	tracked := s.Track(conn)
	if tracked != nil {
		err = tracked
	} else if !ok {
		err = fmt.Errorf("shardproxy: lane: a prepared statement's text has an unresolved table: %w", errNotLane)
	} else if text != "" {
		err = conn.ExecStmtRaw(text, s.DBOn(q.Shard), s.State, lc.stmtParams, lc.stmtArgs, s.srv.cfg.QueryTimeout, lc)
		if errors.Is(err, backend.ErrPrepare) {
			lc.noPrepare = true
		}
	} else {
		_, err = conn.QueryRaw(q.SQL, s.DBOn(q.Shard), s.State, s.srv.cfg.QueryTimeout, lc)
	}
	if tracked == nil {
		s.Untrack(conn)
	}
	if err == nil && lc.warns > 0 {
		s.CollectWarnings(conn)
	}
	if lc.cursorOpen && err == nil && !conn.Broken() {
		// The cursor lives on the connection: the session keeps it.
		s.keepCursor(lc.stmtID, conn, conn.LastStmt(), true)
	} else {
		t.Pool.Put(conn)
	}
	if t.Done != nil {
		t.Done(err)
	}
	if err != nil && read && !lc.flushed && !lc.done && backend.IsConnError(err) {
		// Nothing reached the client: the ordinary path runs it again.
		lc.retry = true
	}
	return err
}

// errPipeTooBig: a pipelined statement's answer grew past laneFlushAt.
var errPipeTooBig = errors.New("shardproxy: answer too large for a pipeline")

// pipeHeadMax is how long a statement may hold a pipeline's head (read its
// answer while the others wait). A plan whose statements held it longer,
// or had warnings (they then run again on a connection of their own: twice
// the work), pipeMissMax times in a row stops using pipelines. Not at
// once, nor after that many over its life: one run is slow for reasons not
// its own (a stall of the server or of the proxy's machine, a GC pause),
// or warns for its values.
const (
	pipeHeadMax = 20 * time.Millisecond
	pipeMissMax = 4
)

// runPiped runs the lane's query (text: a prepared statement's, its tables
// resolved; "" for q.SQL as text) on a pipeline of t's pool (backend
// pipe.go). piped false: no pipeline took it, nothing was sent. A
// pipelined statement that cannot be answered as its turn ended (its
// pipeline failed, its answer grew too large, it had warnings, which the
// next statement on the pipeline has cleared, its table was locked, which
// a pipeline does not wait for) runs again on the ordinary path, as a read
// whose connection failed does: it is a read of one row.
func (lc *laneCursor) runPiped(t backend.Target, q engine.ShardQuery, text string) (err error, piped bool) {
	s := lc.s
	if lc.cursor {
		// A cursor lives on the connection that opened it, which the
		// session keeps until its last fetch: not a pipeline's.
		return nil, false
	}
	if s.pipeTurn == nil {
		s.pipeTurn = backend.NewPipeTurn()
	}
	if s.Killed() {
		err := session.ErrQueryInterrupted()
		if t.Done != nil {
			t.Done(err) // the route's lease ends, as on the ordinary path
		}
		return err, true
	}
	lc.piped = true
	if text != "" {
		err = t.Pool.PipeStmt(text, s.DBOn(q.Shard), s.State, lc.stmtParams, lc.stmtArgs, s.srv.cfg.QueryTimeout, s.pipeTurn, lc)
	} else {
		err = t.Pool.PipeQuery(q.SQL, s.DBOn(q.Shard), s.State, s.srv.cfg.QueryTimeout, s.pipeTurn, lc)
	}
	lc.piped = false
	if errors.Is(err, backend.ErrPipelineFull) {
		return nil, false
	}
	if t.Done != nil {
		t.Done(err)
	}
	switch cp := lc.cp; {
	case errors.Is(err, errPipeTooBig):
		cp.pipeOff.Store(true)
	case s.pipeTurn.Head > pipeHeadMax, err == nil && lc.warns > 0:
		if cp.pipeMiss.Add(1) >= pipeMissMax {
			cp.pipeOff.Store(true)
		}
	case cp.pipeMiss.Load() != 0:
		cp.pipeMiss.Store(0)
	}
	switch {
	case errors.Is(err, backend.ErrPrepare):
		lc.noPrepare = true
	case err == nil && lc.warns > 0, errors.Is(err, errPipeTooBig), errors.Is(err, backend.ErrPipeWouldWait), err != nil && backend.IsConnError(err):
		lc.f.Out = lc.f.Out[:0]
		lc.done, lc.retry, lc.seq, lc.rows, lc.warns = false, true, 1, 0, 0
		return errNotLane, true
	}
	return err, true
}

// Packet implements backend.Sink: the shard's packets become the client's.
func (lc *laneCursor) Packet(p *backend.Packet) error {
	switch p.Kind {
	case backend.PacketColumnCount, backend.PacketColumn:
		lc.emit(p.Payload)
	case backend.PacketColumnsDone:
		if lc.cursor {
			lc.colsEOF = !lc.f.DeprecateEOF()
		} else if !lc.f.DeprecateEOF() {
			lc.emitEOF(0)
		}
	case backend.PacketRow:
		if lc.colsEOF {
			lc.colsEOF = false
			lc.emitEOF(0)
		}
		if !p.Cont {
			lc.rows++
		}
		lc.emit(p.Payload)
		if len(lc.f.Out) >= laneFlushAt {
			if lc.piped {
				// Others wait behind it: give up the pipeline (the rest of
				// the answer stays unread, so its connection is closed) and
				// run the statement again on a connection of its own.
				return errPipeTooBig
			}
			lc.flushed = true
			err := lc.f.WriteLane(lc.f.Out)
			lc.f.Out = lc.f.Out[:0]
			return err
		}
	case backend.PacketEnd:
		lc.done, lc.warns = true, p.Warnings
		if lc.cursor {
			lc.cursorEnd(p)
			break
		}
		if lc.f.DeprecateEOF() {
			lc.emitOK(mysql.EOFPacket, 0, 0, p.Warnings)
		} else {
			lc.emitEOF(p.Warnings)
		}
	case backend.PacketOK:
		lc.done, lc.warns = true, p.Warnings
		lc.emitOK(mysql.OKPacket, p.Affected, p.InsertID, p.Warnings)
	case backend.PacketErr:
		lc.done = true
		lc.emit(p.Payload)
	}
	return nil
}

// cursorEnd appends the end of the answer to an execute that asked for a
// cursor: with the shard's SERVER_STATUS_CURSOR_EXISTS, one EOF (or OK)
// after the columns; without (no cursor opened), the columns' EOF and the
// end of the rows.
func (lc *laneCursor) cursorEnd(p *backend.Packet) {
	o := pktOut{f: lc.f, seq: lc.seq}
	st := lc.status | p.Status&relayedStatus
	lc.cursorOpen = p.Status&mysql.ServerStatusCursorExists != 0
	if lc.colsEOF {
		lc.colsEOF = false
		if !lc.cursorOpen {
			o.eof(lc.status, 0)
		}
	}
	o.end(st, p.Warnings)
	lc.seq = o.seq
}

// emit appends one packet for the client.
func (lc *laneCursor) emit(payload []byte) {
	n := len(payload)
	lc.f.Out = append(lc.f.Out, byte(n), byte(n>>8), byte(n>>16), lc.seq)
	lc.f.Out = append(lc.f.Out, payload...)
	lc.seq++
}

func (lc *laneCursor) emitEOF(warnings uint16) {
	lc.f.Out = append(lc.f.Out, 5, 0, 0, lc.seq, mysql.EOFPacket, byte(warnings), byte(warnings>>8), byte(lc.status), byte(lc.status>>8))
	lc.seq++
}

// emitOK appends an OK packet (header OKPacket, or EOFPacket at the end of
// rows under CLIENT_DEPRECATE_EOF) as the listener writes it: no info, no
// session state.
func (lc *laneCursor) emitOK(header byte, affected, insertID uint64, warnings uint16) {
	out := append(lc.f.Out, 0, 0, 0, lc.seq, header)
	at := len(out) - 5
	out = wire.AppendLenEnc(out, affected)
	out = wire.AppendLenEnc(out, insertID)
	out = append(out, byte(lc.status), byte(lc.status>>8), byte(warnings), byte(warnings>>8))
	n := len(out) - at - 4
	out[at], out[at+1], out[at+2] = byte(n), byte(n>>8), byte(n>>16)
	lc.f.Out = out
	lc.seq++
}

// emitErr appends the ERR packet of an error, as the listener writes it.
func (lc *laneCursor) emitErr(err error) {
	se := mysqlerr.From(err)
	msg := se.Message
	if len(msg) > 1<<16 {
		msg = msg[:1<<16]
	}
	lc.f.Out = wire.AppendErr(lc.f.Out, lc.seq, se.Num, se.State, msg)
	lc.seq++
}

// laneExecute runs a COM_STMT_EXECUTE (data: the packet after its command
// byte) in the fast lane: the shard runs the statement as a prepared
// statement of its own, with the client's parameters as they came, and its
// binary rows go back as they are. The parameters are decoded only to route
// the statement, as the listener would have decoded them.
func (s *Session) LaneExecute(f *wire.Conn, data []byte) (handled bool, err error) {
	if s.Conn == nil || len(data) < 9 {
		return false, nil
	}
	id := binary.LittleEndian.Uint32(data)
	if len(s.cursors) > 0 {
		// Executing a statement closes its cursor, as on MariaDB.
		s.CloseCursor(id)
	}
	prep, p := s.Conn.PrepareData[id], s.prepared[id]
	if p != nil && p.call {
		return s.relayCall(f, data, p)
	}
	if data[4]&cursorReadOnly != 0 && p != nil && !s.laneReady() {
		return s.relayCursor(f, data, p)
	}
	if !s.laneReady() || prep == nil || p == nil || p.query != prep.PrepareStmt || len(prep.BindVars) != 0 || int(prep.ParamsCount) != p.params {
		return false, nil
	}
	// A point select of a cached table is the cache's: answered from its
	// packets on a hit, left to the ordinary path (which fills) otherwise.
	// A cursor is not: its rows come by COM_STMT_FETCH.
	cached := p.cp != nil && p.cp.point != nil && data[4]&cursorReadOnly == 0
	if cached && (!p.cp.point.Usable() || p.cp.needs != nil) || !cached && p.laneText == "" {
		return false, nil
	}
	if data[4]&^cursorReadOnly != 0 || binary.LittleEndian.Uint32(data[5:]) != 1 {
		return false, nil // another cursor type, or an array of parameter sets
	}
	n := p.params
	pos := 9
	var nulls, types []byte
	bound := false
	if n > 0 {
		nb := (n + 7) / 8
		if len(data) < pos+nb+1 {
			return false, nil
		}
		nulls = data[pos : pos+nb]
		pos += nb
		bound = data[pos] == 1
		pos++
		if bound {
			if len(data) < pos+2*n {
				return false, nil
			}
			types = data[pos : pos+2*n]
			pos += 2 * n
		} else if types = p.rawTypes; len(types) != 2*n {
			return false, nil
		}
	}
	bv, ok := s.laneParams(data[pos:], nulls, types, n)
	if !ok {
		return false, nil
	}
	args := data[4:]
	if bound {
		p.rawTypes = append(p.rawTypes[:0], types...)
		for i := 0; i < n; i++ {
			// As the listener would have noted them (laneParams checked them).
			t, _ := wire.ParamType(types[2*i], types[2*i+1])
			prep.ParamsType[i] = int32(t)
		}
	} else if n > 0 {
		// The shard's statement may have been prepared for another session
		// that bound other types: always send them.
		a := append(s.fp.args[:0], data[4:9]...)
		a = append(a, nulls...)
		a = append(a, 1)
		a = append(a, types...)
		a = append(a, data[pos:]...)
		s.fp.args, args = a, a
	}
	for k, v := range p.fixed {
		bv[k] = v
	}
	if cached {
		return s.laneCached(f, p.cp, bv, p.query, true)
	}
	s.lane = laneCursor{s: s, f: f, seq: 1, status: s.StatusFlags(), stmtText: p.laneText, stmtParams: n, stmtArgs: args,
		stmtID: id, cursor: data[4]&cursorReadOnly != 0}
	s.Hint.ForcePrimary = p.primaryHint
	return s.runLane(f, p.cp, bv, p.query, p)
}

// laneParams decodes a COM_STMT_EXECUTE's parameter values into bind
// variables exactly as the listener does (vitess parseStmtArgs, with the
// unsigned flag that Conn fixes for it: paramType), in the session's
// reused buffers; values point into the packet. ok is false for
// a packet the listener should judge, and for dates and times, which take
// the ordinary path.
func (s *Session) laneParams(data, nulls, types []byte, n int) (map[string]*querypb.BindVariable, bool) {
	fs := &s.fp
	if fs.bv == nil {
		fs.bv = make(map[string]*querypb.BindVariable, 8)
	} else {
		clear(fs.bv)
	}
	if cap(fs.vals) < n {
		fs.vals = make([]querypb.BindVariable, 0, n+4)
	}
	if cap(fs.arena) < 24*n {
		fs.arena = make([]byte, 0, 24*n+64)
	}
	// Sized so that appending never moves them: values point into both.
	bvs, arena := fs.vals[:0], fs.arena[:0]
	pos := 0
	for i := 0; i < n; i++ {
		name := wire.ParamName(i)
		if nulls[i/8]&(1<<(i%8)) != 0 {
			fs.bv[name] = sqltypes.NullBindVariable
			continue
		}
		typ, err := wire.ParamType(types[2*i], types[2*i+1])
		if err != nil {
			return nil, false
		}
		var v []byte
		switch typ {
		case sqltypes.Int8, sqltypes.Uint8, sqltypes.Int16, sqltypes.Uint16, sqltypes.Int24, sqltypes.Uint24,
			sqltypes.Int32, sqltypes.Uint32, sqltypes.Int64, sqltypes.Uint64:
			size := 8
			switch typ {
			case sqltypes.Int8, sqltypes.Uint8:
				size = 1
			case sqltypes.Int16, sqltypes.Uint16:
				size = 2
			case sqltypes.Int24, sqltypes.Uint24, sqltypes.Int32, sqltypes.Uint32:
				size = 4
			}
			if len(data) < pos+size {
				return nil, false
			}
			var u uint64
			for j := size - 1; j >= 0; j-- {
				u = u<<8 | uint64(data[pos+j])
			}
			pos += size
			a := len(arena)
			switch typ {
			case sqltypes.Int8:
				arena, typ = strconv.AppendInt(arena, int64(int8(u)), 10), sqltypes.Int64
			case sqltypes.Int16:
				arena, typ = strconv.AppendInt(arena, int64(int16(u)), 10), sqltypes.Int64
			case sqltypes.Int24, sqltypes.Int32:
				arena, typ = strconv.AppendInt(arena, int64(int32(u)), 10), sqltypes.Int64
			case sqltypes.Int64:
				arena = strconv.AppendInt(arena, int64(u), 10)
			default:
				arena, typ = strconv.AppendUint(arena, u, 10), sqltypes.Uint64
			}
			v = arena[a:len(arena):len(arena)]
		case sqltypes.Float32, sqltypes.Float64:
			size := 8
			if typ == sqltypes.Float32 {
				size = 4
			}
			if len(data) < pos+size {
				return nil, false
			}
			var f float64
			if size == 4 {
				f = float64(math.Float32frombits(binary.LittleEndian.Uint32(data[pos:])))
			} else {
				f = math.Float64frombits(binary.LittleEndian.Uint64(data[pos:]))
			}
			pos += size
			v, typ = sqltypes.NewFloat64(f).Raw(), sqltypes.Float64
		case sqltypes.Decimal, sqltypes.Text, sqltypes.Blob, sqltypes.VarChar, sqltypes.VarBinary, sqltypes.Char,
			sqltypes.Bit, sqltypes.Enum, sqltypes.Set, sqltypes.Geometry, sqltypes.Binary, sqltypes.TypeJSON, sqltypes.Vector:
			l, p, ok := wire.ReadLenEncInt(data, pos)
			if !ok || uint64(len(data)-p) < l {
				return nil, false
			}
			v = data[p : p+int(l) : p+int(l)]
			pos = p + int(l)
		default:
			return nil, false
		}
		bvs = append(bvs, querypb.BindVariable{Type: typ, Value: v})
		fs.bv[name] = &bvs[len(bvs)-1]
	}
	if pos != len(data) {
		return nil, false // bytes the shard would misread: the listener judges
	}
	fs.vals, fs.arena = bvs, arena
	return fs.bv, true
}

// laneStmtText is a prepared statement's SQL for the shard, with the
// client's parameters v1..vN as ?, in that order, and the statement's own
// literals in place; "" when the plan's SQL does not have each parameter
// exactly once and in order (then the statement runs as text).
func laneStmtText(f *engine.Facts, fixed map[string]*querypb.BindVariable, n int) string {
	pq := f.Query
	var tables map[string]sqlparser.Encodable
	if f.Sub != nil {
		// Each execution's physical tables go in at run.
		tables = f.Sub.LaneMarks()
	}
	if pq == nil {
		return ""
	}
	bv := make(map[string]*querypb.BindVariable, len(fixed)+n)
	for k, v := range fixed {
		bv[k] = v
	}
	marks := make([]string, n)
	for i := range marks {
		marks[i] = "/*strata-param-" + strconv.Itoa(i+1) + "*/"
		bv[wire.ParamName(i)] = &querypb.BindVariable{Type: querypb.Type_EXPRESSION, Value: []byte(marks[i])}
	}
	sql, err := pq.GenerateQuery(bv, tables)
	if err != nil || strings.Contains(sql, "?") {
		return ""
	}
	var b strings.Builder
	at := 0
	for _, m := range marks {
		i := strings.Index(sql[at:], m)
		if i < 0 || strings.Count(sql, m) != 1 {
			return ""
		}
		b.WriteString(sql[at : at+i])
		b.WriteByte('?')
		at += i + len(m)
	}
	b.WriteString(sql[at:])
	if strings.Contains(sql[at:], "/*strata-param-") {
		return ""
	}
	return b.String()
}

// typesMatch reports whether the raw parameter types the lane kept are
// those the listener holds for the statement (an execute that took the
// ordinary path may have bound others).
func typesMatch(raw []byte, types []int32) bool {
	if len(raw) != 2*len(types) {
		return false
	}
	for i, t := range types {
		rt, err := wire.ParamType(raw[2*i], raw[2*i+1])
		if err != nil || int32(rt) != t {
			return false
		}
	}
	return true
}
