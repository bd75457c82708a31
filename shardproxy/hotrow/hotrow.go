package hotrow

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Config sizes a Combiner.
type Config struct {
	// MaxBatch bounds the statements combined into one round; the rest wait
	// for the next. Default 256: a round's statement grows by a few bytes
	// per combined write.
	MaxBatch int
}

// DefaultConfig is Config's defaults.
func DefaultConfig() Config { return Config{MaxBatch: 256} }

// Validate checks the config.
func (c Config) Validate() error {
	if c.MaxBatch < 1 {
		return fmt.Errorf("hotrow: max_batch %d, need at least 1", c.MaxBatch)
	}
	return nil
}

// Key names one row: the caller makes it unique per physical row (shard,
// table, primary key).
type Key string

// Round runs the requests of one round as one statement. It returns the
// outcome all of them share, or an error. An error wrapped by Alone (the
// server refused the statement, so it had no effect) makes each request
// of a round of several run on its own (the Do of each caller returns
// ErrFallback); any other error (the outcome is unknown, e.g. the
// connection broke) is every caller's, as it would be for a statement
// run alone.
type Round[R any, O any] func(ctx context.Context, reqs []R) (O, error)

// Alone wraps an error after which the requests of a round may each run on
// their own: the combined statement surely had no effect.
func Alone(err error) error { return &aloneErr{err} }

type aloneErr struct{ err error }

func (e *aloneErr) Error() string { return e.err.Error() }
func (e *aloneErr) Unwrap() error { return e.err }

// ErrFallback is returned by Do when the caller's request was part of a
// round of several whose combined statement failed with an Alone error:
// the caller runs its own statement.
var ErrFallback = errors.New("hotrow: the combined statement failed: run the statement alone")

// Combiner queues requests per row and runs them in rounds. The zero value
// is not usable: use New. A nil *Combiner combines nothing (Do returns
// ErrFallback at once).
type Combiner[R any, O any] struct {
	cfg  Config
	mu   sync.Mutex
	rows map[Key]*queue[R, O]

	rounds    prometheus.Counter
	perRound  prometheus.Histogram
	fallbacks prometheus.Counter
}

type queue[R any, O any] struct {
	running bool
	waiting []*call[R, O]
}

type call[R any, O any] struct {
	req  R
	done chan struct{}
	// lead is set when the call must run the next round (batch) itself.
	lead  []*call[R, O]
	out   O
	err   error
	taken bool // in a round: its outcome will come
}

// New returns a Combiner whose metrics register with reg (nil: none):
// strata_proxy_hot_row_rounds_total, strata_proxy_hot_row_statements_per_round
// and strata_proxy_hot_row_fallbacks_total.
func New[R any, O any](cfg Config, reg prometheus.Registerer) (*Combiner[R, O], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Combiner[R, O]{cfg: cfg, rows: map[Key]*queue[R, O]{},
		rounds: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_proxy_hot_row_rounds_total", Help: "Rounds of combined hot-row writes run (one statement each).",
		}),
		perRound: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "strata_proxy_hot_row_statements_per_round", Help: "Client statements combined into one hot-row round.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256},
		}),
		fallbacks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_proxy_hot_row_fallbacks_total", Help: "Rounds whose combined statement failed, after which each statement ran alone.",
		}),
	}
	if reg != nil {
		for _, m := range []prometheus.Collector{c.rounds, c.perRound, c.fallbacks} {
			if err := reg.Register(m); err != nil {
				return nil, fmt.Errorf("hotrow: metrics: %w", err)
			}
		}
	}
	return c, nil
}

// Do runs req for row key: at once when no round runs for the row, else
// in the next round, combined with whatever else has queued. It returns
// the round's outcome, ErrFallback when the combined statement failed (the
// caller then runs its request alone), or ctx's error when ctx ended
// before the request joined a round (then it did not run).
func (c *Combiner[R, O]) Do(ctx context.Context, key Key, req R, round Round[R, O]) (O, error) {
	var zero O
	if c == nil {
		return zero, ErrFallback
	}
	me := &call[R, O]{req: req, done: make(chan struct{})}
	c.mu.Lock()
	q := c.rows[key]
	if q == nil {
		q = &queue[R, O]{}
		c.rows[key] = q
	}
	if !q.running {
		q.running = true
		me.taken = true
		c.mu.Unlock()
		c.run(ctx, key, q, []*call[R, O]{me}, round)
		return me.out, me.err
	}
	q.waiting = append(q.waiting, me)
	c.mu.Unlock()
	select {
	case <-me.done:
	case <-ctx.Done():
		c.mu.Lock()
		if !me.taken {
			for i, w := range q.waiting {
				if w == me {
					q.waiting = append(q.waiting[:i], q.waiting[i+1:]...)
					break
				}
			}
			c.mu.Unlock()
			return zero, ctx.Err()
		}
		c.mu.Unlock()
		<-me.done // in a round already: its outcome is on its way
	}
	if me.lead != nil {
		batch := me.lead
		me.lead = nil
		c.run(ctx, key, q, batch, round)
	}
	return me.out, me.err
}

// run runs one round for batch (whose first call is the caller's), gives
// each call its outcome, and hands the next round to a waiting call.
func (c *Combiner[R, O]) run(ctx context.Context, key Key, q *queue[R, O], batch []*call[R, O], round Round[R, O]) {
	reqs := make([]R, len(batch))
	for i, b := range batch {
		reqs[i] = b.req
	}
	// The round runs to its end even when the leader's client goes away:
	// the others wait for it.
	out, err := round(context.WithoutCancel(ctx), reqs)
	c.rounds.Inc()
	c.perRound.Observe(float64(len(batch)))
	var alone *aloneErr
	if errors.As(err, &alone) {
		if len(batch) > 1 {
			c.fallbacks.Inc()
			err = ErrFallback
		} else {
			err = alone.err // the statement alone: its own outcome
		}
	}
	c.mu.Lock()
	var next []*call[R, O]
	if n := min(len(q.waiting), c.cfg.MaxBatch); n > 0 {
		next = q.waiting[:n:n]
		q.waiting = q.waiting[n:]
		for _, w := range next {
			w.taken = true
		}
	} else {
		q.running = false
		delete(c.rows, key)
	}
	c.mu.Unlock()
	for i, b := range batch {
		b.out, b.err = out, err
		if i > 0 {
			close(b.done)
		}
	}
	if next != nil {
		// The first waiter leads the next round from its own goroutine.
		next[0].lead = next
		close(next[0].done)
	}
}
