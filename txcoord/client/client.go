// Package client is the Go client of the coordinator's Decisions API, for
// proxies: transaction ids handed out from locally buffered blocks,
// decisions, status, completion and listing, following the leader across
// the group's nodes and retrying where a call is safe to repeat.
//
// It imports only the generated API (txcoord/txpb) and gRPC, so a proxy
// does not link the coordinator itself.
package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/strata-db/strata/txcoord/txpb"
)

// Decision is a transaction's recorded outcome.
type Decision = txpb.Decision

const (
	Unknown = txpb.Decision_UNKNOWN
	Commit  = txpb.Decision_COMMIT
	Abort   = txpb.Decision_ABORT
)

// Record is a transaction's recorded decision.
type Record struct {
	TxID        uint64
	Decision    Decision
	Shards      []string
	Owner       string
	Decided     time.Time
	Completed   time.Time // zero while a branch may be unfinished
	IsCompleted bool
}

// ErrInvalid is a call the coordinator refused for its arguments.
var ErrInvalid = errors.New("txcoord client: invalid argument")

// Config configures a Client. Start from DefaultConfig.
type Config struct {
	// Addrs are the gRPC addresses of the group's nodes (any subset works:
	// every node serves and forwards writes to the leader).
	Addrs []string
	// Owner names this process in the decisions it records.
	Owner string
	// BlockSize is how many transaction ids one Begin reserves; a new block
	// is fetched in the background when a quarter is left.
	BlockSize uint64
	// AttemptTimeout bounds one attempt at one node; a call whose context
	// has no deadline gets CallTimeout in all.
	AttemptTimeout, CallTimeout time.Duration
}

// DefaultConfig returns a config for the local coordinator of `strata up`.
func DefaultConfig() Config {
	return Config{Addrs: []string{"127.0.0.1:9091"}, BlockSize: 1024, AttemptTimeout: 2 * time.Second, CallTimeout: 10 * time.Second}
}

// Validate reports every field that is wrong, each named.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("txcoord client: config: %s: %s", field, fmt.Sprintf(format, args...)))
	}
	if len(c.Addrs) == 0 {
		bad("Addrs", "at least one coordinator address is required")
	}
	for i, a := range c.Addrs {
		host, port, err := net.SplitHostPort(a)
		if err != nil || host == "" {
			bad(fmt.Sprintf("Addrs[%d]", i), "%q is not host:port", a)
			continue
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			bad(fmt.Sprintf("Addrs[%d]", i), "%q: port is not in 1..65535", a)
		}
	}
	if c.BlockSize < 1 || c.BlockSize > 1_000_000 {
		bad("BlockSize", "%d is not in [1, 1000000]", c.BlockSize)
	}
	if c.AttemptTimeout < time.Millisecond {
		bad("AttemptTimeout", "%v is below 1ms", c.AttemptTimeout)
	}
	if c.CallTimeout < c.AttemptTimeout {
		bad("CallTimeout", "%v is below AttemptTimeout %v", c.CallTimeout, c.AttemptTimeout)
	}
	return errors.Join(errs...)
}

// Client calls a coordinator group. Safe for concurrent use.
type Client struct {
	cfg Config

	mu     sync.Mutex
	conns  map[string]*grpc.ClientConn
	leader string // the address to try first
	closed bool

	idMu      sync.Mutex
	next, end uint64        // the current block: next .. end-1
	spare     [2]uint64     // a block fetched ahead: start, end
	fetching  chan struct{} // non-nil while a Begin is in flight
	fetchErr  error

	// Decisions due together go in one DecideBatch call (decide.go).
	dmu     sync.Mutex
	pending []*decideReq
	senders int  // DecideBatch calls in flight
	noBatch bool // the group predates DecideBatch: one Decide each
}

// New makes a client; it connects lazily.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Client{cfg: cfg, conns: map[string]*grpc.ClientConn{}, leader: cfg.Addrs[0]}, nil
}

// Close closes the connections.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	var errs []error
	for _, cc := range c.conns {
		errs = append(errs, cc.Close())
	}
	c.conns = map[string]*grpc.ClientConn{}
	return errors.Join(errs...)
}

// order returns the addresses to try: the known leader first.
func (c *Client) order() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := []string{c.leader}
	for _, a := range c.cfg.Addrs {
		if a != c.leader {
			out = append(out, a)
		}
	}
	return out
}

func (c *Client) conn(addr string) (*grpc.ClientConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errors.New("txcoord client: closed")
	}
	if cc, ok := c.conns[addr]; ok {
		return cc, nil
	}
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	c.conns[addr] = cc
	return cc, nil
}

func (c *Client) noteLeader(addr string) {
	if addr == "" {
		return
	}
	c.mu.Lock()
	c.leader = addr
	c.mu.Unlock()
}

// call runs f against the nodes, the leader first, until it succeeds, the
// error is not worth retrying, or the call's time is up. Every use is
// idempotent (Begin at worst wastes ids), so a retry after an uncertain
// failure is safe.
func (c *Client) call(ctx context.Context, f func(ctx context.Context, cl txpb.DecisionsClient) (leader string, err error)) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.CallTimeout)
		defer cancel()
	}
	var last error
	backoff := 10 * time.Millisecond
	for {
		for _, addr := range c.order() {
			cc, err := c.conn(addr)
			if err != nil {
				return err
			}
			actx, cancel := context.WithTimeout(ctx, c.cfg.AttemptTimeout)
			leader, err := f(actx, txpb.NewDecisionsClient(cc))
			cancel()
			if err == nil {
				if leader != "" {
					c.noteLeader(leader)
				} else {
					c.noteLeader(addr)
				}
				return nil
			}
			switch status.Code(err) {
			case codes.InvalidArgument:
				return fmt.Errorf("%w: %s", ErrInvalid, status.Convert(err).Message())
			case codes.Unimplemented:
				return err // a node of an older version: no use asking again
			case codes.Canceled:
				if ctx.Err() != nil {
					return ctx.Err()
				}
			}
			last = fmt.Errorf("%s: %w", addr, err)
			if ctx.Err() != nil {
				return fmt.Errorf("txcoord client: %w (last: %w)", ctx.Err(), last)
			}
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("txcoord client: %w (last: %w)", ctx.Err(), last)
		}
		backoff = min(2*backoff, 200*time.Millisecond)
	}
}

// NextTxID returns a new transaction id from the local block, fetching a
// block when it runs out (and the next one ahead of time).
func (c *Client) NextTxID(ctx context.Context) (uint64, error) {
	for {
		c.idMu.Lock()
		if c.next < c.end {
			id := c.next
			c.next++
			if c.end-c.next < c.cfg.BlockSize/4 && c.spare[0] == 0 && c.fetching == nil {
				c.startFetch()
			}
			c.idMu.Unlock()
			return id, nil
		}
		if c.spare[0] != 0 {
			c.next, c.end = c.spare[0], c.spare[1]
			c.spare = [2]uint64{}
			c.idMu.Unlock()
			continue
		}
		if c.fetching == nil {
			c.startFetch()
		}
		wait := c.fetching
		c.idMu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
		c.idMu.Lock()
		err := c.fetchErr
		c.fetchErr = nil
		c.idMu.Unlock()
		if err != nil {
			return 0, err
		}
	}
}

// startFetch begins a Begin in the background; idMu is held.
func (c *Client) startFetch() {
	done := make(chan struct{})
	c.fetching = done
	go func() {
		var start uint64
		err := c.call(context.Background(), func(ctx context.Context, cl txpb.DecisionsClient) (string, error) {
			r, err := cl.Begin(ctx, &txpb.BeginRequest{Count: c.cfg.BlockSize})
			if err != nil {
				return "", err
			}
			start = r.GetStart()
			return r.GetLeader(), nil
		})
		c.idMu.Lock()
		if err == nil {
			c.spare = [2]uint64{start, start + c.cfg.BlockSize}
		}
		c.fetchErr = err
		c.fetching = nil
		c.idMu.Unlock()
		close(done)
	}()
}

// decideOne is Decide as a call of its own.
func (c *Client) decideOne(ctx context.Context, txid uint64, d Decision, shards []string) (Decision, error) {
	var got Decision
	err := c.call(ctx, func(ctx context.Context, cl txpb.DecisionsClient) (string, error) {
		r, err := cl.Decide(ctx, &txpb.DecideRequest{Txid: txid, Decision: d, Shards: shards, Owner: c.cfg.Owner})
		if err != nil {
			return "", err
		}
		got = r.GetDecision()
		return r.GetLeader(), nil
	})
	return got, err
}

// Status returns each transaction's record, in order (Decision Unknown
// when none is recorded). Unknown may be stale when answered by a lagging
// follower; Commit and Abort are final.
func (c *Client) Status(ctx context.Context, txids []uint64) ([]Record, error) {
	var out []Record
	err := c.call(ctx, func(ctx context.Context, cl txpb.DecisionsClient) (string, error) {
		r, err := cl.Status(ctx, &txpb.StatusRequest{Txids: txids})
		if err != nil {
			return "", err
		}
		out = out[:0]
		for _, p := range r.GetRecords() {
			out = append(out, fromPB(p))
		}
		return r.GetLeader(), nil
	})
	return out, err
}

// Complete says every branch of txids is finished.
func (c *Client) Complete(ctx context.Context, txids []uint64) error {
	return c.call(ctx, func(ctx context.Context, cl txpb.DecisionsClient) (string, error) {
		r, err := cl.Complete(ctx, &txpb.CompleteRequest{Txids: txids})
		if err != nil {
			return "", err
		}
		return r.GetLeader(), nil
	})
}

// List returns recorded decisions, oldest first, and the next txid the
// group will hand out.
func (c *Client) List(ctx context.Context, includeCompleted bool, limit int) ([]Record, uint64, error) {
	var out []Record
	var next uint64
	err := c.call(ctx, func(ctx context.Context, cl txpb.DecisionsClient) (string, error) {
		r, err := cl.List(ctx, &txpb.ListRequest{IncludeCompleted: includeCompleted, Limit: uint32(limit)})
		if err != nil {
			return "", err
		}
		out = out[:0]
		for _, p := range r.GetRecords() {
			out = append(out, fromPB(p))
		}
		next = r.GetNextTxid()
		return r.GetLeader(), nil
	})
	return out, next, err
}

func fromPB(p *txpb.TxRecord) Record {
	r := Record{TxID: p.GetTxid(), Decision: p.GetDecision(), Shards: p.GetShards(), Owner: p.GetOwner(), IsCompleted: p.GetCompletedUnixMs() != 0}
	if p.GetDecidedUnixMs() != 0 {
		r.Decided = time.UnixMilli(p.GetDecidedUnixMs())
	}
	if r.IsCompleted {
		r.Completed = time.UnixMilli(p.GetCompletedUnixMs())
	}
	return r
}

// SeataGlobal is one open Seata global transaction, as a node's replica of
// the TC's state has it.
type SeataGlobal struct {
	XID, Name, Status string
	Begin             time.Time
	Resources         []string // each branch's resource
}

// SeataList returns the Seata TC's open global transactions (at most
// limit; 0: 1000) from the first node that answers: any node's replica will
// do for a listing. A node not running the TC answers Unimplemented.
func (c *Client) SeataList(ctx context.Context, limit int) ([]SeataGlobal, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.CallTimeout)
		defer cancel()
	}
	var last error
	for _, addr := range c.order() {
		cc, err := c.conn(addr)
		if err != nil {
			return nil, err
		}
		actx, cancel := context.WithTimeout(ctx, c.cfg.AttemptTimeout)
		r, err := txpb.NewSeataAdminClient(cc).ListGlobal(actx, &txpb.ListGlobalRequest{Limit: uint32(max(limit, 0))})
		cancel()
		if err != nil {
			last = fmt.Errorf("%s: %w", addr, err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		var out []SeataGlobal
		for _, g := range r.GetGlobals() {
			out = append(out, SeataGlobal{XID: g.GetXid(), Name: g.GetName(), Status: g.GetStatus(),
				Begin: time.UnixMilli(g.GetBeginMs()), Resources: g.GetResources()})
		}
		return out, nil
	}
	return nil, fmt.Errorf("txcoord client: seata list: %w", last)
}
