package raftstore

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"
)

// Config configures one Raft node. Start from DefaultConfig and fill in
// NodeID, DataDir and BindAddr.
type Config struct {
	// NodeID is this node's unique, stable identity in the cluster. It must not
	// change across restarts: Raft's membership is keyed by it.
	NodeID string
	// DataDir holds the log and stable store (raft.db, or wal/, see
	// LogStore) and snapshots/. One node per directory: a second Open of
	// the same directory fails.
	DataDir string
	// LogStore is the store a new DataDir gets: LogStoreBolt (the default)
	// or LogStoreWAL. A DataDir that already holds one keeps it.
	LogStore string
	// BindAddr is the host:port the Raft TCP transport listens on. Port 0
	// picks a free port; Addr reports the one chosen.
	BindAddr string
	// AdvertiseAddr is the address other members dial; it defaults to the
	// bound address and is required when BindAddr's host is unspecified
	// (0.0.0.0, ::). A host name is kept as a name, not resolved here.
	AdvertiseAddr string

	// Bootstrap forms a new cluster from Peers (or this node alone) when the
	// data directory holds no Raft state; with existing state it is ignored,
	// so it is safe to leave set across restarts. Bootstrapping every initial
	// member with the same Peers is safe too.
	Bootstrap bool
	// Peers are the initial voters, this node included, used only with
	// Bootstrap.
	Peers []Peer
	// Join lists Raft addresses of existing members. A node that has never
	// been part of a cluster asks them (following redirects to the leader)
	// to add it as a voter; a node that was removed does not ask again.
	Join []string
	// Meta is this node's metadata (e.g. "http": "127.0.0.1:8081"). It is
	// replicated so any node can tell clients where the leader's APIs are.
	Meta map[string]string

	// HeartbeatTimeout is how long a follower waits without hearing from a
	// leader before it calls an election; ElectionTimeout bounds a candidate's
	// wait for votes. Lower means faster failover and more spurious elections
	// on a loaded machine.
	HeartbeatTimeout time.Duration
	ElectionTimeout  time.Duration
	// LeaderLeaseTimeout is how long a leader stays leader without reaching a
	// quorum; at most HeartbeatTimeout.
	LeaderLeaseTimeout time.Duration
	// CommitTimeout is the longest the leader waits, when idle, before telling
	// followers the new commit index; it bounds how stale a follower's FSM is.
	CommitTimeout time.Duration
	// ApplyTimeout bounds Apply, Barrier, VerifyLeader and membership changes
	// whose context has no deadline.
	ApplyTimeout time.Duration

	// SnapshotInterval is how often Raft checks whether to snapshot;
	// SnapshotThreshold is how many new log entries make it snapshot;
	// TrailingLogs is how many entries it keeps after a snapshot so a slightly
	// lagging follower catches up from the log rather than a whole snapshot.
	SnapshotInterval  time.Duration
	SnapshotThreshold uint64
	TrailingLogs      uint64
	// SnapshotRetain is how many snapshots to keep on disk.
	SnapshotRetain int

	// Logger receives this package's and Raft's logs; nil means slog.Default().
	Logger *slog.Logger
	// RaftLogLevel is the lowest level of hashicorp/raft's own messages that
	// reach Logger. Raft is chatty at Info and below.
	RaftLogLevel slog.Level
}

// Peer is a cluster member: its node ID and Raft address.
type Peer struct{ ID, Addr string }

// DefaultConfig returns timeouts tuned for a LAN or loopback (a failover takes
// about one second), hashicorp/raft's snapshot policy, and Raft logs at Warn
// and above.
func DefaultConfig() Config {
	return Config{
		HeartbeatTimeout:   500 * time.Millisecond,
		ElectionTimeout:    500 * time.Millisecond,
		LeaderLeaseTimeout: 250 * time.Millisecond,
		CommitTimeout:      20 * time.Millisecond,
		ApplyTimeout:       5 * time.Second,
		SnapshotInterval:   30 * time.Second,
		SnapshotThreshold:  8192,
		TrailingLogs:       10240,
		SnapshotRetain:     2,
		RaftLogLevel:       slog.LevelWarn,
		LogStore:           LogStoreBolt,
	}
}

// Validate reports every field that is missing or wrong, each named.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("raftstore: config: %s: %s", field, fmt.Sprintf(format, args...)))
	}

	if c.NodeID == "" {
		bad("NodeID", "required")
	} else if strings.TrimSpace(c.NodeID) != c.NodeID {
		bad("NodeID", "%q has leading or trailing space", c.NodeID)
	}
	if c.DataDir == "" {
		bad("DataDir", "required")
	}
	bindUnspecified := false
	if c.BindAddr == "" {
		bad("BindAddr", "required (host:port; port 0 picks a free one)")
	} else if host, err := checkHostPort(c.BindAddr, true); err != nil {
		bad("BindAddr", "%v", err)
	} else {
		ip := net.ParseIP(host)
		bindUnspecified = host == "" || (ip != nil && ip.IsUnspecified())
	}
	if c.AdvertiseAddr != "" {
		if host, err := checkHostPort(c.AdvertiseAddr, false); err != nil {
			bad("AdvertiseAddr", "%v", err)
		} else if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
			bad("AdvertiseAddr", "%q is not an address others can dial", c.AdvertiseAddr)
		}
	} else if bindUnspecified {
		bad("AdvertiseAddr", "required when BindAddr %q does not name a host", c.BindAddr)
	}

	if c.Bootstrap && len(c.Join) > 0 {
		bad("Join", "cannot be combined with Bootstrap: a node either forms the cluster or joins one")
	}
	if len(c.Peers) > 0 && !c.Bootstrap {
		bad("Peers", "only used with Bootstrap")
	}
	ids, addrs := map[string]bool{}, map[string]bool{}
	self := false
	for i, p := range c.Peers {
		field := fmt.Sprintf("Peers[%d]", i)
		switch {
		case p.ID == "":
			bad(field, "ID required")
		case ids[p.ID]:
			bad(field, "duplicate ID %q", p.ID)
		}
		if _, err := checkHostPort(p.Addr, false); err != nil {
			bad(field, "Addr: %v", err)
		} else if addrs[p.Addr] {
			bad(field, "duplicate Addr %q", p.Addr)
		}
		ids[p.ID], addrs[p.Addr] = true, true
		self = self || p.ID == c.NodeID
	}
	if len(c.Peers) > 0 && c.NodeID != "" && !self {
		bad("Peers", "must include this node (%q)", c.NodeID)
	}
	for i, a := range c.Join {
		if _, err := checkHostPort(a, false); err != nil {
			bad(fmt.Sprintf("Join[%d]", i), "%v", err)
		}
	}
	for k := range c.Meta {
		if k == "" {
			bad("Meta", "empty key")
		}
	}

	minDur := func(field string, d, lo time.Duration) {
		if d < lo {
			bad(field, "%v is below the minimum %v", d, lo)
		}
	}
	minDur("HeartbeatTimeout", c.HeartbeatTimeout, 5*time.Millisecond)
	minDur("ElectionTimeout", c.ElectionTimeout, 5*time.Millisecond)
	minDur("LeaderLeaseTimeout", c.LeaderLeaseTimeout, 5*time.Millisecond)
	minDur("CommitTimeout", c.CommitTimeout, time.Millisecond)
	minDur("ApplyTimeout", c.ApplyTimeout, time.Millisecond)
	minDur("SnapshotInterval", c.SnapshotInterval, 5*time.Millisecond)
	if c.ElectionTimeout < c.HeartbeatTimeout {
		bad("ElectionTimeout", "%v is below HeartbeatTimeout %v", c.ElectionTimeout, c.HeartbeatTimeout)
	}
	if c.LeaderLeaseTimeout > c.HeartbeatTimeout {
		bad("LeaderLeaseTimeout", "%v is above HeartbeatTimeout %v", c.LeaderLeaseTimeout, c.HeartbeatTimeout)
	}
	if c.SnapshotThreshold == 0 {
		bad("SnapshotThreshold", "must be at least 1")
	}
	if c.SnapshotRetain < 1 {
		bad("SnapshotRetain", "must be at least 1")
	}
	switch c.LogStore {
	case "", LogStoreBolt, LogStoreWAL:
	default:
		bad("LogStore", "%q is not %q or %q", c.LogStore, LogStoreBolt, LogStoreWAL)
	}
	return errors.Join(errs...)
}

// checkHostPort checks "host:port" and returns the host.
func checkHostPort(addr string, allowZeroPort bool) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("%q is not host:port: %w", addr, err)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return "", fmt.Errorf("%q: port %q is not a number from 0 to 65535", addr, port)
	}
	if p == 0 && !allowZeroPort {
		return "", fmt.Errorf("%q: port 0 cannot be dialed", addr)
	}
	return host, nil
}
