package raftstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/hashicorp/raft"
)

// AddVoter adds (or re-addresses) a voting member; leader only. The new
// member's Meta arrives on its own: once it sees it is a member, it sends
// its Meta to the leader.
func (n *Node) AddVoter(ctx context.Context, id, addr string) error {
	if n.closed() {
		return ErrShutdown
	}
	if id == "" {
		return errors.New("raftstore: add voter: empty id")
	}
	if _, err := checkHostPort(addr, false); err != nil {
		return fmt.Errorf("raftstore: add voter %s: %w", id, err)
	}
	ctx, cancel := n.opContext(ctx)
	defer cancel()
	f := n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, enqueueTimeout(ctx))
	return n.translate("add voter "+id, n.wait(ctx, f))
}

// RemoveServer removes a member; leader only. Its Meta is dropped from the
// replicated state soon after.
func (n *Node) RemoveServer(ctx context.Context, id string) error {
	if n.closed() {
		return ErrShutdown
	}
	ctx, cancel := n.opContext(ctx)
	defer cancel()
	f := n.raft.RemoveServer(raft.ServerID(id), 0, enqueueTimeout(ctx))
	if err := n.wait(ctx, f); err != nil {
		return n.translate("remove server "+id, err)
	}
	n.kickMemberLoop()
	return nil
}

// Members returns the latest membership this node knows (which may not be
// committed yet).
func (n *Node) Members() ([]Peer, error) {
	if n.closed() {
		return nil, ErrShutdown
	}
	servers, err := n.servers()
	if err != nil {
		return nil, err
	}
	peers := make([]Peer, len(servers))
	for i, s := range servers {
		peers[i] = Peer{ID: string(s.ID), Addr: string(s.Address)}
	}
	return peers, nil
}

// MemberMeta returns every member's replicated Meta by node ID (nil for a
// member whose Meta is not known yet).
func (n *Node) MemberMeta() map[string]map[string]string {
	if n.closed() {
		return nil
	}
	servers, err := n.servers()
	if err != nil {
		return nil
	}
	m := make(map[string]map[string]string, len(servers))
	for _, s := range servers {
		m[string(s.ID)] = n.fsm.metaOf(string(s.ID))
	}
	return m
}

func (n *Node) servers() ([]raft.Server, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, n.translate("configuration", err)
	}
	return f.Configuration().Servers, nil
}

// memberLoop brings the replicated member state in line with this node's
// config: a new node asks to join, a member's Meta reaches the replicated
// state, and the leader drops the Meta of removed members. It runs on every
// leadership change and otherwise every heartbeat timeout, so failures are
// simply retried.
func (n *Node) memberLoop() {
	defer n.wg.Done()
	tick := time.NewTicker(n.cfg.HeartbeatTimeout)
	defer tick.Stop()
	var warned string // the refusal last logged at Warn
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-n.kick:
		case <-tick.C:
		}
		err := n.syncMembership()
		switch {
		case err == nil || n.ctx.Err() != nil:
			warned = ""
		case errors.Is(err, errRefused) && err.Error() != warned:
			// Most likely a config mistake (a duplicate NodeID, a reused
			// address): say so once, not at every retry.
			warned = err.Error()
			n.logger.Warn("raftstore: the leader refused this node's request (will retry)", "err", err)
		default:
			n.logger.Debug("raftstore: membership sync (will retry)", "err", err)
		}
	}
}

// errRefused marks an answer in which the leader refused a request, as
// opposed to not being reached or not being the leader.
var errRefused = errors.New("refused")

func (n *Node) syncMembership() error {
	// Meta IDs before servers: a member's meta is only ever set after it is
	// in the configuration, so a join racing this pass cannot look removed.
	metaIDs := n.fsm.metaIDs()
	servers, err := n.servers()
	if err != nil {
		return err
	}
	self := raft.ServerID(n.cfg.NodeID)
	member := false
	for _, s := range servers {
		member = member || s.ID == self
	}
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.ApplyTimeout)
	defer cancel()

	if n.IsLeader() {
		if !n.fsm.hasMeta(n.cfg.NodeID, n.cfg.Meta) {
			if err := n.applyInternal(ctx, encodeMeta(tagSetMeta, metaCmd{ID: n.cfg.NodeID, Meta: n.cfg.Meta})); err != nil {
				return fmt.Errorf("apply own meta: %w", err)
			}
		}
		for _, id := range metaIDs {
			if !hasServer(servers, id) {
				if err := n.applyInternal(ctx, encodeMeta(tagDeleteMeta, metaCmd{ID: id})); err != nil {
					return fmt.Errorf("drop meta of removed %s: %w", id, err)
				}
			}
		}
		return nil
	}

	switch {
	case len(servers) == 0 && len(n.cfg.Join) > 0:
		// Never part of any cluster: ask to join. A removed node still
		// knows a configuration, so it does not come back on its own.
		return n.askLeader(ctx, rpcRequest{Op: opJoin, ID: n.cfg.NodeID, Addr: n.Addr(), Meta: n.cfg.Meta}, n.cfg.Join)
	case member && !n.fsm.hasMeta(n.cfg.NodeID, n.cfg.Meta):
		return n.askLeader(ctx, rpcRequest{Op: opMeta, ID: n.cfg.NodeID, Meta: n.cfg.Meta}, nil)
	}
	return nil
}

func hasServer(servers []raft.Server, id string) bool {
	for _, s := range servers {
		if string(s.ID) == id {
			return true
		}
	}
	return false
}

// This package's own RPC, on the Raft port after rpcTag: one JSON request
// and one JSON response per connection. It is as unauthenticated as Raft's
// transport; keep the Raft port on a private network.
const (
	opJoin = "join" // add me as a voter and set my meta
	opMeta = "meta" // set my meta (members only)
)

type rpcRequest struct {
	Op   string            `json:"op"`
	ID   string            `json:"id"`
	Addr string            `json:"addr,omitempty"`
	Meta map[string]string `json:"meta,omitempty"`
}

type rpcResponse struct {
	Err        string `json:"err,omitempty"`
	NotLeader  bool   `json:"not_leader,omitempty"`
	LeaderAddr string `json:"leader_addr,omitempty"`
}

// askLeader sends req to the leader: the one this node knows, else each of
// seeds in turn, following "not leader" redirects.
func (n *Node) askLeader(ctx context.Context, req rpcRequest, seeds []string) error {
	targets := seeds
	if _, addr := n.Leader(); addr != "" {
		targets = append([]string{addr}, seeds...)
	}
	if len(targets) == 0 {
		return errors.New("no leader known")
	}
	var errs []error
	for _, target := range targets {
		for hop := 0; hop < 3 && target != ""; hop++ {
			resp, err := n.call(ctx, target, req)
			if err != nil {
				errs = append(errs, err)
				break
			}
			if resp.NotLeader {
				if resp.LeaderAddr == target {
					break
				}
				target = resp.LeaderAddr
				continue
			}
			if resp.Err != "" {
				return fmt.Errorf("%s %s: %w: %s", req.Op, target, errRefused, resp.Err)
			}
			return nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	if len(errs) == 0 {
		return fmt.Errorf("%s: no leader found", req.Op)
	}
	return fmt.Errorf("%s: %w", req.Op, errors.Join(errs...))
}

func (n *Node) call(ctx context.Context, addr string, req rpcRequest) (rpcResponse, error) {
	var resp rpcResponse
	deadline, _ := ctx.Deadline()
	c, err := n.stream.Dial(raft.ServerAddress(addr), time.Until(deadline))
	if err != nil {
		return resp, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	_ = c.SetDeadline(deadline)
	body, err := json.Marshal(req)
	if err != nil {
		return resp, err
	}
	if _, err := c.Write(append([]byte{rpcTag}, body...)); err != nil {
		return resp, fmt.Errorf("%s to %s: %w", req.Op, addr, err)
	}
	if err := json.NewDecoder(io.LimitReader(c, 1<<20)).Decode(&resp); err != nil {
		return resp, fmt.Errorf("%s to %s: %w", req.Op, addr, err)
	}
	return resp, nil
}

// serveRPC answers one request on a connection the stream layer routed here.
func (n *Node) serveRPC(c net.Conn) {
	_ = c.SetDeadline(time.Now().Add(n.cfg.ApplyTimeout + time.Second))
	var req rpcRequest
	if err := json.NewDecoder(io.LimitReader(c, 1<<20)).Decode(&req); err != nil {
		return
	}
	resp := n.handleRPC(req)
	_ = json.NewEncoder(c).Encode(resp)
}

func (n *Node) handleRPC(req rpcRequest) rpcResponse {
	if !n.IsLeader() {
		_, addr := n.Leader()
		return rpcResponse{NotLeader: true, LeaderAddr: addr}
	}
	if req.ID == "" {
		return rpcResponse{Err: "empty node id"}
	}
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.ApplyTimeout)
	defer cancel()
	servers, err := n.servers()
	if err != nil {
		return n.rpcError(err)
	}
	switch req.Op {
	case opJoin:
		if _, err := checkHostPort(req.Addr, false); err != nil {
			return rpcResponse{Err: err.Error()}
		}
		// Only a node that is new, or a member asking again (it lost our
		// answer), may join. AddVoter would move a member whose ID shows up
		// from another address: one misconfigured or stray request would cut
		// the real member off.
		present := false
		for _, s := range servers {
			sameID, sameAddr := string(s.ID) == req.ID, string(s.Address) == req.Addr
			switch {
			case sameID && !sameAddr:
				return rpcResponse{Err: fmt.Sprintf("node ID %q is already a member at %s; remove it before it joins from %s", req.ID, s.Address, req.Addr)}
			case sameAddr && !sameID:
				return rpcResponse{Err: fmt.Sprintf("address %s belongs to member %q; remove it before %q joins there", req.Addr, s.ID, req.ID)}
			}
			present = present || (sameID && sameAddr)
		}
		if !present {
			if err := n.AddVoter(ctx, req.ID, req.Addr); err != nil {
				return n.rpcError(err)
			}
		}
	case opMeta:
		if !hasServer(servers, req.ID) {
			return rpcResponse{Err: fmt.Sprintf("%s is not a member", req.ID)}
		}
	default:
		return rpcResponse{Err: fmt.Sprintf("unknown op %q", req.Op)}
	}
	if !n.fsm.hasMeta(req.ID, req.Meta) {
		if err := n.applyInternal(ctx, encodeMeta(tagSetMeta, metaCmd{ID: req.ID, Meta: req.Meta})); err != nil {
			return n.rpcError(err)
		}
	}
	return rpcResponse{}
}

func (n *Node) rpcError(err error) rpcResponse {
	var nl *NotLeaderError
	if errors.As(err, &nl) {
		return rpcResponse{NotLeader: true, LeaderAddr: nl.LeaderAddr}
	}
	return rpcResponse{Err: err.Error()}
}
