package idserver

import (
	"errors"
	"fmt"
	"net"

	"github.com/strata-db/strata/raftstore"
)

// NodeConfig is one ID-service process: the service's Config, its Raft
// node's, and the addresses of its APIs.
type NodeConfig struct {
	Service Config
	// Raft configures the node's Raft member. Its Meta gets the API
	// addresses added (MetaHTTP, MetaGRPC).
	Raft raftstore.Config
	// HTTPAddr and GRPCAddr are where the APIs listen ("127.0.0.1:0" picks a
	// free port). Other nodes and clients are told these addresses, so they
	// must be dialable: not 0.0.0.0.
	HTTPAddr, GRPCAddr string
}

// Node is a running ID-service process: Raft node, FSM and server.
type Node struct {
	Server *Server
	Raft   *raftstore.Node
	// HTTPAddr and GRPCAddr are the bound API addresses.
	HTTPAddr, GRPCAddr string
}

// Validate checks the service's config and what it must agree on with the
// Raft node's: the leader lease against the heartbeat timeout. (The Raft
// config itself is raftstore's to check.)
func (nc NodeConfig) Validate() error {
	var errs []error
	if nc.HTTPAddr == "" || nc.GRPCAddr == "" {
		errs = append(errs, errors.New("idserver: config: HTTPAddr and GRPCAddr are required"))
	}
	if err := nc.Service.Validate(); err != nil {
		errs = append(errs, err)
	}
	// A new leader can be elected once a quorum has heard nothing from the
	// old one for HeartbeatTimeout; the old one serves for Lease after the
	// start of its last renewal. A VerifyLeader may be answered by a
	// heartbeat sent just before it began, and timers and goroutines run
	// late on a loaded machine: half the heartbeat timeout is kept for both.
	if ht := nc.Raft.HeartbeatTimeout; 2*nc.Service.Lease > ht {
		errs = append(errs, fmt.Errorf("idserver: config: Lease: %v is more than half the Raft HeartbeatTimeout %v: a deposed leader could serve cached IDs after a new leader has served higher ones", nc.Service.Lease, ht))
	}
	return errors.Join(errs...)
}

// StartNode listens on the API addresses, opens the Raft node (which
// restores the FSM from its data directory) and starts serving.
func StartNode(nc NodeConfig) (_ *Node, err error) {
	if err := nc.Validate(); err != nil {
		return nil, err
	}
	httpLn, err := net.Listen("tcp", nc.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("idserver: listen HTTP on %s: %w", nc.HTTPAddr, err)
	}
	grpcLn, err := net.Listen("tcp", nc.GRPCAddr)
	if err != nil {
		httpLn.Close()
		return nil, fmt.Errorf("idserver: listen gRPC on %s: %w", nc.GRPCAddr, err)
	}
	defer func() {
		if err != nil {
			httpLn.Close()
			grpcLn.Close()
		}
	}()
	rc := nc.Raft
	meta := map[string]string{}
	for k, v := range rc.Meta {
		meta[k] = v
	}
	meta[MetaHTTP], meta[MetaGRPC] = httpLn.Addr().String(), grpcLn.Addr().String()
	rc.Meta = meta
	fsm := NewFSM()
	rn, err := raftstore.Open(rc, fsm)
	if err != nil {
		return nil, err
	}
	srv, err := New(nc.Service, rn, fsm)
	if err != nil {
		rn.Close()
		return nil, err
	}
	srv.Serve(httpLn, grpcLn)
	return &Node{Server: srv, Raft: rn, HTTPAddr: meta[MetaHTTP], GRPCAddr: meta[MetaGRPC]}, nil
}

// Close stops the server (releasing its snowflake worker while Raft still
// runs), then the Raft node, which hands leadership over if it leads.
func (n *Node) Close() error {
	if n == nil {
		return nil
	}
	return errors.Join(n.Server.Close(), n.Raft.Close())
}
