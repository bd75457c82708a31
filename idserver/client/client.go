// Package client is the Go client of Strata's ID service (package
// idserver), over gRPC. It is what the shard proxy embeds.
//
// Fetch asks the service for IDs on every call; its results are ordered
// across all clients: every ID it returns is above every ID of the tag that
// any call (from any client) had returned before this call began.
//
// Next serves IDs from a local buffer that it refills ahead of need, so
// almost every call costs a mutex and no network. The IDs one Sequence
// hands out are unique and strictly increasing, but they are not ordered
// with other clients' IDs: a buffer holds a range fetched earlier, and
// another client may meanwhile have fetched, and handed out, higher IDs.
// Use Fetch where the global order matters.
//
// The client fails over between the nodes it is given: it sends to the
// node that last answered, moves to the leader a node names, and on an
// unavailable node tries the next, within Config.RetryFor.
package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/strata-db/strata/idserver/idpb"
)

// Config configures a Client. Start from DefaultConfig and set Addrs.
type Config struct {
	// Addrs are the gRPC addresses of the service's nodes (any subset works;
	// all of them fail over best).
	Addrs []string
	// Batch is how many IDs a Sequence fetches at first; it doubles while
	// batches last under half a second, up to MaxBatch, and halves while
	// they last over five seconds. Bigger batches mean fewer round trips and
	// more IDs lost (never repeated) when a process exits.
	Batch    uint64
	MaxBatch uint64
	// Timeout bounds one attempt on one node; RetryFor bounds a call's
	// attempts over all nodes when the caller's context has no deadline.
	Timeout  time.Duration
	RetryFor time.Duration
	// DialOptions replace the default (plaintext) gRPC dial options.
	DialOptions []grpc.DialOption
}

// DefaultConfig returns the defaults; Addrs is left empty.
func DefaultConfig() Config {
	return Config{Batch: 1000, MaxBatch: 100000, Timeout: 2 * time.Second, RetryFor: 15 * time.Second}
}

// Validate names every field that is wrong.
func (c Config) Validate() error {
	var errs []error
	if len(c.Addrs) == 0 {
		errs = append(errs, errors.New("idserver client: config: Addrs: at least one address required"))
	}
	for i, a := range c.Addrs {
		if a == "" {
			errs = append(errs, fmt.Errorf("idserver client: config: Addrs[%d]: empty", i))
		}
	}
	if c.Batch < 1 {
		errs = append(errs, errors.New("idserver client: config: Batch: must be at least 1"))
	}
	if c.MaxBatch < c.Batch {
		errs = append(errs, fmt.Errorf("idserver client: config: MaxBatch: %d is below Batch %d", c.MaxBatch, c.Batch))
	}
	if c.Timeout <= 0 {
		errs = append(errs, errors.New("idserver client: config: Timeout: must be positive"))
	}
	if c.RetryFor < c.Timeout {
		errs = append(errs, fmt.Errorf("idserver client: config: RetryFor: %v is below Timeout %v", c.RetryFor, c.Timeout))
	}
	return errors.Join(errs...)
}

// Range is the IDs Start, Start+1, ..., Start+Count-1.
type Range struct{ Start, Count uint64 }

// Client talks to the ID service. Safe for concurrent use.
type Client struct {
	cfg     Config
	conns   []*grpc.ClientConn
	stubs   []idpb.IDsClient
	index   map[string]int
	pref    atomic.Int64 // index of the node to try first
	closed  atomic.Bool
	seqMu   sync.Mutex
	seqs    map[string]*Sequence
	bgCtx   context.Context
	bgStop  context.CancelFunc
	bgMu    sync.Mutex // orders bgGroup.Add before Close's Wait
	bgDone  bool
	bgGroup sync.WaitGroup
}

// New makes a client. It connects lazily: New does not fail when nodes are
// down.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	opts := cfg.DialOptions
	if opts == nil {
		opts = []grpc.DialOption{
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			// Reconnect to a restarted node within a second or two, not
			// gRPC's default of up to two minutes.
			grpc.WithConnectParams(grpc.ConnectParams{
				Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
				MinConnectTimeout: time.Second,
			}),
		}
	}
	c := &Client{cfg: cfg, index: map[string]int{}, seqs: map[string]*Sequence{}}
	c.bgCtx, c.bgStop = context.WithCancel(context.Background())
	for i, a := range cfg.Addrs {
		cc, err := grpc.NewClient(a, opts...)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("idserver client: %s: %w", a, err)
		}
		c.conns = append(c.conns, cc)
		c.stubs = append(c.stubs, idpb.NewIDsClient(cc))
		c.index[a] = i
	}
	return c, nil
}

// Close closes the connections; buffered IDs are dropped (a gap, never a
// repeat). Idempotent.
func (c *Client) Close() error {
	if c == nil || !c.closed.CompareAndSwap(false, true) {
		return nil
	}
	c.bgStop()
	c.bgMu.Lock()
	c.bgDone = true
	c.bgMu.Unlock()
	c.bgGroup.Wait()
	var errs []error
	for _, cc := range c.conns {
		errs = append(errs, cc.Close())
	}
	return errors.Join(errs...)
}

// ErrClosed is returned by calls after Close.
var ErrClosed = errors.New("idserver client: closed")

// retryable reports whether another node (or the same one, later) may
// succeed where this attempt failed.
func retryable(err error, parent context.Context) bool {
	if parent.Err() != nil {
		return false
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled, codes.Aborted:
		return true
	}
	return false
}

// do runs call against the preferred node, failing over to the others.
func (c *Client) do(ctx context.Context, call func(ctx context.Context, stub idpb.IDsClient) (leader string, err error)) error {
	if c.closed.Load() {
		return ErrClosed
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.RetryFor)
		defer cancel()
	}
	n := int64(len(c.stubs))
	pause := 10 * time.Millisecond
	var lastErr error
	for attempt := int64(0); ; attempt++ {
		i := c.pref.Load()
		actx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
		leader, err := call(actx, c.stubs[i])
		cancel()
		if err == nil {
			if j, ok := c.index[leader]; ok && int64(j) != i {
				c.pref.CompareAndSwap(i, int64(j))
			}
			return nil
		}
		lastErr = err
		if !retryable(err, ctx) || c.closed.Load() {
			return fmt.Errorf("idserver client: %s: %w", c.cfg.Addrs[i], err)
		}
		c.pref.CompareAndSwap(i, (i+1)%n)
		if (attempt+1)%n == 0 {
			// Every node failed once: an election is probably under way.
			select {
			case <-ctx.Done():
				return fmt.Errorf("idserver client: no node answered: %w", lastErr)
			case <-time.After(pause):
			}
			pause = min(2*pause, 300*time.Millisecond)
		}
	}
}

func fromPB(rs []*idpb.Range) []Range {
	out := make([]Range, len(rs))
	for i, r := range rs {
		out[i] = Range{Start: r.GetStart(), Count: r.GetCount()}
	}
	return out
}

// Fetch asks the service for count IDs of tag, returned as increasing
// ranges; ordered with every other client's Fetch (see the package doc).
func (c *Client) Fetch(ctx context.Context, tag string, count uint64) ([]Range, error) {
	var out []Range
	err := c.do(ctx, func(ctx context.Context, stub idpb.IDsClient) (string, error) {
		resp, err := stub.Next(ctx, &idpb.NextRequest{Tag: tag, Count: count})
		if err != nil {
			return "", err
		}
		out = fromPB(resp.GetRanges())
		return resp.GetLeader(), nil
	})
	return out, err
}

// CreateTag creates a tag with a start value and a step (0: the service's
// default). It fails with codes.AlreadyExists if the tag exists.
func (c *Client) CreateTag(ctx context.Context, tag string, start, step uint64) error {
	return c.do(ctx, func(ctx context.Context, stub idpb.IDsClient) (string, error) {
		_, err := stub.CreateTag(ctx, &idpb.CreateTagRequest{Tag: tag, Start: start, Step: step})
		return "", err
	})
}

// Snowflake returns count snowflake IDs from one node's worker.
func (c *Client) Snowflake(ctx context.Context, count uint64) ([]Range, error) {
	var out []Range
	err := c.do(ctx, func(ctx context.Context, stub idpb.IDsClient) (string, error) {
		resp, err := stub.Snowflake(ctx, &idpb.SnowflakeRequest{Count: count})
		if err != nil {
			return "", err
		}
		out = fromPB(resp.GetRanges())
		return "", nil
	})
	return out, err
}

// Decoded is a snowflake ID taken apart.
type Decoded struct {
	ID       uint64
	Time     time.Time
	Worker   uint64
	Sequence uint64
}

// Decode takes a snowflake ID apart (with the service's layout).
func (c *Client) Decode(ctx context.Context, id uint64) (Decoded, error) {
	var d Decoded
	err := c.do(ctx, func(ctx context.Context, stub idpb.IDsClient) (string, error) {
		resp, err := stub.Decode(ctx, &idpb.DecodeRequest{Id: id})
		if err != nil {
			return "", err
		}
		d = Decoded{ID: resp.GetId(), Time: time.UnixMilli(resp.GetUnixMs()).UTC(), Worker: resp.GetWorker(), Sequence: resp.GetSequence()}
		return "", nil
	})
	return d, err
}

// Next returns the next ID of tag from the local buffer (see Sequence).
func (c *Client) Next(ctx context.Context, tag string) (uint64, error) {
	return c.Sequence(tag).Next(ctx)
}

// Sequence returns the buffered sequence of tag; the same one for the
// same tag.
func (c *Client) Sequence(tag string) *Sequence {
	c.seqMu.Lock()
	defer c.seqMu.Unlock()
	q := c.seqs[tag]
	if q == nil {
		q = &Sequence{c: c, tag: tag, batch: c.cfg.Batch}
		c.seqs[tag] = q
	}
	return q
}

// Sequence hands out one tag's IDs from a local buffer, refilled in the
// background when half of a batch is left. Its IDs are unique and strictly
// increasing, but not ordered with other clients' (see the package doc).
type Sequence struct {
	c   *Client
	tag string

	mu        sync.Mutex
	cur       Range
	queue     []Range
	left      uint64 // IDs in cur and queue
	fetch     *fetchOp
	batch     uint64
	lastFetch time.Time
}

type fetchOp struct {
	done chan struct{}
	err  error
}

// Next returns the next ID. It waits for a fetch only when the buffer is
// empty.
func (q *Sequence) Next(ctx context.Context) (uint64, error) {
	q.mu.Lock()
	for {
		if q.cur.Count == 0 && len(q.queue) > 0 {
			q.cur, q.queue = q.queue[0], q.queue[1:]
		}
		if q.cur.Count > 0 {
			id := q.cur.Start
			q.cur.Start++
			q.cur.Count--
			q.left--
			if q.fetch == nil && q.left < q.batch/2 {
				q.startFetch()
			}
			q.mu.Unlock()
			return id, nil
		}
		f := q.fetch
		if f == nil {
			f = q.startFetch()
		}
		q.mu.Unlock()
		select {
		case <-f.done:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
		if f.err != nil {
			return 0, f.err
		}
		q.mu.Lock()
	}
}

// startFetch fetches the next batch in the background; called with q.mu
// held. One fetch at a time keeps the buffer increasing.
func (q *Sequence) startFetch() *fetchOp {
	now := time.Now()
	if !q.lastFetch.IsZero() {
		switch el := now.Sub(q.lastFetch); {
		case el < 500*time.Millisecond:
			q.batch = min(2*q.batch, q.c.cfg.MaxBatch)
		case el > 5*time.Second:
			q.batch = max(q.batch/2, q.c.cfg.Batch)
		}
	}
	q.lastFetch = now
	f := &fetchOp{done: make(chan struct{})}
	q.fetch = f
	n := q.batch
	c := q.c
	c.bgMu.Lock()
	defer c.bgMu.Unlock()
	if c.bgDone {
		q.fetch, f.err = nil, ErrClosed
		close(f.done)
		return f
	}
	c.bgGroup.Add(1)
	go func() {
		defer c.bgGroup.Done()
		rs, err := c.Fetch(c.bgCtx, q.tag, n)
		q.mu.Lock()
		defer q.mu.Unlock()
		q.fetch = nil
		f.err = err
		close(f.done)
		for _, r := range rs {
			if r.Count > 0 {
				q.queue = append(q.queue, r)
				q.left += r.Count
			}
		}
	}()
	return f
}
