package fleet

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// ReadRequest is what a read needs from its server.
type ReadRequest struct {
	// Consistency is the session's level; empty means Session.
	Consistency Consistency
	// After is the session's last committed write on this shard (its
	// @@last_gtid there); with Session consistency the read goes only to a
	// server that has applied it.
	After Position
	// Exclude names a server not to use: the one a failed read just ran on.
	Exclude string
}

// Lease is one query's (or one transaction's) use of a server. Release it
// when the query is done: the fleet balances by, and drains before a
// switchover on, the number of leases out.
type Lease struct {
	Shard   string
	Server  string
	Addr    string
	Primary bool
	// WaitFor, when not empty, is a GTID position the server is not known
	// to have applied yet: run WaitQuery on the connection before the read;
	// if it returns 0 call Reached and run the read, otherwise Release and
	// ask for the primary (AcquirePrimary).
	WaitFor     Position
	WaitTimeout time.Duration

	s    *server
	done bool
}

// Release ends the lease. It is safe to call more than once and on nil.
func (l *Lease) Release() {
	if l == nil || l.done {
		return
	}
	l.done = true
	l.s.outstanding.Add(-1)
}

// WaitQuery is the statement that waits for WaitFor on the leased server:
// it returns 0 once applied, -1 on timeout.
func (l *Lease) WaitQuery() string {
	return "SELECT MASTER_GTID_WAIT('" + l.WaitFor.String() + "', " +
		strconv.FormatFloat(l.WaitTimeout.Seconds(), 'f', 3, 64) + ")"
}

// Reached records that the leased server has applied WaitFor, so the
// session's next reads need no wait.
func (l *Lease) Reached() {
	for {
		old := l.s.pos.Load()
		var cur Position
		if old != nil {
			cur = *old
		}
		if cur.Contains(l.WaitFor) {
			return
		}
		next := cur.Merge(l.WaitFor)
		if l.s.pos.CompareAndSwap(old, &next) {
			return
		}
	}
}

// AcquireRead picks the server for a plain read on the shard:
//
//   - Strong: the primary (as AcquirePrimary).
//   - Eventual: the healthy replica within MaxLag with the fewest leases
//     out; with none, the primary (NoReplica = primary) or ErrNoReplica.
//   - Session with After empty: as Eventual. With After set: such a replica
//     that has applied After; else, if SessionWait is set, one lagging less
//     than SessionWait, with WaitFor set for the caller to wait on; else
//     the primary.
//
// A replica's lag here is an upper bound: the age of the oldest heartbeat it
// had not applied at its last check, growing until the next check.
func (f *Fleet) AcquireRead(ctx context.Context, shardName string, r ReadRequest) (*Lease, error) {
	sh, err := f.shard(shardName)
	if err != nil {
		return nil, err
	}
	if r.Consistency == Strong {
		return f.acquirePrimary(ctx, sh, true)
	}
	needPos := r.Consistency != Eventual && len(r.After) > 0
	now := f.now()
	p := sh.primary.Load()
	n := len(sh.servers)
	start := int(sh.rr.Add(1))
	var best, waiter *server
	var bestOut, waiterOut int64
	var ties [8]*server // the replicas tied at bestOut, to rotate among
	nties := 0
	for i := 0; i < n; i++ {
		s := sh.servers[(start+i)%n]
		if s == p || s.cfg.Name == r.Exclude || !s.usable() {
			continue
		}
		lag, ok := s.lag(now)
		if !ok || lag > f.cfg.MaxLag {
			continue
		}
		out := s.outstanding.Load()
		if needPos && !s.position().Contains(r.After) {
			// The lag measured at the last check, not the bound that grows
			// until the next one: a replica a few ms behind then is a good
			// bet to have the write by now.
			if time.Duration(s.checkedLag.Load()) < f.cfg.SessionWait && (waiter == nil || out < waiterOut) {
				waiter, waiterOut = s, out
			}
			continue
		}
		switch {
		case best == nil || out < bestOut:
			best, bestOut = s, out
			ties[0], nties = s, 1
		case out == bestOut && nties < len(ties):
			ties[nties] = s
			nties++
		}
	}
	if nties > 1 {
		// The scan's start rotates over all servers, primary included, which
		// would favour the replica after the primary: rotate among the tied.
		best = ties[start%nties]
	}
	switch {
	case best != nil:
		return f.lease(best, nil), nil
	case waiter != nil:
		return f.lease(waiter, r.After), nil
	case needPos:
		f.m.fallbacks.WithLabelValues(sh.name, "session").Inc()
		return f.acquirePrimary(ctx, sh, true)
	case f.cfg.NoReplica == FailRead:
		return nil, &Error{Shard: sh.name, Err: ErrNoReplica, Msg: fmt.Sprintf("no healthy replica within max lag %v", f.cfg.MaxLag)}
	}
	f.m.fallbacks.WithLabelValues(sh.name, "no_replica").Inc()
	return f.acquirePrimary(ctx, sh, true)
}

func (f *Fleet) lease(s *server, wait Position) *Lease {
	s.outstanding.Add(1)
	s.reads.Add(1)
	s.mReads.Inc()
	l := &Lease{Shard: s.sh.name, Server: s.cfg.Name, Addr: s.cfg.Addr, s: s}
	if len(wait) > 0 {
		l.WaitFor, l.WaitTimeout = wait, f.cfg.SessionWait
	}
	return l
}

// AcquirePrimary returns a lease on the shard's primary for a write, a
// transaction or a read that must see the latest data. During a switchover
// it waits at the shard's gate (at most HoldTimeout, with at most HoldMax
// waiting) and then leases the new primary. When the primary is ejected it
// fails at once with ErrPrimaryDown.
func (f *Fleet) AcquirePrimary(ctx context.Context, shardName string) (*Lease, error) {
	sh, err := f.shard(shardName)
	if err != nil {
		return nil, err
	}
	return f.acquirePrimary(ctx, sh, false)
}

// PrimaryDown returns the error a write to the shard gets while its
// primary is ejected (ErrPrimaryDown, naming the shard and the server),
// nil while it is up. It does not wait at a switchover's gate.
func (f *Fleet) PrimaryDown(shardName string) error {
	sh, err := f.shard(shardName)
	if err != nil {
		return err
	}
	p := sh.primary.Load()
	if p.healthy.Load() {
		return nil
	}
	sh.mu.Lock()
	since := sh.downSince
	sh.mu.Unlock()
	return primaryDownErr(sh, p, since)
}

func primaryDownErr(sh *shard, p *server, since time.Time) error {
	msg := fmt.Sprintf("primary %s (%s) is down", p.cfg.Name, p.cfg.Addr)
	if !since.IsZero() {
		msg += fmt.Sprintf(" for %v", time.Since(since).Round(time.Millisecond))
	}
	return &Error{Shard: sh.name, Err: ErrPrimaryDown, Msg: msg + "; writes fail until it returns or a replica is promoted"}
}

func (f *Fleet) acquirePrimary(ctx context.Context, sh *shard, read bool) (*Lease, error) {
	sh.mu.Lock()
	if sh.switching {
		if err := f.hold(ctx, sh); err != nil {
			sh.mu.Unlock()
			return nil, err
		}
	}
	// Not usable(): one broken connection to the primary must not fail
	// every write until the next check; only ejection does.
	p := sh.primary.Load()
	if !p.healthy.Load() {
		since := sh.downSince
		sh.mu.Unlock()
		return nil, primaryDownErr(sh, p, since)
	}
	p.outstanding.Add(1)
	sh.mu.Unlock()
	if read {
		p.reads.Add(1)
		p.mReads.Inc()
	} else {
		p.writes.Add(1)
		p.mWrites.Inc()
	}
	return &Lease{Shard: sh.name, Server: p.cfg.Name, Addr: p.cfg.Addr, Primary: true, s: p}, nil
}

// hold waits, with sh.mu held on entry and exit, until the shard's gate
// opens.
func (f *Fleet) hold(ctx context.Context, sh *shard) error {
	if sh.held >= f.cfg.HoldMax {
		return &Error{Shard: sh.name, Err: ErrHoldFull, Msg: fmt.Sprintf("switchover in progress and %d queries already held", sh.held)}
	}
	sh.held++
	f.m.held.WithLabelValues(sh.name).Set(float64(sh.held))
	defer func() {
		sh.held--
		f.m.held.WithLabelValues(sh.name).Set(float64(sh.held))
	}()
	t := time.NewTimer(f.cfg.HoldTimeout)
	defer t.Stop()
	for sh.switching {
		gate := sh.gate
		sh.mu.Unlock()
		var err error
		select {
		case <-gate:
		case <-t.C:
			err = &Error{Shard: sh.name, Err: ErrHoldTimeout, Msg: fmt.Sprintf("switchover still in progress after holding the query %v", f.cfg.HoldTimeout)}
		case <-ctx.Done():
			err = ctx.Err()
		}
		sh.mu.Lock()
		if err != nil {
			return err
		}
	}
	return nil
}
