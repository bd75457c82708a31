package backend

import (
	"context"
	"fmt"
	"sync/atomic"

	"vitess.io/vitess/go/mysql/sqlerror"
)

// ShardSpec names a shard's servers, as host:port.
type ShardSpec struct {
	Name     string
	Primary  string
	Replicas []string
}

// Shard is a shard's pools.
type Shard struct {
	Name     string
	Primary  *Pool
	Replicas []*Pool
}

// Cluster holds one pool per server of every shard, and the Router that
// picks among them.
type Cluster struct {
	opts   Options
	shards map[string]*Shard
	order  []string
	router Router
	States States
}

// NewCluster creates the pools (connections are opened on first use and by
// the health checks) with the PrimaryRouter.
func NewCluster(specs []ShardSpec, opts Options) (*Cluster, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	c := &Cluster{opts: opts, shards: map[string]*Shard{}}
	for _, s := range specs {
		if _, dup := c.shards[s.Name]; dup {
			c.Close()
			return nil, fmt.Errorf("backend: shard %q twice", s.Name)
		}
		p, err := newPool(s.Name, Primary, s.Primary, &c.opts)
		if err != nil {
			c.Close()
			return nil, err
		}
		sh := &Shard{Name: s.Name, Primary: p}
		c.shards[s.Name] = sh
		c.order = append(c.order, s.Name)
		for _, r := range s.Replicas {
			rp, err := newPool(s.Name, Replica, r, &c.opts)
			if err != nil {
				c.Close()
				return nil, err
			}
			sh.Replicas = append(sh.Replicas, rp)
		}
	}
	c.router = PrimaryRouter{c}
	return c, nil
}

// SetRouter replaces the Router (before the cluster serves queries).
func (c *Cluster) SetRouter(r Router) { c.router = r }

// Shard returns a shard's pools, nil if unknown.
func (c *Cluster) Shard(name string) *Shard { return c.shards[name] }

// ShardNames are the shards in order.
func (c *Cluster) ShardNames() []string { return c.order }

// Pools returns every pool, shard by shard, primary first.
func (c *Cluster) Pools() []*Pool {
	var out []*Pool
	for _, n := range c.order {
		sh := c.shards[n]
		out = append(out, sh.Primary)
		out = append(out, sh.Replicas...)
	}
	return out
}

// Close closes every pool.
func (c *Cluster) Close() {
	for _, sh := range c.shards {
		sh.Primary.Close()
		for _, r := range sh.Replicas {
			r.Close()
		}
	}
}

// Route asks the Router which server of shard runs one statement.
func (c *Cluster) Route(ctx context.Context, shard string, read bool, h *RouteHint) (Target, error) {
	return c.router.Route(ctx, shard, read, h)
}

// RouteHint carries what the session knows that may matter to the choice of
// server: whether it is in a transaction (then always the primary; the
// caller passes read=false) and whether the statement forces the primary.
// Read/write splitting (consistency levels, the session's last write
// position) adds its fields here.
type RouteHint struct {
	ForcePrimary bool
	// Consistency is the session's strata_read_consistency ("" = the
	// Router's default).
	Consistency string
	// Exclude, when retrying a read that failed with a connection error, is
	// the pool it failed on: route elsewhere.
	Exclude *Pool
	// RW belongs to the Router: its per-session state, set on first use with
	// CompareAndSwap (a scatter routes shards in parallel). The session keeps
	// one RouteHint for its life and passes the same pointer to every Route.
	RW atomic.Value
}

// Target is the server chosen for one statement or transaction.
type Target struct {
	Pool *Pool
	// Done, when not nil, is called once when the statement (or the
	// transaction) is over, with its error; a Router that balances by
	// outstanding queries or tracks positions uses it.
	Done func(err error)
}

// Router picks the server of a shard that runs a statement. It is the one
// seam between the proxy's sessions and the choice between a shard's primary
// and its replicas.
type Router interface {
	// Route returns the server for one statement on shard. read marks a
	// plain read outside a transaction, which may go to a replica.
	Route(ctx context.Context, shard string, read bool, h *RouteHint) (Target, error)
}

// PrimaryRouter sends every statement to the shard's primary.
type PrimaryRouter struct{ C *Cluster }

// Route implements Router.
func (r PrimaryRouter) Route(_ context.Context, shard string, _ bool, _ *RouteHint) (Target, error) {
	sh := r.C.shards[shard]
	if sh == nil {
		return Target{}, sqlerror.NewSQLErrorf(sqlerror.ERUnknownError, sqlerror.SSUnknownSQLState, "unknown shard %q", shard)
	}
	return Target{Pool: sh.Primary}, nil
}
