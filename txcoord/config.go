package txcoord

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-db/strata/raftstore"
)

// MetaGRPC is the key of a member's gRPC address in its replicated Raft
// metadata: how a follower finds the leader to forward to.
const MetaGRPC = "grpc"

// Config is one coordinator node. Start from DefaultConfig.
type Config struct {
	// NodeID is the node's unique, stable identity in the group.
	NodeID string
	// DataDir holds the Raft log and snapshots.
	DataDir string
	// RaftAddr is where the Raft transport listens (keep it private);
	// GRPCAddr is where proxies and other nodes reach the node's gRPC API.
	// Port 0 picks a free one. Both are told to other nodes, so both must
	// be dialable (not 0.0.0.0) unless Raft.AdvertiseAddr is set.
	RaftAddr, GRPCAddr string
	// Bootstrap forms a new group from Peers (or this node alone) when
	// DataDir holds no Raft state; Peers are the initial voters as Raft
	// addresses, this node included; Join lists members' Raft addresses to
	// ask to add this node. As raftstore.Config.
	Bootstrap bool
	Peers     []raftstore.Peer
	Join      []string

	// Modules make up the state machine. Every node of a group must run
	// the same modules.
	Modules []Module

	// Raft holds the Raft timeouts and snapshot policy; its NodeID,
	// DataDir, BindAddr, Bootstrap, Peers, Join and Logger are set from the
	// fields above.
	Raft raftstore.Config
	// ProposeTimeout bounds a Propose whose context has no deadline.
	ProposeTimeout time.Duration

	// Registerer receives the node's metrics (nil: none); modules may take
	// the same one.
	Registerer prometheus.Registerer
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

// DefaultConfig is the single node of `strata up`: Raft 127.0.0.1:7110,
// gRPC 127.0.0.1:9091, bootstrapping alone, with no modules yet.
func DefaultConfig() Config {
	return Config{
		NodeID:         "tx1",
		DataDir:        filepath.Join(".strata", "txcoord"),
		RaftAddr:       "127.0.0.1:7110",
		GRPCAddr:       "127.0.0.1:9091",
		Bootstrap:      true,
		Raft:           defaultRaft(),
		ProposeTimeout: 5 * time.Second,
	}
}

// defaultRaft is raftstore's defaults with the WAL log store: a decision
// is on the commit path of every cross-shard transaction, and the WAL
// makes an entry durable with one fsync per node instead of bolt's two.
// A data directory made with bolt keeps it.
func defaultRaft() raftstore.Config {
	c := raftstore.DefaultConfig()
	c.LogStore = raftstore.LogStoreWAL
	return c
}

// raftConfig is the raftstore.Config the node opens.
func (c Config) raftConfig() raftstore.Config {
	rc := c.Raft
	rc.NodeID, rc.DataDir, rc.BindAddr = c.NodeID, c.DataDir, c.RaftAddr
	rc.Bootstrap, rc.Peers, rc.Join = c.Bootstrap, c.Peers, c.Join
	if c.Logger != nil {
		rc.Logger = c.Logger
	}
	return rc
}

// Validate reports every field that is wrong, each named, the Raft
// settings included.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("txcoord: config: %s: %s", field, fmt.Sprintf(format, args...)))
	}
	if c.GRPCAddr == "" {
		bad("GRPCAddr", "required (host:port; port 0 picks a free one)")
	}
	if len(c.Modules) == 0 {
		bad("Modules", "at least one module is required")
	}
	if _, err := newFSM(c.Modules); err != nil {
		bad("Modules", "%v", err)
	}
	if c.ProposeTimeout < time.Millisecond {
		bad("ProposeTimeout", "%v is below 1ms", c.ProposeTimeout)
	}
	if err := c.raftConfig().Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
