package xa

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/strata-db/strata/txcoord/client"
)

// Querier is the resolver's own connection to a shard's primary.
type Querier interface {
	// Query runs a statement and returns its rows as strings (binary
	// columns as their bytes).
	Query(ctx context.Context, query string) ([][]string, error)
	// Exec runs a statement that returns no rows.
	Exec(ctx context.Context, query string) error
	Close() error
}

// Primaries is how the resolver reaches every shard's current primary.
type Primaries interface {
	Shards() []string
	// Open connects to shard's primary (as it is now: after a switchover,
	// the new one).
	Open(ctx context.Context, shard string) (Querier, error)
}

// ResolverConfig configures a Resolver. Start from DefaultResolverConfig.
type ResolverConfig struct {
	// Interval is the time between passes; a pass also runs at start and
	// on Kick (after a switchover or failover).
	Interval time.Duration
	// AbandonAfter is how long a prepared branch without a decision may
	// stay before the resolver records abort for it (presumed abort). It
	// must be well above a commit's time from PREPARE to decision.
	AbandonAfter time.Duration
	// CompleteAfter is how old an unfinished decision must be before a
	// pass that finds none of its branches prepared reports it complete
	// (a committer that is alive reports its own).
	CompleteAfter time.Duration
	// PassTimeout bounds one pass.
	PassTimeout time.Duration
	Metrics     *Metrics
	Logger      *slog.Logger

	now func() time.Time // tests
}

// DefaultResolverConfig returns the defaults.
func DefaultResolverConfig() ResolverConfig {
	return ResolverConfig{Interval: 10 * time.Second, AbandonAfter: 30 * time.Second, CompleteAfter: 30 * time.Second, PassTimeout: 30 * time.Second}
}

// Validate reports every field that is wrong, each named.
func (c ResolverConfig) Validate() error {
	var errs []error
	if c.Interval <= 0 {
		errs = append(errs, errors.New("xa: resolver config: Interval must be positive"))
	}
	if c.AbandonAfter < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("xa: resolver config: AbandonAfter %v is below 100ms", c.AbandonAfter))
	}
	if c.CompleteAfter <= 0 || c.PassTimeout <= 0 {
		errs = append(errs, errors.New("xa: resolver config: CompleteAfter and PassTimeout must be positive"))
	}
	return errors.Join(errs...)
}

// Resolver finds Strata's prepared XA branches on every shard primary
// (XA RECOVER) and finishes each as the coordinator's decision says:
// commit, rollback, or, with no decision after AbandonAfter, abort
// recorded first and then rollback.
type Resolver struct {
	cfg   ResolverConfig
	dbs   Primaries
	coord Coordinator
	kick  chan struct{}

	mu        sync.Mutex
	firstSeen map[XID]time.Time
	last      Report
}

// Report is what one pass found and did.
type Report struct {
	At        time.Time
	Found     int // prepared branches of ours
	Committed int
	RolledBack,
	PresumedAbort int
	// InDoubt are branches left prepared: no decision yet, or still
	// attached to the session finishing them.
	InDoubt []InDoubt
	// Errors are the shards the pass could not reach or finish.
	Errors []error
}

// InDoubt is a prepared branch the pass left as it was.
type InDoubt struct {
	XID      XID
	Decision client.Decision
	Since    time.Time // when a pass first saw it
}

// NewResolver makes a resolver over dbs, asking coord.
func NewResolver(cfg ResolverConfig, dbs Primaries, coord Coordinator) (*Resolver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.now == nil {
		cfg.now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	return &Resolver{cfg: cfg, dbs: dbs, coord: coord, kick: make(chan struct{}, 1), firstSeen: map[XID]time.Time{}}, nil
}

// Kick asks for a pass now (after a switchover or a failover).
func (r *Resolver) Kick() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Last returns the last pass's report.
func (r *Resolver) Last() Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// Run makes a pass at once, then every Interval and on Kick, until ctx ends.
func (r *Resolver) Run(ctx context.Context) {
	t := time.NewTicker(r.cfg.Interval)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, r.cfg.PassTimeout)
		rep := r.Pass(pctx)
		cancel()
		for _, err := range rep.Errors {
			if ctx.Err() == nil {
				r.cfg.Logger.Warn("xa: recovery pass", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-r.kick:
		}
	}
}

type found struct {
	xid XID
	q   Querier
}

// Pass runs one recovery pass over every shard.
func (r *Resolver) Pass(ctx context.Context) Report {
	now := r.cfg.now()
	rep := Report{At: now}
	if debugSkipRecovery() {
		return rep
	}
	shards := r.dbs.Shards()
	var mu sync.Mutex
	var all []found
	var conns []Querier
	complete := true
	var wg sync.WaitGroup
	for _, sh := range shards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q, xids, err := r.recover(ctx, sh)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				complete = false
				rep.Errors = append(rep.Errors, fmt.Errorf("shard %s: %w", sh, err))
				return
			}
			conns = append(conns, q)
			for _, x := range xids {
				all = append(all, found{xid: x, q: q})
			}
		}()
	}
	wg.Wait()
	defer func() {
		for _, q := range conns {
			q.Close()
		}
	}()
	rep.Found = len(all)

	var ids []uint64
	for _, f := range all {
		if !slices.Contains(ids, f.xid.TxID) {
			ids = append(ids, f.xid.TxID)
		}
	}
	decisions := map[uint64]client.Decision{}
	if len(ids) > 0 {
		recs, err := r.coord.Status(ctx, ids)
		if err != nil {
			rep.Errors = append(rep.Errors, fmt.Errorf("coordinator status: %w", err))
			r.finish(&rep, all, nil)
			return rep
		}
		for _, rec := range recs {
			decisions[rec.TxID] = rec.Decision
		}
	}

	r.mu.Lock()
	seen := map[XID]bool{}
	for _, f := range all {
		seen[f.xid] = true
		if _, ok := r.firstSeen[f.xid]; !ok {
			r.firstSeen[f.xid] = now
		}
	}
	for x := range r.firstSeen {
		if !seen[x] {
			delete(r.firstSeen, x)
		}
	}
	r.mu.Unlock()

	// Abandoned transactions: record abort before touching a branch. The
	// compare-and-set tells us if a commit won meanwhile.
	for _, id := range ids {
		if decisions[id] != client.Unknown {
			continue
		}
		oldest := now
		var shardsOf []string
		for _, f := range all {
			if f.xid.TxID == id {
				shardsOf = append(shardsOf, f.xid.Shard)
				if t := r.seenAt(f.xid); t.Before(oldest) {
					oldest = t
				}
			}
		}
		if now.Sub(oldest) < r.cfg.AbandonAfter {
			continue
		}
		d, err := r.coord.Decide(ctx, id, client.Abort, shardsOf)
		if err != nil {
			rep.Errors = append(rep.Errors, fmt.Errorf("record abort of %d: %w", id, err))
			continue
		}
		decisions[id] = d
		if d == client.Abort {
			rep.PresumedAbort++
			r.cfg.Metrics.resolved.WithLabelValues("presumed_abort").Inc()
		}
	}

	unfinished := map[uint64]bool{}
	for _, f := range all {
		var stmt, action string
		switch decisions[f.xid.TxID] {
		case client.Commit:
			stmt, action = f.xid.Commit(), "commit"
		case client.Abort:
			stmt, action = f.xid.Rollback(), "rollback"
		default:
			unfinished[f.xid.TxID] = true
			rep.InDoubt = append(rep.InDoubt, InDoubt{XID: f.xid, Since: r.seenAt(f.xid)})
			continue
		}
		err := f.q.Exec(ctx, stmt)
		switch {
		case err == nil:
			if action == "commit" {
				rep.Committed++
			} else {
				rep.RolledBack++
			}
			r.cfg.Metrics.resolved.WithLabelValues(action).Inc()
		case errNumber(err) == errXANotA:
			// Still attached to the session that is finishing it, or
			// finished a moment ago.
			unfinished[f.xid.TxID] = true
			rep.InDoubt = append(rep.InDoubt, InDoubt{XID: f.xid, Decision: decisions[f.xid.TxID], Since: r.seenAt(f.xid)})
		default:
			unfinished[f.xid.TxID] = true
			complete = false
			rep.InDoubt = append(rep.InDoubt, InDoubt{XID: f.xid, Decision: decisions[f.xid.TxID], Since: r.seenAt(f.xid)})
			rep.Errors = append(rep.Errors, fmt.Errorf("shard %s: %s: %w", f.xid.Shard, stmt, err))
		}
	}
	if complete {
		r.completeFinished(ctx, &rep, shards, unfinished, now)
	}
	r.finish(&rep, nil, nil)
	return rep
}

func (r *Resolver) seenAt(x XID) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.firstSeen[x]
}

// recover lists shard's prepared branches of ours; the connection stays
// open for the pass.
func (r *Resolver) recover(ctx context.Context, shard string) (Querier, []XID, error) {
	q, err := r.dbs.Open(ctx, shard)
	if err != nil {
		return nil, nil, err
	}
	rows, err := q.Query(ctx, "XA RECOVER")
	if err != nil {
		q.Close()
		return nil, nil, fmt.Errorf("XA RECOVER: %w", err)
	}
	var out []XID
	for _, row := range rows {
		if len(row) < 4 {
			continue
		}
		if x, ok := ParseRecovered(row[0], row[1], row[2], row[3]); ok {
			out = append(out, x)
		}
	}
	return q, out, nil
}

// completeFinished reports complete the unfinished decisions (older than
// CompleteAfter, on shards this resolver covers) of which this pass found
// no branch left.
func (r *Resolver) completeFinished(ctx context.Context, rep *Report, shards []string, unfinished map[uint64]bool, now time.Time) {
	recs, _, err := r.coord.List(ctx, false, 10000)
	if err != nil {
		rep.Errors = append(rep.Errors, fmt.Errorf("coordinator list: %w", err))
		return
	}
	var done []uint64
	for _, rec := range recs {
		if unfinished[rec.TxID] || now.Sub(rec.Decided) < r.cfg.CompleteAfter {
			continue
		}
		covered := true
		for _, s := range rec.Shards {
			covered = covered && slices.Contains(shards, s)
		}
		if covered {
			done = append(done, rec.TxID)
		}
	}
	if len(done) > 0 {
		if err := r.coord.Complete(ctx, done); err != nil {
			rep.Errors = append(rep.Errors, fmt.Errorf("coordinator complete: %w", err))
		}
	}
}

func (r *Resolver) finish(rep *Report, all []found, _ map[uint64]client.Decision) {
	for _, f := range all {
		rep.InDoubt = append(rep.InDoubt, InDoubt{XID: f.xid, Since: r.seenAt(f.xid)})
	}
	r.cfg.Metrics.inDoubt.Set(float64(len(rep.InDoubt)))
	r.mu.Lock()
	r.last = *rep
	r.mu.Unlock()
}
