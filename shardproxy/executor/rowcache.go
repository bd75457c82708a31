package executor

import (
	"context"
	"regexp"
	"strings"
	"time"

	"vitess.io/vitess/go/mysql"

	"vitess.io/vitess/go/sqltypes"
	querypb "vitess.io/vitess/go/vt/proto/query"

	"github.com/strata-db/strata/shardproxy/engine"
	"github.com/strata-db/strata/shardproxy/rowcache"
	"github.com/strata-db/strata/shardproxy/wire"
)

// This file (rowcache.go) is the hot-row cache's part of the statement path (package
// rowcache does the work): point selects of cached tables are answered
// from it outside transactions, filled from the primaries; what a write
// touched is invalidated after its backend OK and before the client's (at
// the transaction's end inside one); SHOW STRATA CACHE, HOTKEYS and BINLOG
// are answered here.

// cachedRead answers a point select of a cached table from the cache when
// the session may use it: outside a transaction, with no reserved
// connection (a temporary table could shadow the cached one). A miss runs
// the plan on the shard's primary. ok is false when the cache does not
// apply.
func (s *Session) cachedRead(ctx context.Context, cp *cachedPlan, vc engine.VCursor, bv map[string]*querypb.BindVariable) (res *sqltypes.Result, ok bool, err error) {
	if cp.point == nil || s.InTx() || s.Tx != nil || s.OutsideTx || len(s.Reserved) > 0 || s.vc != nil {
		return nil, false, nil
	}
	p, ok := cp.point.Bind(bv, s.State.Key())
	if !ok {
		return nil, false, nil
	}
	res, err = s.srv.rc.Get(ctx, p, s.cacheLoad(cp, vc, bv))
	return res, true, err
}

// cacheLoad is the loader of a cached point select: the plan on the
// shard's primary. Fills come from the primary, so a fill is never older
// than the version it took (rowcache). The cache waits for this load
// whatever happens to the statement's context, so the session is not used
// after the statement returns.
func (s *Session) cacheLoad(cp *cachedPlan, vc engine.VCursor, bv map[string]*querypb.BindVariable) func(context.Context) (*sqltypes.Result, error) {
	return func(ctx context.Context) (*sqltypes.Result, error) {
		prev := s.Hint.ForcePrimary
		s.Hint.ForcePrimary = true
		defer func() { s.Hint.ForcePrimary = prev }()
		return cp.plan.Execute(ctx, vc, bv)
	}
}

// laneCached answers a point select of a cached table in the fast lane
// (rowcache.Packets, or on a miss rowcache.Load, which fills the cache):
// the entry's packets go out as they are but for the sequence ids and this
// session's status flags and warning count, with binary rows encoded from
// the entry's values for a prepared statement (binaryRows). The caller
// checked that the session may use the lane, which is stricter than
// cachedRead's conditions. handled false leaves the statement to the
// ordinary path (an answer the lane cannot encode; a load it did is in
// the cache then).
func (s *Session) laneCached(f *wire.Conn, cp *cachedPlan, bv map[string]*querypb.BindVariable, text string, binaryRows bool) (handled bool, err error) {
	p, ok := cp.point.Bind(bv, s.State.Key())
	if !ok {
		return false, nil
	}
	start := time.Now()
	pk, ok := s.srv.rc.Packets(p)
	if ok && binaryRows && !pk.Binary {
		return false, nil
	}
	var xerr error
	if !ok {
		if binaryRows && !s.srv.rc.BinaryEncodable(p) {
			return false, nil
		}
		s.ClearWarnings()
		s.Running(text, start)
		pk, ok, xerr = s.laneLoad(cp, p, bv, text)
		if !ok && xerr == nil {
			s.Running("", time.Time{})
			return false, nil
		}
	} else {
		s.ClearWarnings()
	}
	lc := &s.lane
	*lc = laneCursor{s: s, f: f, seq: 1, status: s.StatusFlags()}
	f.Out = f.Out[:0]
	if xerr != nil {
		s.RecordError(xerr)
		lc.emitErr(xerr)
		return s.laneSend(f, text, start, xerr)
	}
	f.Out, lc.seq = rowcache.AppendPackets(f.Out, pk.Columns, lc.seq)
	if !f.DeprecateEOF() {
		lc.emitEOF(0)
	}
	if binaryRows {
		if f.Out, lc.seq, ok = rowcache.AppendBinaryRows(f.Out, pk.Result, lc.seq); !ok {
			// Not expected (the shape's types are encodable): the
			// listener encodes it, from the cache.
			f.Out = f.Out[:0]
			s.Running("", time.Time{})
			return false, nil
		}
	} else {
		f.Out, lc.seq = rowcache.AppendPackets(f.Out, pk.Rows, lc.seq)
	}
	// A load's warnings are the session's now; a hit has none.
	if w := s.WarningCount(); f.DeprecateEOF() {
		lc.emitOK(mysql.EOFPacket, 0, 0, w)
	} else {
		lc.emitEOF(w)
	}
	s.RowCount = -1
	s.FoundRows = uint64(pk.NRows)
	if !binaryRows {
		s.srv.fastHits.Add(1)
	}
	return s.laneSend(f, text, start, nil)
}

// laneLoad is a miss of laneCached: the cache loads the row (shared with
// every session missing it), and the answer comes back as packets.
func (s *Session) laneLoad(cp *cachedPlan, p rowcache.Point, bv map[string]*querypb.BindVariable, text string) (pk rowcache.Packets, ok bool, err error) {
	defer s.srv.guard(s.ID, "statement", text, &err)
	return s.srv.rc.Load(context.Background(), p, s.cacheLoad(cp, s, bv))
}

// laneSend writes the answer laneCached built.
func (s *Session) laneSend(f *wire.Conn, text string, start time.Time, xerr error) (bool, error) {
	s.finish(kindSelect, text, start, xerr)
	s.srv.laneHits.Add(1)
	err := f.WriteLane(f.Out)
	if cap(f.Out) > laneFlushAt {
		f.Out = nil
	}
	return true, err
}

// noteWrite invalidates what a write touched, whether it succeeded or not
// (a failed write may have happened): now outside a transaction, at its end
// inside one.
func (s *Session) noteWrite(cp *cachedPlan, bv map[string]*querypb.BindVariable) {
	if s.srv.rc == nil || cp.ast == nil {
		return
	}
	inv := s.srv.rc.Writes(cp.ast, s.DB, bv, s.State.Key())
	if inv.Empty() {
		return
	}
	if (s.InTx() || s.Tx != nil) && !s.OutsideTx {
		s.pendingInv.Merge(inv)
		return
	}
	s.srv.rc.Invalidate(inv)
}

// endTx ends the transaction (session.EndTx) and then applies what its
// writes invalidate, before the client gets the OK.
func (s *Session) endTx(commit bool) error {
	err := s.EndTx(commit)
	if !s.pendingInv.Empty() {
		s.srv.rc.Invalidate(s.pendingInv)
		s.pendingInv = rowcache.Invalidation{}
	}
	return err
}

var cacheShowRE = regexp.MustCompile(`(?i)^\s*show\s+strata\s+(cache|hotkeys|binlog)\s*;?\s*$`)

// cacheStatement answers SHOW STRATA CACHE, HOTKEYS and BINLOG (ok true);
// without a cache they have no rows.
func (s *Session) cacheStatement(sql string) (*sqltypes.Result, bool) {
	m := cacheShowRE.FindStringSubmatch(sql)
	if m == nil {
		return nil, false
	}
	switch strings.ToLower(m[1]) {
	case "cache":
		return s.srv.rc.ShowCache(), true
	case "hotkeys":
		return s.srv.rc.ShowHotKeys(), true
	default:
		return s.srv.rc.ShowBinlog(), true
	}
}
