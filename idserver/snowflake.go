package idserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// snowProposer commits a snowflake command through Raft (directly on the
// leader, through the leader's Internal service on a follower) and returns
// the FSM's grant. The leader stamps the command with its own clock.
type snowProposer interface {
	proposeSnowflake(ctx context.Context, c command) (workerGrant, error)
}

// snowflake issues this node's snowflake IDs. It may use a timestamp only
// while it holds a worker and the timestamp is at most what it has
// committed as reserved for that worker; it starts above the reservation
// of whoever held the worker before.
type snowflake struct {
	cfg   SnowflakeConfig
	owner string
	prop  snowProposer
	clock func() time.Time
	sleep func(time.Duration)
	log   *slog.Logger
	m     *metrics

	resMu sync.Mutex // one reservation commit at a time

	mu       sync.Mutex
	held     bool
	worker   uint64
	last     int64  // unix ms of the last issued timestamp (or the floor after acquiring)
	seq      uint64 // next sequence number at last
	reserved int64  // committed reservation, unix ms
	leaseEnd time.Time
	lastErr  error // why the last attempt to lease a worker failed
}

func newSnowflake(cfg SnowflakeConfig, owner string, prop snowProposer, clock func() time.Time, sleep func(time.Duration), log *slog.Logger, m *metrics) *snowflake {
	return &snowflake{cfg: cfg, owner: owner, prop: prop, clock: clock, sleep: sleep, log: log, m: m}
}

func (s *snowflake) nowMs() int64 { return s.clock().UnixMilli() }

// next returns count IDs as ranges (IDs in one millisecond are
// consecutive), appended to out.
func (s *snowflake) next(ctx context.Context, count uint64, out []Range) ([]Range, error) {
	l := s.cfg.Layout
	maxSeq := l.MaxSequence()
	s.mu.Lock()
	for count > 0 {
		if !s.held {
			why := s.lastErr
			s.mu.Unlock()
			if why != nil {
				return nil, fmt.Errorf("%w: snowflake: this node holds no worker ID: %w", ErrUnavailable, why)
			}
			return nil, fmt.Errorf("%w: snowflake: this node holds no worker ID yet (it leases one through the Raft leader)", ErrUnavailable)
		}
		now := s.nowMs()
		if now < s.last && debugIgnoreBackwards() {
			// The naive generator a drill must catch: start over at the
			// clock's reading.
			s.last, s.seq = now, 0
		}
		if now < s.last {
			behind := s.last - now
			s.m.clockBackwards.Inc()
			if behind > s.cfg.MaxBackwardWait.Milliseconds() {
				s.mu.Unlock()
				return nil, &ClockBackwardsError{Behind: behind, MaxWait: s.cfg.MaxBackwardWait.Milliseconds(), ResumeAt: s.last + 1}
			}
			s.mu.Unlock()
			if err := s.wait(ctx, time.Duration(behind)*time.Millisecond); err != nil {
				return nil, err
			}
			s.mu.Lock()
			continue
		}
		if now >= l.End() {
			s.mu.Unlock()
			return nil, fmt.Errorf("%w: snowflake: the layout's %d time bits ran out at %s", ErrExhausted, l.TimeBits, time.UnixMilli(l.End()).UTC())
		}
		if now < l.EpochMs {
			s.mu.Unlock()
			return nil, fmt.Errorf("%w: snowflake: the clock (%s) is before the layout's epoch", ErrUnavailable, time.UnixMilli(now).UTC())
		}
		if now > s.reserved {
			// The background renewal fell behind (or the leader is away):
			// commit more before using this timestamp.
			s.mu.Unlock()
			if err := s.extend(ctx); err != nil {
				return nil, err
			}
			s.mu.Lock()
			continue
		}
		if now > s.last {
			s.last, s.seq = now, 0
		}
		if s.seq > maxSeq {
			// This millisecond is used up: wait for the next.
			s.mu.Unlock()
			if err := s.wait(ctx, 100*time.Microsecond); err != nil {
				return nil, err
			}
			s.mu.Lock()
			continue
		}
		k := min(count, maxSeq+1-s.seq)
		out = append(out, Range{Start: l.Compose(s.last, s.worker, s.seq), Count: k})
		s.seq += k
		count -= k
	}
	s.mu.Unlock()
	return out, nil
}

func (s *snowflake) wait(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.sleep(d)
	return nil
}

// acquire leases a worker (a fresh one when this node's clock is behind its
// old worker's reservation) and reserves timestamps for it.
func (s *snowflake) acquire(ctx context.Context) error {
	start := s.clock()
	l := s.cfg.Layout
	g, err := s.prop.proposeSnowflake(ctx, command{
		Op: opSFAcquire, Owner: s.owner, ClientNow: start.UnixMilli(),
		TTL: s.cfg.WorkerTTL.Milliseconds(), Layout: &l,
	})
	if err != nil {
		err = fmt.Errorf("snowflake: lease a worker: %w", err)
		s.mu.Lock()
		s.lastErr = err
		s.mu.Unlock()
		return err
	}
	s.mu.Lock()
	s.held, s.worker, s.lastErr = true, g.Worker, nil
	// Start above every timestamp any earlier holder could have used.
	s.last, s.seq = g.ReservedUntil, l.MaxSequence()+1
	s.reserved = g.ReservedUntil
	s.leaseEnd = start.Add(s.cfg.WorkerTTL)
	s.mu.Unlock()
	s.m.worker.Set(float64(g.Worker))
	s.log.Info("idserver: snowflake worker leased", "worker", g.Worker, "reserved_until", g.ReservedUntil)
	return s.extend(ctx)
}

// extend renews the lease and reserves timestamps up to Reserve ahead of
// the clock (or of the floor, when the clock is behind it).
func (s *snowflake) extend(ctx context.Context) error {
	s.resMu.Lock()
	defer s.resMu.Unlock()
	start := s.clock()
	s.mu.Lock()
	held, worker, last, reserved := s.held, s.worker, s.last, s.reserved
	s.mu.Unlock()
	if !held {
		return fmt.Errorf("%w: snowflake: no worker ID held", ErrUnavailable)
	}
	if reserved >= start.UnixMilli()+s.cfg.Reserve.Milliseconds()/2 {
		return nil // someone else just did
	}
	until := max(start.UnixMilli(), last) + s.cfg.Reserve.Milliseconds()
	l := s.cfg.Layout
	g, err := s.prop.proposeSnowflake(ctx, command{
		Op: opSFReserve, Owner: s.owner, Worker: worker, Until: until,
		TTL: s.cfg.WorkerTTL.Milliseconds(), Layout: &l,
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		if isLeaseLost(err) && s.held && s.worker == worker {
			s.held = false
			s.log.Warn("idserver: snowflake worker lease lost", "worker", worker, "err", err)
		}
		return fmt.Errorf("snowflake: reserve timestamps: %w", err)
	}
	if s.held && s.worker == worker {
		s.reserved = max(s.reserved, g.ReservedUntil)
		s.leaseEnd = start.Add(s.cfg.WorkerTTL)
	}
	return nil
}

// keep holds a worker and keeps its reservation ahead of the clock until
// ctx ends.
func (s *snowflake) keep(ctx context.Context) {
	tick := min(s.cfg.Reserve/4, 250*time.Millisecond)
	backoff := 50 * time.Millisecond
	var warned string // the error last logged at Warn
	for ctx.Err() == nil {
		s.mu.Lock()
		held, reserved, leaseEnd := s.held, s.reserved, s.leaseEnd
		if held && s.clock().After(leaseEnd) {
			// The lease may be another node's by now.
			s.held, held = false, false
			s.log.Warn("idserver: snowflake worker lease expired", "worker", s.worker)
		}
		s.mu.Unlock()
		var err error
		switch {
		case !held:
			err = s.acquire(ctx)
		case s.nowMs()+s.cfg.Reserve.Milliseconds()/2 > reserved:
			err = s.extend(ctx)
		}
		wait := tick
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if errors.Is(err, ErrInvalid) && err.Error() != warned {
				// A layout other than the cluster's: no retry will help.
				warned = err.Error()
				s.log.Warn("idserver: snowflake keeper (will retry)", "err", err)
			} else {
				s.log.Debug("idserver: snowflake keeper (will retry)", "err", err)
			}
			wait = backoff
			backoff = min(2*backoff, time.Second)
		} else {
			backoff = 50 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// release gives the worker up so another node may take it at once.
func (s *snowflake) release(ctx context.Context) {
	s.mu.Lock()
	held, worker := s.held, s.worker
	s.held = false
	s.mu.Unlock()
	if !held {
		return
	}
	l := s.cfg.Layout
	if _, err := s.prop.proposeSnowflake(ctx, command{Op: opSFRelease, Owner: s.owner, Worker: worker, Layout: &l}); err != nil {
		s.log.Debug("idserver: snowflake release (the lease will lapse instead)", "err", err)
	}
}

// status reports the worker this node holds.
func (s *snowflake) status() (worker uint64, held bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.worker, s.held
}

func isLeaseLost(err error) bool { return errors.Is(err, errLeaseLost) }
