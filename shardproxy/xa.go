package shardproxy

import (
	"context"
	"fmt"
	"sync"

	"github.com/strata-db/strata/shardproxy/fleet"
	"github.com/strata-db/strata/shardproxy/session"
	"github.com/strata-db/strata/shardproxy/xa"
	"github.com/strata-db/strata/txcoord/client"
)

// xaParts are the proxy's cross-shard transaction machinery: the
// coordinator client, the committer the sessions share, and the resolver.
type xaParts struct {
	client    *client.Client
	committer *xa.Committer
	resolver  *xa.Resolver
	cancel    context.CancelFunc
	wg        sync.WaitGroup
}

// startXA connects the proxy to its coordinator (transactions.coordinator)
// and starts the resolver; nil without a coordinator.
func (s *Server) startXA(o Options) (*session.XA, error) {
	t := s.cfg.Transactions
	if !t.Enabled() {
		return nil, nil
	}
	cc := client.DefaultConfig()
	cc.Addrs, cc.Owner, cc.CallTimeout = t.Coordinator, "proxy "+s.cfg.Listen, t.DecisionTimeout
	cc.AttemptTimeout = min(cc.AttemptTimeout, t.DecisionTimeout)
	c, err := client.New(cc)
	if err != nil {
		return nil, fmt.Errorf("shardproxy: transactions: %w", err)
	}
	m := xa.NewMetrics(s.reg)
	kc := xa.DefaultCommitterConfig()
	kc.DecisionTimeout, kc.Metrics, kc.Logger, kc.Failpoint = t.DecisionTimeout, m, s.log, o.XAFailpoint
	rc := xa.DefaultResolverConfig()
	rc.Interval, rc.AbandonAfter, rc.CompleteAfter, rc.Metrics, rc.Logger = t.ResolveInterval, t.AbandonAfter, t.AbandonAfter, m, s.log
	r, err := xa.NewResolver(rc, xa.ClusterPrimaries{Cluster: s.cluster, Timeout: s.cfg.Backend.ConnectTimeout + t.DecisionTimeout}, c)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("shardproxy: transactions: %w", err)
	}
	p := &xaParts{client: c, committer: xa.NewCommitter(kc, c), resolver: r}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	if s.rw != nil {
		// A branch may be prepared on the new primary: look at once.
		s.rw.Fleet().OnEvent(func(e fleet.Event) {
			if e.Kind == fleet.PrimaryChanged {
				r.Kick()
			}
		})
	}
	p.wg.Add(1)
	go func() { defer p.wg.Done(); r.Run(ctx) }()
	txs := session.NewTransactions()
	if t.DeadlockCheck > 0 {
		d := &session.Deadlocks{Transactions: txs, Wait: t.DeadlockCheck, Metrics: m, Logger: s.log}
		p.wg.Add(1)
		go func() { defer p.wg.Done(); d.Run(ctx) }()
	}
	s.xa = p
	return &session.XA{Committer: p.committer, IDs: c, Transactions: txs, Resolver: r, Coordinator: c, Metrics: m}, nil
}

// stopXA stops the resolver and the committer's completion reports.
func (s *Server) stopXA() {
	if s.xa == nil {
		return
	}
	s.xa.cancel()
	s.xa.wg.Wait()
	s.xa.committer.Close()
	s.xa.client.Close()
}

// Resolver is the proxy's recovery of prepared XA branches, nil without a
// coordinator.
func (s *Server) Resolver() *xa.Resolver {
	if s.xa == nil {
		return nil
	}
	return s.xa.resolver
}
