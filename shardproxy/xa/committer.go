package xa

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/strata-db/strata/txcoord/client"
)

// Conn is one branch's backend connection: the one its statements ran on
// (an XA branch is bound to its session until it is prepared).
type Conn interface {
	// Exec runs the statements in order, stopping at the first error; an
	// implementation may send them in one round trip.
	Exec(ctx context.Context, stmts ...string) error
	// Discard closes the connection instead of reusing it. The server then
	// rolls back a branch that is not prepared, and detaches a prepared
	// one so that recovery can finish it from another connection.
	Discard()
}

// Sender is a Conn that can begin an exchange without waiting for its
// answer (BackendConn does): the committer then begins every branch's
// exchange from one goroutine and collects the answers, which the shards
// work on meanwhile, instead of running a goroutine per branch (on a
// machine whose cores are all busy, each goroutine hand-off wakes a thread).
type Sender interface {
	Conn
	// Send begins Exec(ctx, stmts...); wait returns its outcome. Until
	// wait returns the connection must not be used otherwise.
	Send(ctx context.Context, stmts ...string) (wait func() error, err error)
}

// Coordinator is what the committer and the resolver ask of txcoord (its
// client.Client).
type Coordinator interface {
	Decide(ctx context.Context, txid uint64, d client.Decision, shards []string) (client.Decision, error)
	Status(ctx context.Context, txids []uint64) ([]client.Record, error)
	Complete(ctx context.Context, txids []uint64) error
	List(ctx context.Context, includeCompleted bool, limit int) ([]client.Record, uint64, error)
}

// Branch is one shard's part of a transaction, in XA state ACTIVE.
type Branch struct {
	Shard string
	Conn  Conn
	// Wrote is false when only reads ran on the branch: its outcome then
	// changes nothing, so it commits in one phase and needs no decision.
	Wrote bool
	// RolledBack: the server rolled the branch back itself (it answered a
	// statement with a deadlock), leaving it ROLLBACK ONLY, where XA END
	// fails (XAER_RMFAIL): Rollback ends it with XA ROLLBACK alone.
	RolledBack bool
}

// Outcome says what became of a transaction whose commit failed.
type Outcome int

const (
	// RolledBack: no branch committed.
	RolledBack Outcome = iota
	// Unknown: the decision may or may not be recorded, or a one-phase
	// commit's answer was lost; recovery finishes the branches as the
	// coordinator's record says.
	Unknown
)

// CommitError is a failed commit: which transaction, shard and step, and
// what became of it.
type CommitError struct {
	TxID    uint64
	Shard   string // "" when no one shard failed (the decision)
	Step    string // "prepare", "decision", "commit"
	Outcome Outcome
	Err     error
}

func (e *CommitError) Error() string {
	where := ""
	if e.Shard != "" {
		where = " on shard " + e.Shard
	}
	switch e.Outcome {
	case RolledBack:
		return fmt.Sprintf("cross-shard transaction %d rolled back: %s failed%s: %v", e.TxID, e.Step, where, e.Err)
	default:
		return fmt.Sprintf("cross-shard transaction %d: outcome unknown, recovery will finish it: %s failed%s: %v", e.TxID, e.Step, where, e.Err)
	}
}

func (e *CommitError) Unwrap() error { return e.Err }

// ErrFailpoint is returned by a failpoint that simulates a crash.
var ErrFailpoint = errors.New("xa: failpoint")

// CommitterConfig configures a Committer. Start from DefaultCommitterConfig.
type CommitterConfig struct {
	// DecisionTimeout bounds recording the decision (retries across
	// coordinator nodes included).
	DecisionTimeout time.Duration
	// CompleteBatch and CompleteDelay bound how many finished transactions
	// one Complete call reports and how long one waits to be reported.
	CompleteBatch int
	CompleteDelay time.Duration
	// Failpoint, when set, is called at each step ("prepared", "decided")
	// of a two-phase commit; an error makes the committer behave as if the
	// process died there: it drops the branches' connections and returns.
	// For tests only.
	Failpoint func(step string, txid uint64) error
	Metrics   *Metrics
	Logger    *slog.Logger
}

// DefaultCommitterConfig returns the defaults.
func DefaultCommitterConfig() CommitterConfig {
	return CommitterConfig{DecisionTimeout: 10 * time.Second, CompleteBatch: 256, CompleteDelay: 50 * time.Millisecond}
}

// Committer finishes transactions' XA branches. Safe for concurrent use.
type Committer struct {
	cfg   CommitterConfig
	coord Coordinator

	done     chan uint64 // committed transactions to report complete
	stop     chan struct{}
	wg       sync.WaitGroup
	stopOnce sync.Once
}

// NewCommitter makes a committer recording decisions with coord.
func NewCommitter(cfg CommitterConfig, coord Coordinator) *Committer {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	if cfg.CompleteBatch < 1 {
		cfg.CompleteBatch = 1
	}
	c := &Committer{cfg: cfg, coord: coord, done: make(chan uint64, 4096), stop: make(chan struct{})}
	c.wg.Add(1)
	go c.completeLoop()
	return c
}

// Close reports the last completions and stops.
func (c *Committer) Close() {
	c.stopOnce.Do(func() { close(c.stop) })
	c.wg.Wait()
}

// Commit commits the transaction txid made of branches, all ACTIVE. With
// at most one branch that wrote, every branch commits in one phase (no
// decision: the only branch whose outcome matters decides alone). With
// more, it prepares every branch in parallel, records the decision, and
// commits in parallel; it returns nil once the decision is recorded,
// whatever happens to the commits after it (recovery finishes them). A
// failure before the decision rolls everything back and returns a
// *CommitError naming the shard and step.
func (c *Committer) Commit(ctx context.Context, txid uint64, branches []Branch) error {
	start := time.Now()
	m := c.cfg.Metrics
	writers := 0
	for _, b := range branches {
		if b.Wrote {
			writers++
		}
	}
	if writers <= 1 {
		err := c.commitOnePhase(ctx, txid, branches)
		if err == nil {
			m.onePhase.Inc()
		}
		return err
	}

	// Phase one: writers prepare; readers commit at once (their outcome
	// changes nothing and their locks are no longer needed: every lock the
	// transaction takes is already taken).
	errs := c.exchange(ctx, branches, func(b Branch) []string {
		x := XID{TxID: txid, Shard: b.Shard}
		if !b.Wrote {
			return []string{x.End(), x.CommitOnePhase()}
		}
		return []string{x.End(), x.Prepare()}
	})
	for i, b := range branches {
		if !b.Wrote && errs[i] != nil {
			b.Conn.Discard()
			errs[i] = nil
		}
	}
	shards := make([]string, 0, writers)
	for _, b := range branches {
		if b.Wrote {
			shards = append(shards, b.Shard)
		}
	}
	for i, err := range errs {
		if err != nil {
			c.abort(ctx, txid, branches, errs, shards)
			m.aborts.Inc()
			return &CommitError{TxID: txid, Shard: branches[i].Shard, Step: "prepare", Outcome: RolledBack, Err: err}
		}
	}
	if err := c.failpoint("prepared", txid, branches); err != nil {
		return err
	}

	dctx, cancel := context.WithTimeout(ctx, c.cfg.DecisionTimeout)
	decideStart := time.Now()
	d, err := c.coord.Decide(dctx, txid, client.Commit, shards)
	cancel()
	m.decision.Observe(time.Since(decideStart).Seconds())
	switch {
	case err != nil:
		// The decision may be recorded or not: leave the prepared
		// branches to recovery, detached from these connections.
		c.dropWriters(branches)
		m.unknown.Inc()
		return &CommitError{TxID: txid, Step: "decision", Outcome: Unknown, Err: err}
	case d != client.Commit:
		// Recovery presumed abort (we were slower than abandon_after).
		c.abort(ctx, txid, branches, errs, nil)
		m.aborts.Inc()
		return &CommitError{TxID: txid, Step: "decision", Outcome: RolledBack, Err: errors.New("the coordinator had already recorded abort for it (it took longer than transactions.abandon_after)")}
	}
	if err := c.failpoint("decided", txid, branches); err != nil {
		return err
	}

	if debugLeavePrepared() {
		c.dropWriters(branches)
		m.commits.Inc()
		return nil
	}

	// Phase two: the transaction is committed; what fails now is left to
	// recovery.
	errs = c.exchange(ctx, branches, func(b Branch) []string {
		if !b.Wrote {
			return nil
		}
		return []string{XID{TxID: txid, Shard: b.Shard}.Commit()}
	})
	finished := true
	for i, err := range errs {
		if err != nil {
			branches[i].Conn.Discard()
			finished = false
			c.cfg.Logger.Warn("xa: commit of a prepared branch failed; recovery will finish it", "txid", txid, "shard", branches[i].Shard, "err", err)
		}
	}
	if finished {
		select {
		case c.done <- txid:
		default: // a backlog: recovery completes it later
		}
	}
	m.commits.Inc()
	m.commitLatency.Observe(time.Since(start).Seconds())
	return nil
}

// commitOnePhase commits branches of which at most one wrote.
func (c *Committer) commitOnePhase(ctx context.Context, txid uint64, branches []Branch) error {
	errs := c.exchange(ctx, branches, func(b Branch) []string {
		x := XID{TxID: txid, Shard: b.Shard}
		return []string{x.End(), x.CommitOnePhase()}
	})
	for i, err := range errs {
		if err != nil {
			branches[i].Conn.Discard()
		}
		if err != nil && branches[i].Wrote {
			out := Unknown
			if errNumber(err) != 0 {
				out = RolledBack // the server answered: nothing was committed
			}
			return &CommitError{TxID: txid, Shard: branches[i].Shard, Step: "commit", Outcome: out, Err: err}
		}
	}
	return nil
}

// abort records abort (best effort: no commit can be recorded without
// us, so rolling back is safe either way) and rolls every branch back.
// errs[i] non-nil marks a branch whose prepare failed.
func (c *Committer) abort(ctx context.Context, txid uint64, branches []Branch, errs []error, shards []string) {
	if shards != nil {
		dctx, cancel := context.WithTimeout(ctx, c.cfg.DecisionTimeout/4)
		if _, err := c.coord.Decide(dctx, txid, client.Abort, shards); err != nil {
			c.cfg.Logger.Debug("xa: recording abort failed (rolling back anyway)", "txid", txid, "err", err)
		}
		cancel()
	}
	rb := c.exchange(ctx, branches, func(b Branch) []string {
		if !b.Wrote {
			return nil
		}
		return []string{XID{TxID: txid, Shard: b.Shard}.Rollback()}
	})
	for i, err := range rb {
		if err != nil {
			// A branch whose prepare failed is rolled back by the server
			// when its connection closes.
			branches[i].Conn.Discard()
		}
	}
}

// Rollback rolls back every branch (all ACTIVE). A branch whose rollback
// fails has its connection dropped, which rolls it back too.
func (c *Committer) Rollback(ctx context.Context, txid uint64, branches []Branch) {
	errs := c.exchange(ctx, branches, func(b Branch) []string {
		x := XID{TxID: txid, Shard: b.Shard}
		if b.RolledBack {
			return []string{x.Rollback()}
		}
		return []string{x.End(), x.Rollback()}
	})
	for i, err := range errs {
		if err != nil {
			branches[i].Conn.Discard()
		}
	}
	c.cfg.Metrics.rollbacks.Inc()
}

func (c *Committer) failpoint(step string, txid uint64, branches []Branch) error {
	if c.cfg.Failpoint == nil {
		return nil
	}
	if err := c.cfg.Failpoint(step, txid); err != nil {
		c.dropWriters(branches)
		return &CommitError{TxID: txid, Step: step, Outcome: Unknown, Err: fmt.Errorf("%w: %w", ErrFailpoint, err)}
	}
	return nil
}

func (c *Committer) dropWriters(branches []Branch) {
	for _, b := range branches {
		if b.Wrote {
			b.Conn.Discard()
		}
	}
}

// exchange runs on every branch at once the statements stmts gives it (in
// one round trip; none: the branch is left alone) and returns each
// branch's error. Branches whose connections are Senders are begun from
// this goroutine and then waited for; others run on a goroutine each (the
// first on this one).
func (c *Committer) exchange(ctx context.Context, branches []Branch, stmts func(Branch) []string) []error {
	errs := make([]error, len(branches))
	waits := make([]func() error, len(branches))
	var wg sync.WaitGroup
	var here []int
	for i, b := range branches {
		q := stmts(b)
		if len(q) == 0 {
			continue
		}
		if sd, ok := b.Conn.(Sender); ok {
			waits[i], errs[i] = sd.Send(ctx, q...)
			continue
		}
		if len(here) == 0 {
			here = append(here, i)
			waits[i] = func() error { return b.Conn.Exec(ctx, q...) }
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = b.Conn.Exec(ctx, q...) }()
	}
	for i, w := range waits {
		if w != nil && errs[i] == nil {
			errs[i] = w()
		}
	}
	wg.Wait()
	return errs
}

// completeLoop reports finished transactions in batches.
func (c *Committer) completeLoop() {
	defer c.wg.Done()
	var batch []uint64
	t := time.NewTimer(time.Hour)
	t.Stop()
	flush := func() {
		if len(batch) == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.DecisionTimeout)
		if err := c.coord.Complete(ctx, batch); err != nil {
			c.cfg.Logger.Debug("xa: reporting completions failed; recovery will", "n", len(batch), "err", err)
		}
		cancel()
		batch = batch[:0]
	}
	for {
		select {
		case id := <-c.done:
			if len(batch) == 0 {
				t.Reset(c.cfg.CompleteDelay)
			}
			batch = append(batch, id)
			if len(batch) >= c.cfg.CompleteBatch {
				flush()
			}
		case <-t.C:
			flush()
		case <-c.stop:
		drain:
			for {
				select {
				case id := <-c.done:
					batch = append(batch, id)
				default:
					break drain
				}
			}
			flush()
			return
		}
	}
}
