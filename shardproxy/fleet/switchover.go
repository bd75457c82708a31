package fleet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// Report says what a switchover or failover did.
type Report struct {
	Shard       string
	Old, New    string
	Position    string        // the GTID position the new primary had when promoted
	Held        time.Duration // how long the shard's gate was closed
	Took        time.Duration
	Repointed   []string          // servers now replicating from New
	Unrepointed map[string]string // servers that could not be repointed, and why (they catch up when they return)
}

// Switchover makes target (a replica of the shard whose replication is
// running; "" picks the most advanced such healthy one) the shard's
// primary, with the old primary up:
//
//  0. with the gate still open: drop the target's MASTER_DELAY and wait
//     (CatchupTimeout) until it has applied the primary's current
//     position, so the pause below is short whatever the target's lag;
//  1. close the shard's gate: new primary-bound queries wait (HoldTimeout,
//     HoldMax); wait up to DrainTimeout for leases on the primary to end;
//  2. SET GLOBAL read_only = 1 on the old primary (this fences the
//     application user, not the fleet's admin account), waiting at most
//     lockWait for statements still running there (MariaDB's own wait for
//     them is otherwise a day, and blocks every other write meanwhile),
//     and read its @@gtid_binlog_pos;
//  3. on the target: MASTER_GTID_WAIT for that position (CatchupTimeout),
//     STOP SLAVE, RESET SLAVE ALL, read_only = 0;
//  4. route to the target and open the gate: held queries run there;
//  5. repoint the old primary at the target with MASTER_USE_GTID=current_pos
//     and the other replicas with slave_pos (see repoint).
//
// If a step before 4 fails, the old primary is made writable again and the
// gate opens on it: the switchover did nothing but pause the shard. From
// step 1 on, the switchover no longer follows ctx: it runs to its end,
// done or undone, each step bounded, so that a caller that goes away
// cannot leave the shard half switched.
func (f *Fleet) Switchover(ctx context.Context, shardName, target string) (Report, error) {
	sh, err := f.shard(shardName)
	if err != nil {
		return Report{}, err
	}
	if !sh.op.TryLock() {
		return Report{}, &Error{Shard: sh.name, Err: ErrBusy, Msg: "another switchover or failover is running"}
	}
	defer sh.op.Unlock()
	rep, err := f.switchover(ctx, sh, target)
	result := "ok"
	if err != nil {
		result = "error"
	}
	f.m.switchovers.WithLabelValues(sh.name, "switchover", result).Inc()
	return rep, err
}

func (f *Fleet) switchover(ctx context.Context, sh *shard, target string) (Report, error) {
	start := time.Now()
	old := sh.primary.Load()
	rep := Report{Shard: sh.name, Old: old.cfg.Name}
	fail := func(err error, format string, args ...any) (Report, error) {
		return rep, &Error{Shard: sh.name, Err: err, Msg: "switchover: " + fmt.Sprintf(format, args...)}
	}
	if !old.healthy.Load() {
		return fail(ErrPrimaryDown, "primary %s is down: use failover", old.cfg.Name)
	}
	tgt, err := f.pickTarget(sh, target, true)
	if err != nil {
		return rep, err
	}
	rep.New = tgt.cfg.Name

	// 0. Catch up with the gate open.
	if err := f.preCatchUp(ctx, old, tgt); err != nil {
		return fail(err, "%s did not catch up with %s before the switch (the shard was not paused): %v", tgt.cfg.Name, old.cfg.Name, err)
	}

	// 1. Gate. From here on the fleet's own context, bounded.
	octx, cancel := context.WithTimeout(f.life, f.switchBound())
	defer cancel()
	closed := time.Now()
	f.closeGate(sh)
	promoted := false
	defer func() {
		if !promoted {
			// Undo: the old primary takes writes again.
			uctx, cancel := context.WithTimeout(f.life, 5*time.Second)
			if _, err := old.db.ExecContext(uctx, "SET GLOBAL read_only = 0"); err != nil {
				f.log.Error("fleet: switchover undo: cannot make old primary writable again", "server", old.cfg.Name, "err", err)
			}
			cancel()
			f.openGate(sh)
		}
	}()
	if open := f.drain(sh, old); open > 0 {
		f.log.Warn("fleet: switchover proceeds with leases still open on the old primary; their next writes fail (read_only)", "shard", sh.name, "open", open)
	}

	// 2. Fence the old primary and take its position.
	lw := f.lockWait()
	if _, err := old.db.ExecContext(octx, fmt.Sprintf("SET STATEMENT lock_wait_timeout = %d FOR SET GLOBAL read_only = 1", lw)); err != nil {
		return fail(err, "set read_only on %s (statements still running there after %ds hold it off): %v", old.cfg.Name, lw, err)
	}
	var binlogPos string
	if err := old.db.QueryRowContext(octx, "SELECT @@global.gtid_binlog_pos").Scan(&binlogPos); err != nil {
		return fail(err, "read position of %s: %v", old.cfg.Name, err)
	}
	pos, err := ParsePosition(binlogPos)
	if err != nil {
		return fail(err, "%v", err)
	}

	// 3. Catch the target up and promote it.
	if err := f.catchUp(octx, tgt, pos); err != nil {
		return fail(err, "%s did not catch up with %s: %v", tgt.cfg.Name, pos, err)
	}
	if err := f.promote(octx, tgt); err != nil {
		return fail(err, "promote %s: %v", tgt.cfg.Name, err)
	}
	promoted = true
	tpos := tgt.position().Merge(pos)
	tgt.pos.Store(&tpos)
	rep.Position = tpos.String()

	// 4. Route to the new primary and let the held queries go.
	old.mu.Lock()
	old.readOnly = true
	old.mu.Unlock()
	f.setPrimary(sh, tgt)
	if err := f.ensureMeta(octx, tgt); err != nil {
		f.log.Warn("fleet: heartbeat table on new primary", "server", tgt.cfg.Name, "err", err)
	}
	f.openGate(sh)
	rep.Held = time.Since(closed)

	// 5. Repoint everyone else.
	f.repointAll(octx, sh, tgt, old, &rep)
	rep.Took = time.Since(start)
	f.log.Info("fleet: switchover done", "shard", sh.name, "old", rep.Old, "new", rep.New, "position", rep.Position, "held", rep.Held, "took", rep.Took)
	return rep, nil
}

// lockWait is how long, in whole seconds, SET GLOBAL read_only may wait for
// statements still running on the old primary: DrainTimeout, at least 1 s.
func (f *Fleet) lockWait() int {
	return max(1, int((f.cfg.DrainTimeout+time.Second-1)/time.Second))
}

// switchBound bounds a switchover from the closing of the gate to the end
// of the repointing.
func (f *Fleet) switchBound() time.Duration {
	return time.Duration(f.lockWait())*time.Second + f.cfg.CatchupTimeout + 30*time.Second
}

// preCatchUp brings the target close to the primary before the gate
// closes: without its MASTER_DELAY, and past the primary's position now.
func (f *Fleet) preCatchUp(ctx context.Context, p, r *server) error {
	if err := dropDelay(ctx, r); err != nil {
		return err
	}
	var binlogPos string
	if err := p.db.QueryRowContext(ctx, "SELECT @@global.gtid_binlog_pos").Scan(&binlogPos); err != nil {
		return fmt.Errorf("read position of %s: %w", p.cfg.Name, err)
	}
	pos, err := ParsePosition(binlogPos)
	if err != nil {
		return err
	}
	return f.waitGTID(ctx, r, pos, f.cfg.CatchupTimeout)
}

// Failover promotes target ("" picks the most advanced healthy replica) of
// a shard whose primary is down, as automatic promotion does. Writes the
// old primary acknowledged but never sent to any replica are not on the
// new primary; the old primary is fenced with read_only when it returns.
func (f *Fleet) Failover(ctx context.Context, shardName, target string) (Report, error) {
	sh, err := f.shard(shardName)
	if err != nil {
		return Report{}, err
	}
	if !sh.op.TryLock() {
		return Report{}, &Error{Shard: sh.name, Err: ErrBusy, Msg: "another switchover or failover is running"}
	}
	defer sh.op.Unlock()
	if err := ctx.Err(); err != nil {
		return Report{}, err
	}
	// Like a switchover past its gate, a failover runs to its end on the
	// fleet's own context: a caller gone after the promotion must not leave
	// the other replicas pointing at the dead primary.
	octx, cancel := context.WithTimeout(f.life, f.cfg.CatchupTimeout+30*time.Second)
	defer cancel()
	return f.failoverLocked(octx, sh, target, "failover")
}

func (f *Fleet) failoverLocked(ctx context.Context, sh *shard, target, kind string) (rep Report, err error) {
	start := time.Now()
	old := sh.primary.Load()
	rep = Report{Shard: sh.name, Old: old.cfg.Name}
	defer func() {
		result := "ok"
		if err != nil {
			result = "error"
		}
		f.m.switchovers.WithLabelValues(sh.name, kind, result).Inc()
	}()
	if old.healthy.Load() {
		return rep, &Error{Shard: sh.name, Err: errors.New("primary up"), Msg: fmt.Sprintf("failover: primary %s is up: use switchover", old.cfg.Name)}
	}
	tgt, err := f.pickTarget(sh, target, false)
	if err != nil {
		return rep, err
	}
	rep.New = tgt.cfg.Name
	// Apply what the target already received from the dead primary before
	// cutting it loose: received is as safe as it gets.
	tgt.mu.Lock()
	io := tgt.ioPos
	tgt.mu.Unlock()
	if len(io) > 0 {
		if err := f.waitGTID(ctx, tgt, io, f.cfg.CatchupTimeout); err != nil {
			f.log.Warn("fleet: failover target did not apply all it received", "server", tgt.cfg.Name, "received", io, "err", err)
		}
	}
	// The gate holds writes from here to the routing change: an old
	// primary that answers again meanwhile must not take them while the
	// target is promoted. If it is back already, the failover is off.
	f.closeGate(sh)
	gateOpen := false
	defer func() {
		if !gateOpen {
			f.openGate(sh)
		}
	}()
	if old.healthy.Load() {
		return rep, &Error{Shard: sh.name, Err: errors.New("primary up"), Msg: fmt.Sprintf("failover: primary %s answered again before %s was promoted: nothing changed (use switchover)", old.cfg.Name, tgt.cfg.Name)}
	}
	if err := f.promote(ctx, tgt); err != nil {
		return rep, &Error{Shard: sh.name, Err: err, Msg: fmt.Sprintf("failover: promote %s: %v", tgt.cfg.Name, err)}
	}
	// Only now: a failed promotion leaves the old primary the primary, and
	// fencing it when it returns would stop the shard's writes for good.
	old.mu.Lock()
	old.needsFence = true
	old.mu.Unlock()
	var binlogPos string
	_ = tgt.db.QueryRowContext(ctx, "SELECT @@global.gtid_binlog_pos").Scan(&binlogPos)
	rep.Position = binlogPos
	f.setPrimary(sh, tgt)
	f.openGate(sh)
	gateOpen = true
	if err := f.ensureMeta(ctx, tgt); err != nil {
		f.log.Warn("fleet: heartbeat table on new primary", "server", tgt.cfg.Name, "err", err)
	}
	f.repointAll(ctx, sh, tgt, old, &rep)
	rep.Took = time.Since(start)
	f.log.Warn("fleet: primary replaced while down", "kind", kind, "shard", sh.name, "old", rep.Old, "new", rep.New, "position", rep.Position, "took", rep.Took)
	return rep, nil
}

// pickTarget returns the named replica, or the most advanced healthy one.
// replicating (a switchover) also requires its replication to be running:
// a replica whose SQL or IO thread stopped would never catch up, and the
// shard would stay paused until CatchupTimeout for nothing.
func (f *Fleet) pickTarget(sh *shard, name string, replicating bool) (*server, error) {
	p := sh.primary.Load()
	notRunning := func(s *server) string {
		if !replicating {
			return ""
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		switch {
		case !s.replicating:
			return "is not replicating"
		case s.ioStopped || !s.sqlRunning: // an IO thread still connecting is fine
			why := "has its replication stopped"
			if s.replErr != "" {
				why += " (" + s.replErr + ")"
			}
			return why
		}
		return ""
	}
	if name != "" {
		for _, s := range sh.servers {
			if s.cfg.Name != name {
				continue
			}
			switch {
			case s == p:
				return nil, &Error{Shard: sh.name, Err: errors.New("already primary"), Msg: fmt.Sprintf("%s is already the primary", name)}
			case !s.healthy.Load():
				return nil, &Error{Shard: sh.name, Err: ErrUnknownServer, Msg: fmt.Sprintf("%s is down", name)}
			}
			if why := notRunning(s); why != "" {
				return nil, &Error{Shard: sh.name, Err: ErrNoReplica, Msg: fmt.Sprintf("%s %s; the shard was not paused", name, why)}
			}
			return s, nil
		}
		return nil, &Error{Shard: sh.name, Err: ErrUnknownServer, Msg: fmt.Sprintf("no server %q in the shard", name)}
	}
	var best *server
	var bestPos Position
	for _, s := range sh.servers {
		if s == p || !s.healthy.Load() || notRunning(s) != "" {
			continue
		}
		s.mu.Lock()
		pos := s.ioPos.Merge(s.position())
		fenced := s.needsFence
		s.mu.Unlock()
		if fenced {
			continue
		}
		if best == nil || pos.Compare(bestPos) > 0 || (pos.Compare(bestPos) == 0 && pos.Total() > bestPos.Total()) {
			best, bestPos = s, pos
		}
	}
	if best == nil {
		msg := "no healthy replica to promote"
		if replicating {
			msg = "no healthy replica with running replication to promote"
		}
		return nil, &Error{Shard: sh.name, Err: ErrNoReplica, Msg: msg}
	}
	return best, nil
}

func (f *Fleet) closeGate(sh *shard) {
	sh.mu.Lock()
	sh.switching = true
	sh.gate = make(chan struct{})
	sh.mu.Unlock()
}

func (f *Fleet) openGate(sh *shard) {
	sh.mu.Lock()
	if sh.switching {
		sh.switching = false
		close(sh.gate)
	}
	sh.mu.Unlock()
}

// drain waits up to DrainTimeout for the leases on p to end and returns
// how many are still out.
func (f *Fleet) drain(sh *shard, p *server) int64 {
	deadline := time.Now().Add(f.cfg.DrainTimeout)
	for {
		n := p.outstanding.Load()
		if n <= 0 || time.Now().After(deadline) {
			return n
		}
		time.Sleep(time.Millisecond)
	}
}

// catchUp makes replica r apply everything up to pos.
func (f *Fleet) catchUp(ctx context.Context, r *server, pos Position) error {
	// preCatchUp dropped the delay; a check that read the old SQL_Delay
	// just before may have put it back in r.sqlDelay.
	if err := dropDelay(ctx, r); err != nil {
		return err
	}
	return f.waitGTID(ctx, r, pos, f.cfg.CatchupTimeout)
}

// dropDelay removes replica r's MASTER_DELAY, which would hold a
// switchover (and the shard, once the gate is closed) for the whole delay.
func dropDelay(ctx context.Context, r *server) error {
	r.mu.Lock()
	delay := r.sqlDelay
	r.mu.Unlock()
	if delay == 0 {
		return nil
	}
	if err := execAll(ctx, r, "STOP SLAVE", "CHANGE MASTER TO MASTER_DELAY = 0", "START SLAVE"); err != nil {
		return err
	}
	r.mu.Lock()
	r.sqlDelay = 0
	r.mu.Unlock()
	return nil
}

func (f *Fleet) waitGTID(ctx context.Context, r *server, pos Position, timeout time.Duration) error {
	if len(pos) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, timeout+5*time.Second)
	defer cancel()
	var res int
	q := fmt.Sprintf("SELECT MASTER_GTID_WAIT('%s', %.3f)", pos, timeout.Seconds())
	if err := r.db.QueryRowContext(ctx, q).Scan(&res); err != nil {
		return err
	}
	if res != 0 {
		return fmt.Errorf("not reached within %v", timeout)
	}
	return nil
}

// promote turns replica r into a primary.
func (f *Fleet) promote(ctx context.Context, r *server) error {
	if err := execAll(ctx, r, "STOP SLAVE", "RESET SLAVE ALL", "SET GLOBAL read_only = 0"); err != nil {
		return err
	}
	r.mu.Lock()
	r.readOnly, r.replicating, r.sqlDelay, r.ioPos, r.replErr, r.needsRepoint = false, false, 0, nil, "", false
	r.mu.Unlock()
	return nil
}

// repointAll points every other server of the shard at p; old is the
// primary p replaced.
func (f *Fleet) repointAll(ctx context.Context, sh *shard, p, old *server, rep *Report) {
	for _, s := range sh.servers {
		if s == p {
			continue
		}
		s.mu.Lock()
		fence := s.needsFence
		s.mu.Unlock()
		var err error
		switch {
		case fence:
			err = errors.New("former primary, down: fenced and repointed when it returns")
		case !s.healthy.Load():
			err = errors.New("down: repointed when it answers again")
		default:
			if err = f.repoint(ctx, s, p, s == old); err != nil {
				err = fmt.Errorf("%w (retried at its next checks)", err)
			}
		}
		if err != nil && !fence {
			s.mu.Lock()
			s.needsRepoint, s.repointFailed, s.repointFormer = true, time.Time{}, s == old
			s.mu.Unlock()
		}
		if err != nil {
			if rep.Unrepointed == nil {
				rep.Unrepointed = map[string]string{}
			}
			rep.Unrepointed[s.cfg.Name] = err.Error()
			f.log.Warn("fleet: server not repointed", "shard", sh.name, "server", s.cfg.Name, "primary", p.cfg.Name, "err", err)
			continue
		}
		rep.Repointed = append(rep.Repointed, s.cfg.Name)
	}
}

// repoint makes s a read-only replica of p. A former primary resumes with
// MASTER_USE_GTID=current_pos: its own writes are only in its binlog, and
// slave_pos would ask for them again. Any other replica resumes from what it
// applied (slave_pos): current_pos would also take a local transaction of
// its own (a DBA's DDL, an ANALYZE TABLE) from its binlog and ask the new
// primary for it, which no primary has, and its replication would stop
// for good (1236, "the slave has diverged").
func (f *Fleet) repoint(ctx context.Context, s, p *server, formerPrimary bool) error {
	mode := "slave_pos"
	if formerPrimary {
		mode = "current_pos"
	}
	host, port, err := net.SplitHostPort(p.cfg.Addr)
	if err != nil {
		return err
	}
	user, pass := f.cfg.ReplUser, f.cfg.ReplPassword
	if user == "" {
		user, pass = s.cfg.User, s.cfg.Password
	}
	err = execAll(ctx, s,
		"SET GLOBAL read_only = 1",
		"STOP SLAVE",
		fmt.Sprintf("CHANGE MASTER TO MASTER_HOST=%s, MASTER_PORT=%s, MASTER_USER=%s, MASTER_PASSWORD=%s, MASTER_USE_GTID=%s, MASTER_CONNECT_RETRY=1",
			quote(host), port, quote(user), quote(pass), mode),
		"START SLAVE",
	)
	if err != nil {
		return err
	}
	// Started: what the next check will most likely see. A switchover back
	// to it right away must not be refused on the state it had as a
	// primary.
	s.mu.Lock()
	s.readOnly, s.replicating, s.needsRepoint = true, true, false
	s.sqlRunning, s.ioStopped = true, false
	s.mu.Unlock()
	return nil
}

func execAll(ctx context.Context, s *server, stmts ...string) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", s.cfg.Name, err)
	}
	defer conn.Close()
	for _, q := range stmts {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %s: %w", s.cfg.Name, redact(q), err)
		}
	}
	return nil
}

// quote makes s an SQL string literal.
func quote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

func redact(q string) string {
	if i := strings.Index(q, "MASTER_PASSWORD="); i >= 0 {
		return q[:i] + "MASTER_PASSWORD=..."
	}
	return q
}
