package fleet

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/go-sql-driver/mysql"
	"vitess.io/vitess/go/mysql/sqlerror"
)

// checkLoop checks one server every CheckInterval, or at once when kicked.
func (f *Fleet) checkLoop(s *server) {
	defer f.wg.Done()
	t := time.NewTicker(f.cfg.CheckInterval)
	defer t.Stop()
	for {
		select {
		case <-f.stop:
			return
		case <-t.C:
		case <-s.kick:
		}
		reports := s.reports.Load()
		began := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), f.cfg.CheckTimeout)
		err := f.probe(ctx, s)
		cancel()
		if err == nil {
			for c := s.cleared.Load(); c < reports && !s.cleared.CompareAndSwap(c, reports); c = s.cleared.Load() {
			}
		}
		s.record(err, began)
	}
}

// probe checks one server: on every server it reads read_only and the GTID
// positions, and that read alone says whether the server answers; on the
// primary it then writes the heartbeat; on replicas it reads the heartbeat
// row (for lag) and SHOW SLAVE STATUS.
func (f *Fleet) probe(ctx context.Context, s *server) error {
	sh := s.sh
	primary := s.role() == RolePrimary
	var ro int
	var slavePos, binlogPos string
	err := s.db.QueryRowContext(ctx, "SELECT @@global.read_only, @@global.gtid_slave_pos, @@global.gtid_binlog_pos").Scan(&ro, &slavePos, &binlogPos)
	if err != nil {
		return fmt.Errorf("check: %w", err)
	}
	sp, err1 := ParsePosition(slavePos)
	bp, err2 := ParsePosition(binlogPos)
	if err := errors.Join(err1, err2); err != nil {
		return fmt.Errorf("check: %w", err)
	}
	// A replica has applied what its SQL thread applied: gtid_slave_pos,
	// the position MASTER_GTID_WAIT waits on. Its binlog may also hold a
	// local transaction of its own (a DBA's DDL on the replica), logged with
	// its server id and the domain's next seq, which would make it look as
	// far as a primary write it has not applied. The primary's own writes
	// are only in its binlog.
	pos := sp
	if primary {
		pos = sp.Merge(bp)
	}
	s.pos.Store(&pos)
	s.mu.Lock()
	s.readOnly = ro != 0
	fence := s.needsFence
	repoint := s.needsRepoint && !primary && time.Since(s.repointFailed) >= repointRetry
	s.mu.Unlock()

	if fence {
		fctx, cancel := context.WithTimeout(f.life, f.cfg.CheckTimeout)
		f.fenceReturned(fctx, s)
		cancel()
	} else if repoint {
		f.repointReturned(s)
	}
	if primary {
		// The heartbeat is a write: on a live primary it may wait for a lock
		// (LOCK TABLES, a backup's FLUSH TABLES WITH READ LOCK) or an fsync on
		// a loaded machine. That says nothing about whether the primary
		// answers, so it has its own budget and its outcome does not count:
		// ejecting a slow primary fails every write while it is up.
		sh.mu.Lock()
		switching := sh.switching
		sh.mu.Unlock()
		if !switching {
			bctx, cancel := context.WithTimeout(f.life, f.cfg.CheckTimeout)
			if err := f.writeBeat(bctx, sh, s); err != nil {
				f.log.Debug("fleet: heartbeat not written", "shard", sh.name, "server", s.cfg.Name, "err", err)
			}
			cancel()
		}
		s.lagKnown.Store(true)
		s.behindSince.Store(0)
		f.m.lag.WithLabelValues(sh.name, s.cfg.Name).Set(0)
		return nil
	}
	// Their own budget, not what the health read left of it.
	rctx, cancel := context.WithTimeout(f.life, f.cfg.CheckTimeout)
	defer cancel()
	if err := f.readBeat(rctx, s); err != nil {
		return err
	}
	return f.readReplication(rctx, s)
}

// record applies the outcome of a check that began at began: health,
// ejection, restoration. The silence that ejects is measured up to the
// start of the failed check, not to its end: when the proxy itself stalls
// (a GC pause, CPU throttling, a loaded machine) the check in flight
// overruns its deadline and fails, and measuring to its end would eject
// every server at once for the proxy's own stall. A server that is really
// gone fails the next checks too.
func (s *server) record(err error, began time.Time) {
	f := s.f
	now := time.Now()
	f.m.outstanding.WithLabelValues(s.sh.name, s.cfg.Name).Set(float64(s.outstanding.Load()))
	s.mu.Lock()
	if err == nil {
		s.lastOK, s.failures, s.lastErr = now, 0, ""
		s.mu.Unlock()
		// Only this server's check goroutine records its checks, so a
		// load, then a store. The listeners first, then routing: a proxy
		// that stopped using the server (ServerEjected) takes it back
		// before queries are routed to it again.
		if !s.healthy.Load() {
			f.emit(Event{Kind: ServerRestored, Shard: s.sh.name, Server: s.cfg.Name})
			s.healthy.Store(true)
			f.m.healthy.WithLabelValues(s.sh.name, s.cfg.Name).Set(1)
			f.log.Info("fleet: server healthy", "shard", s.sh.name, "server", s.cfg.Name, "role", s.role())
		}
		return
	}
	s.failures++
	s.lastErr = err.Error()
	eject := s.failures >= f.cfg.FailuresToEject || began.Sub(s.lastOK) >= f.cfg.EjectAfter
	if eject && s.healthy.Load() {
		s.ejections++
	}
	s.mu.Unlock()
	if eject && s.healthy.Swap(false) {
		f.m.healthy.WithLabelValues(s.sh.name, s.cfg.Name).Set(0)
		f.m.ejections.WithLabelValues(s.sh.name, s.cfg.Name).Inc()
		f.log.Warn("fleet: server ejected", "shard", s.sh.name, "server", s.cfg.Name, "role", s.role(), "err", err)
		f.emit(Event{Kind: ServerEjected, Shard: s.sh.name, Server: s.cfg.Name})
	}
}

// ensureMeta creates the heartbeat table on a primary. It is created there
// only, and reaches the replicas by replication: a write on a replica would
// be an errant transaction.
func (f *Fleet) ensureMeta(ctx context.Context, p *server) error {
	conn, err := p.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	var ro int
	if err := conn.QueryRowContext(ctx, "SELECT @@global.read_only").Scan(&ro); err != nil {
		return err
	}
	if ro != 0 {
		return fmt.Errorf("%s is read_only", p.cfg.Name)
	}
	for _, q := range []string{
		"CREATE DATABASE IF NOT EXISTS " + f.cfg.MetaSchema,
		"CREATE TABLE IF NOT EXISTS " + f.cfg.MetaSchema + ".heartbeat (" +
			"writer VARCHAR(64) NOT NULL PRIMARY KEY, seq BIGINT NOT NULL, ts TIMESTAMP(6) NOT NULL)",
		// Rows of proxies long gone are only clutter.
		"DELETE FROM " + f.cfg.MetaSchema + ".heartbeat WHERE ts < NOW(6) - INTERVAL 7 DAY",
	} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}

// writeBeat writes the next heartbeat on the shard's primary p and, when it
// was written, remembers when. The write is conditional on read_only being
// off: the fleet's account may write through read_only (MariaDB's root
// does), and a heartbeat on a fenced or demoted server would be an errant
// transaction.
func (f *Fleet) writeBeat(ctx context.Context, sh *shard, p *server) error {
	seq := f.hbSeq.Add(1)
	at := f.now()
	// The lock waits end on the server too, within a second: a statement
	// whose client gave up keeps waiting there otherwise (a day for a table
	// lock), and a check every interval would pile them up.
	res, err := p.db.ExecContext(ctx, "SET STATEMENT lock_wait_timeout = 1, innodb_lock_wait_timeout = 1 FOR "+
		"REPLACE INTO "+f.cfg.MetaSchema+".heartbeat (writer, seq, ts) SELECT ?, ?, NOW(6) FROM DUAL WHERE @@global.read_only = 0", f.hbID, seq)
	if err != nil {
		var me *mysql.MySQLError
		if errors.As(err, &me) && me.Number == 1146 { // no table: a new primary
			if err := f.ensureMeta(ctx, p); err != nil {
				return err
			}
			return nil
		}
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil
	}
	sh.hbMu.Lock()
	if len(sh.beats) == 0 || sh.beats[len(sh.beats)-1].seq < seq {
		sh.beats = append(sh.beats, beat{seq: seq, at: at})
		if len(sh.beats) > maxBeats {
			sh.beats = append(sh.beats[:0], sh.beats[len(sh.beats)-maxBeats/2:]...)
		}
	}
	sh.hbMu.Unlock()
	return nil
}

// readBeat reads the replica's copy of this fleet's heartbeat row and sets
// its lag: the age of the oldest heartbeat written that it has not applied.
func (f *Fleet) readBeat(ctx context.Context, s *server) error {
	var seq int64 = -1
	err := s.db.QueryRowContext(ctx, "SELECT seq FROM "+f.cfg.MetaSchema+".heartbeat WHERE writer = ?", f.hbID).Scan(&seq)
	var me *mysql.MySQLError
	switch {
	case err == nil, errors.Is(err, sql.ErrNoRows):
	case errors.As(err, &me) && (me.Number == uint16(sqlerror.ERNoSuchTable) || me.Number == uint16(sqlerror.ERBadDb)):
		// The table has not replicated here yet: behind every beat.
	default:
		return fmt.Errorf("heartbeat: %w", err)
	}
	sh := s.sh
	sh.hbMu.Lock()
	i := sort.Search(len(sh.beats), func(i int) bool { return sh.beats[i].seq > seq })
	var behind int64
	if i < len(sh.beats) {
		behind = sh.beats[i].at
	}
	sh.hbMu.Unlock()
	s.behindSince.Store(behind)
	if now := f.now(); behind > 0 && behind < now {
		s.checkedLag.Store(now - behind)
	} else {
		s.checkedLag.Store(0)
	}
	s.lagKnown.Store(true)
	lag, _ := s.lag(f.now())
	f.m.lag.WithLabelValues(sh.name, s.cfg.Name).Set(lag.Seconds())
	return nil
}

// readReplication reads SHOW SLAVE STATUS.
func (f *Fleet) readReplication(ctx context.Context, s *server) error {
	st, err := slaveStatus(ctx, s.db)
	if err != nil {
		return fmt.Errorf("slave status: %w", err)
	}
	s.mu.Lock()
	s.replicating = st != nil
	if st != nil {
		s.ioRunning = st["Slave_IO_Running"] == "Yes"
		s.ioStopped = st["Slave_IO_Running"] == "No"
		s.sqlRunning = st["Slave_SQL_Running"] == "Yes"
		s.sqlDelay, _ = strconv.Atoi(st["SQL_Delay"])
		s.ioPos, _ = ParsePosition(st["Gtid_IO_Pos"])
		s.masterAddr = st["Master_Host"] + ":" + st["Master_Port"]
		s.replErr = st["Last_SQL_Error"]
		if s.replErr == "" {
			s.replErr = st["Last_IO_Error"]
		}
	} else {
		s.ioRunning, s.sqlRunning, s.ioPos, s.replErr, s.masterAddr = false, false, nil, "", ""
		s.ioStopped = true
	}
	s.mu.Unlock()
	return nil
}

// slaveStatus returns SHOW SLAVE STATUS as column -> value, nil when the
// server is not a replica.
func slaveStatus(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}) (map[string]string, error) {
	rows, err := q.QueryContext(ctx, "SHOW SLAVE STATUS")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	if !rows.Next() {
		return nil, rows.Err()
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return nil, err
	}
	out := make(map[string]string, len(cols))
	for i, c := range cols {
		out[c] = vals[i].String
	}
	return out, rows.Err()
}

// superviseLoop watches each shard's primary: it records since when it is
// down, adopts a primary that another proxy promoted, and promotes a
// replica when AutoPromoteAfter is set and the primary stays down that long.
func (f *Fleet) superviseLoop() {
	defer f.wg.Done()
	t := time.NewTicker(f.cfg.CheckInterval)
	defer t.Stop()
	for {
		select {
		case <-f.stop:
			return
		case <-t.C:
		}
		for _, sh := range f.order {
			f.supervise(sh)
		}
	}
}

func (f *Fleet) supervise(sh *shard) {
	p := sh.primary.Load()
	up := p.healthy.Load()
	sh.mu.Lock()
	switch {
	case up:
		sh.downSince = time.Time{}
	case sh.downSince.IsZero():
		sh.downSince = time.Now()
	}
	down := sh.downSince
	switching := sh.switching
	sh.mu.Unlock()
	if switching || !sh.op.TryLock() {
		return
	}
	defer sh.op.Unlock()
	if p != sh.primary.Load() {
		return
	}
	if up {
		p.mu.Lock()
		ro := p.readOnly
		p.mu.Unlock()
		if ro {
			f.adopt(sh, p)
		}
		return
	}
	// The primary is down. If another proxy promoted a replica meanwhile,
	// follow it: otherwise writes here fail until the old primary returns,
	// then go to it (writable again after a restart) until someone fences
	// it, while the other proxy writes to the new one; and an automatic
	// promotion here could pick another replica than it did.
	if f.adopt(sh, p) {
		p.mu.Lock()
		p.needsFence = true
		p.mu.Unlock()
		return
	}
	if f.cfg.AutoPromoteAfter > 0 && time.Since(down) >= f.cfg.AutoPromoteAfter {
		ctx, cancel := context.WithTimeout(f.life, f.cfg.CatchupTimeout+30*time.Second)
		defer cancel()
		if _, err := f.failoverLocked(ctx, sh, "", "automatic"); err != nil {
			f.log.Error("fleet: automatic promotion failed", "shard", sh.name, "err", err)
		}
	}
}

// adopt follows a change of primary made elsewhere (another proxy's
// switchover or failover): when the primary turned read_only or is down,
// and exactly one other server is writable and not replicating, that one
// is the primary now. It reports whether it changed the primary.
func (f *Fleet) adopt(sh *shard, p *server) bool {
	var found []*server
	for _, s := range sh.servers {
		if s == p || !s.healthy.Load() {
			continue
		}
		s.mu.Lock()
		w := !s.readOnly && !s.replicating
		s.mu.Unlock()
		if w {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		return false
	}
	f.log.Warn("fleet: primary is read_only or down and another server is writable: following it", "shard", sh.name, "old", p.cfg.Name, "primary", found[0].cfg.Name)
	f.setPrimary(sh, found[0])
	return true
}

// fenceReturned fences a former primary that was replaced while it was
// down: read_only first, so it takes no write, then replication from the
// current primary. If replication cannot resume (it committed transactions
// the new primary never got), it stays read_only and lagging: no reads,
// and an operator decides.
func (f *Fleet) fenceReturned(ctx context.Context, s *server) {
	if s.sh.primary.Load() == s {
		// Still (or again) the shard's primary: nothing replaced it, and
		// fencing it would point it at itself and stop the shard's writes.
		s.mu.Lock()
		s.needsFence = false
		s.mu.Unlock()
		return
	}
	if _, err := s.db.ExecContext(ctx, "SET GLOBAL read_only = 1"); err != nil {
		f.log.Error("fleet: cannot fence returned former primary", "server", s.cfg.Name, "err", err)
		return
	}
	s.mu.Lock()
	s.readOnly = true
	s.needsFence = false
	s.mu.Unlock()
	f.log.Warn("fleet: former primary returned; fenced with read_only", "shard", s.sh.name, "server", s.cfg.Name)
	p := s.sh.primary.Load()
	rctx, cancel := context.WithTimeout(f.life, f.cfg.CatchupTimeout)
	defer cancel()
	if err := f.repoint(rctx, s, p, true); err != nil {
		f.log.Error("fleet: cannot repoint returned former primary", "server", s.cfg.Name, "primary", p.cfg.Name, "err", err)
	}
}

// repointRetry spaces the attempts to repoint a replica that missed a
// change of primary.
const repointRetry = time.Second

// repointReturned repoints a replica that missed a change of primary (it
// was down, or its repoint failed) at the shard's current primary.
func (f *Fleet) repointReturned(s *server) {
	p := s.sh.primary.Load()
	ctx, cancel := context.WithTimeout(f.life, f.cfg.CatchupTimeout)
	defer cancel()
	s.mu.Lock()
	former := s.repointFormer
	s.mu.Unlock()
	err := f.repoint(ctx, s, p, former)
	s.mu.Lock()
	if err == nil {
		s.needsRepoint = false
	} else {
		s.repointFailed = time.Now()
	}
	s.mu.Unlock()
	if err != nil {
		f.log.Error("fleet: cannot repoint replica at the new primary; retrying", "server", s.cfg.Name, "primary", p.cfg.Name, "err", err)
		return
	}
	f.log.Warn("fleet: replica that missed a change of primary repointed", "shard", s.sh.name, "server", s.cfg.Name, "primary", p.cfg.Name)
}
