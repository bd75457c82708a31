package xa

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/strata-db/strata/shardproxy/backend"
)

// BackendConn is a branch's backend connection as the proxy holds it.
type BackendConn struct {
	C *backend.Conn
	// State is the session's variables (the connection already has them:
	// passing them again sends nothing).
	State *backend.State
	// Timeout bounds each exchange (0: none).
	Timeout time.Duration
}

// Exec sends every statement in one round trip.
func (b BackendConn) Exec(ctx context.Context, stmts ...string) error {
	if len(stmts) == 0 {
		return nil
	}
	pre := strings.Join(stmts[:len(stmts)-1], ";")
	_, _, err := b.C.Exec(ctx, stmts[len(stmts)-1], backend.ExecOptions{State: b.State, Pre: pre, Timeout: b.Timeout})
	return err
}

// Send begins Exec: every statement in one packet; wait reads the answer.
func (b BackendConn) Send(ctx context.Context, stmts ...string) (wait func() error, err error) {
	if len(stmts) == 0 {
		return func() error { return nil }, nil
	}
	pre := strings.Join(stmts[:len(stmts)-1], ";")
	x, err := b.C.Send(ctx, stmts[len(stmts)-1], backend.ExecOptions{State: b.State, Pre: pre, Timeout: b.Timeout})
	if err != nil {
		return nil, err
	}
	return func() error { _, _, err := x.Receive(); return err }, nil
}

var _ Sender = BackendConn{}

// Discard marks the connection broken: the pool closes it when it is put
// back.
func (b BackendConn) Discard() { b.C.MarkBroken() }

// ClusterPrimaries is Primaries over the proxy's backend cluster: every
// shard's primary as its router sees it now.
type ClusterPrimaries struct {
	Cluster *backend.Cluster
	Timeout time.Duration
}

// Shards lists the cluster's shards.
func (p ClusterPrimaries) Shards() []string { return p.Cluster.ShardNames() }

// Open takes a connection to shard's primary from its pool.
func (p ClusterPrimaries) Open(ctx context.Context, shard string) (Querier, error) {
	t, err := p.Cluster.Route(ctx, shard, false, &backend.RouteHint{ForcePrimary: true})
	if err != nil {
		return nil, err
	}
	c, err := t.Pool.Get(ctx, nil)
	if err != nil {
		if t.Done != nil {
			t.Done(err)
		}
		return nil, fmt.Errorf("%s: %w", t.Pool, err)
	}
	return &poolQuerier{c: c, t: t, timeout: p.Timeout}, nil
}

type poolQuerier struct {
	c       *backend.Conn
	t       backend.Target
	timeout time.Duration
}

func (q *poolQuerier) Query(ctx context.Context, query string) ([][]string, error) {
	res, _, err := q.c.Exec(ctx, query, backend.ExecOptions{State: q.c.State(), Timeout: q.timeout})
	if err != nil {
		return nil, err
	}
	out := make([][]string, len(res.Rows))
	for i, row := range res.Rows {
		out[i] = make([]string, len(row))
		for j, v := range row {
			out[i][j] = v.ToString()
		}
	}
	return out, nil
}

func (q *poolQuerier) Exec(ctx context.Context, query string) error {
	_, _, err := q.c.Exec(ctx, query, backend.ExecOptions{State: q.c.State(), Timeout: q.timeout})
	return err
}

func (q *poolQuerier) Close() error {
	q.t.Pool.Put(q.c)
	if q.t.Done != nil {
		q.t.Done(nil)
	}
	return nil
}
