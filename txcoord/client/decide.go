package client

import (
	"context"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-db/strata/txcoord/txpb"
)

// Decisions a proxy's sessions make at the same moment go to the group in
// one DecideBatch call instead of a call each: a gRPC call costs the proxy
// and the leader more CPU than the decision's share of a Raft entry, and
// under load every cross-shard commit makes one. A call carries what was
// queued when it started; at most maxDecideSenders are in flight, so a
// decision waits at most for one call to end before it goes.
const (
	maxDecideSenders = 2
	maxDecideBatch   = 1000 // the server takes up to 10,000
)

type decideReq struct {
	ctx  context.Context
	pb   *txpb.DecideRequest
	done chan decideResp // capacity 1
}

type decideResp struct {
	d   Decision
	err error
}

// Decide records d for txid as a compare-and-set and returns the decision
// in force: d, or the different decision recorded first. shards names the
// branches (kept for recovery and listing).
func (c *Client) Decide(ctx context.Context, txid uint64, d Decision, shards []string) (Decision, error) {
	r := &decideReq{ctx: ctx, done: make(chan decideResp, 1),
		pb: &txpb.DecideRequest{Txid: txid, Decision: d, Shards: shards, Owner: c.cfg.Owner}}
	c.dmu.Lock()
	if c.noBatch {
		c.dmu.Unlock()
		return c.decideOne(ctx, txid, d, shards)
	}
	c.pending = append(c.pending, r)
	if c.senders < maxDecideSenders {
		c.senders++
		go c.sendDecisions()
	}
	c.dmu.Unlock()
	select {
	case resp := <-r.done:
		return resp.d, resp.err
	case <-ctx.Done():
		// The call may still record it: an uncertain outcome, as when a
		// call of its own is cut short.
		return Unknown, ctx.Err()
	}
}

// sendDecisions sends what is queued, call after call, until nothing is.
func (c *Client) sendDecisions() {
	for {
		c.dmu.Lock()
		n := min(len(c.pending), maxDecideBatch)
		if n == 0 {
			c.senders--
			c.dmu.Unlock()
			return
		}
		batch := c.pending[:n:n]
		c.pending = append([]*decideReq(nil), c.pending[n:]...)
		c.dmu.Unlock()
		c.sendBatch(batch)
	}
}

func (c *Client) sendBatch(batch []*decideReq) {
	live := batch[:0:0]
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.done <- decideResp{err: err} // given up before it was sent
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	req := &txpb.DecideBatchRequest{Decisions: make([]*txpb.DecideRequest, len(live))}
	for i, r := range live {
		req.Decisions[i] = r.pb
	}
	var results []*txpb.DecideResult
	err := c.call(context.Background(), func(ctx context.Context, cl txpb.DecisionsClient) (string, error) {
		resp, err := cl.DecideBatch(ctx, req)
		if err != nil {
			return "", err
		}
		results = resp.GetResults()
		return resp.GetLeader(), nil
	})
	if status.Code(err) == codes.Unimplemented {
		c.dmu.Lock()
		c.noBatch = true
		c.dmu.Unlock()
		for _, r := range live {
			go func() {
				d, err := c.decideOne(r.ctx, r.pb.Txid, r.pb.Decision, r.pb.Shards)
				r.done <- decideResp{d: d, err: err}
			}()
		}
		return
	}
	if err == nil && len(results) != len(live) {
		err = fmt.Errorf("txcoord client: DecideBatch answered %d decisions of %d", len(results), len(live))
	}
	for i, r := range live {
		switch {
		case err != nil:
			r.done <- decideResp{err: err}
		case results[i].GetError() != "":
			r.done <- decideResp{d: results[i].GetDecision(), err: fmt.Errorf("%w: %s", ErrInvalid, results[i].GetError())}
		default:
			r.done <- decideResp{d: results[i].GetDecision()}
		}
	}
}
