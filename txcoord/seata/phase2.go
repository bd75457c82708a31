package seata

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/seata/seata-go/pkg/protocol/branch"
	"github.com/seata/seata-go/pkg/protocol/message"
)

// drive is the phase-two driver: on the leader only, it finishes every
// transaction in a phase-two status (commit in registration order,
// rollback in reverse), turns expired transactions into TimeoutRollbacking,
// and picks all of that up again on a node that becomes leader, from the
// replicated state.
func (s *Server) drive() {
	defer s.wg.Done()
	events, unsub := s.p.Subscribe()
	defer unsub()
	tick := time.NewTicker(s.cfg.ScanInterval)
	defer tick.Stop()

	var (
		mu      sync.Mutex
		running = map[string]bool{}
		lead    context.Context
		stop    context.CancelFunc = func() {}
	)
	defer func() { stop() }()
	start := func(xid string) {
		if lead == nil || lead.Err() != nil {
			return
		}
		mu.Lock()
		if running[xid] {
			mu.Unlock()
			return
		}
		running[xid] = true
		mu.Unlock()
		ctx := lead
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.finishTx(ctx, xid)
			mu.Lock()
			delete(running, xid)
			mu.Unlock()
		}()
	}
	scan := func() {
		if lead == nil || lead.Err() != nil {
			return
		}
		two, expired := s.mod.pending(time.Now().UnixMilli())
		for _, x := range two {
			start(x)
		}
		for _, x := range expired {
			s.propose(Command{Op: OpTimeout, XID: x, NowMs: time.Now().UnixMilli()})
		}
	}
	for {
		select {
		case <-s.ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			stop()
			lead = nil
			if s.met != nil {
				s.met.leader.Set(0)
			}
			if ev.IsLeader {
				if s.met != nil {
					s.met.leader.Set(1)
				}
				lead, stop = leading(s.ctx)
				// Read the state only once every entry of the old
				// leader's terms is applied here.
				if err := s.p.Barrier(lead); err != nil {
					s.log.Warn("barrier on becoming leader", "err", err)
				}
				scan()
			}
		case x := <-s.mod.work:
			start(x)
		case <-tick.C:
			scan()
		}
	}
}

// finishTx runs phase two of one transaction until it ends or this node
// stops leading.
func (s *Server) finishTx(ctx context.Context, xid string) {
	backoff := s.cfg.RetryBackoff
	marked := false
	for round := 0; ctx.Err() == nil; round++ {
		g, open, _ := s.mod.global(xid)
		if !open || !inPhaseTwo(g.Status) {
			return
		}
		done, fatal := s.round(ctx, &g, round > 0)
		if ctx.Err() != nil {
			return
		}
		if _, open, _ := s.mod.global(xid); !open {
			return // the last branch's answer ended it
		}
		if done || fatal {
			s.propose(Command{Op: OpFinish, XID: xid, Status: endStatus(g.Status, done)})
			continue // the state says whether it ended
		}
		if !marked {
			if _, ok := retrying(g.Status); ok {
				s.propose(Command{Op: OpRetrying, XID: xid, Status: g.Status})
			}
			marked = true
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, s.cfg.MaxRetryBackoff)
	}
}

// round takes every branch of g through phase two once: done when all are
// finished, fatal when one failed for good, neither when one must be
// retried.
func (s *Server) round(ctx context.Context, g *Global, wide bool) (done, fatal bool) {
	commit := committing(g.Status)
	order := make([]*Branch, len(g.Branches))
	copy(order, g.Branches)
	if !commit {
		for i, j := 0, len(order)-1; i < j; i, j = i+1, j-1 {
			order[i], order[j] = order[j], order[i]
		}
	}
	async := g.Status == message.GlobalStatusAsyncCommitting
	allDone := true
	for _, b := range order {
		if _, open, _ := s.mod.global(g.XID); !open {
			return true, false
		}
		st, ok := s.branchEnd(ctx, g, b, commit, wide)
		switch {
		case ok:
		case unretryable(st):
			if !async {
				return false, true
			}
			allDone = false
		default:
			if !async {
				return false, false
			}
			// AT-only commits go on with the other branches, as Seata's
			// async committer does.
			allDone = false
		}
	}
	return allDone, false
}

func unretryable(st branch.BranchStatus) bool {
	return st == branch.BranchStatusPhasetwoCommitFailedUnretryable || st == branch.BranchStatusPhasetwoRollbackFailedUnretryable
}

func branchDone(st branch.BranchStatus, commit bool) bool {
	if st == branch.BranchStatusPhaseoneFailed {
		return true // nothing to finish: its local work never committed
	}
	if commit {
		return st == branch.BranchStatusPhasetwoCommitted
	}
	return st == branch.BranchStatusPhasetwoRollbacked
}

// branchEnd sends one branch its phase-two request and waits, up to
// BranchTimeout, for the answer to appear in the replicated state (the RM
// may answer on a connection to another node). wide sends it to every
// connection of this node: the round before went unanswered.
func (s *Server) branchEnd(ctx context.Context, g *Global, b *Branch, commit, wide bool) (branch.BranchStatus, bool) {
	if branchDone(b.Status, commit) {
		return b.Status, true
	}
	if unretryable(b.Status) {
		return b.Status, false
	}
	req := message.AbstractBranchEndRequest{
		Xid: g.XID, BranchId: b.ID, BranchType: b.Type, ResourceId: b.Resource,
		ApplicationData: b.AppData,
	}
	var body any
	kind := "rollback"
	if commit {
		kind = "commit"
		body = message.BranchCommitRequest{AbstractBranchEndRequest: req}
	} else {
		body = message.BranchRollbackRequest{AbstractBranchEndRequest: req}
	}
	if n := s.sendRM(b, body, wide); n == 0 {
		s.log.Info("no RM connection for branch", "xid", g.XID, "branch", b.ID, "resource", b.Resource)
	}
	if s.met != nil {
		s.met.sends.WithLabelValues(kind).Inc()
	}
	timer := time.NewTimer(s.cfg.BranchTimeout)
	defer timer.Stop()
	for {
		ch := s.mod.watch()
		cur, open, _ := s.mod.global(g.XID)
		if !open {
			return b.Status, true // ended: nothing left to do
		}
		nb := cur.branch(b.ID)
		if nb == nil {
			return b.Status, false
		}
		if branchDone(nb.Status, commit) {
			return nb.Status, true
		}
		if unretryable(nb.Status) {
			return nb.Status, false
		}
		select {
		case <-ch:
		case <-timer.C:
			s.log.Info("branch answer timed out", "xid", g.XID, "branch", b.ID, "resource", b.Resource, "kind", kind)
			return nb.Status, false
		case <-ctx.Done():
			return nb.Status, false
		}
	}
}

// sendRM sends a phase-two request for branch b to, in this order of
// preference: the connection the branch was registered on, when it is one
// of this node's; else one connection on which its resource (or a branch of
// it) was registered with this node; else, or when wide is set (the round
// before went unanswered), every connection. A seata-go RM registers its
// resources and branches on connections of its choosing, maybe to other
// nodes, and one that does not hold the resource does not answer. It
// returns how many got the request.
func (s *Server) sendRM(b *Branch, body any, wide bool) int {
	mine, remote, _ := strings.Cut(b.Client, "|")
	s.mu.Lock()
	var exact, owner *conn
	var all []*conn
	for c := range s.conns {
		all = append(all, c)
		switch {
		case mine == s.cfg.Addr && c.nc.RemoteAddr().String() == remote:
			exact = c
		case owner == nil && c.has(b.Resource):
			owner = c
		}
	}
	s.mu.Unlock()
	targets := all
	switch {
	case wide:
	case exact != nil:
		targets = []*conn{exact}
	case owner != nil:
		targets = []*conn{owner}
	}
	n := 0
	for _, c := range targets {
		f := Frame{Type: message.GettyRequestTypeRequestSync, ID: s.ids.Add(-1), Body: body}
		if err := c.write(f); err != nil {
			s.log.Info("send phase two", "remote", c.nc.RemoteAddr(), "err", err)
			continue
		}
		n++
	}
	return n
}

// leading is the context of one term of leadership (a function so that the
// driver's loop can keep its cancel across iterations).
func leading(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithCancel(parent)
}
