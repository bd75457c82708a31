// Package raftstore is Strata's only user of hashicorp/raft, raft-boltdb
// and raft-wal: it owns running a Raft node for a consumer's state machine
// (the ID service and the transaction coordinator each run their own group).
//
// It owns: starting a node, bootstrapping a cluster or joining one, the
// log and stable store (bolt in DataDir/raft.db, or raft-wal's segments in
// DataDir/wal, chosen by Config.LogStore for a new directory), file snapshots
// (DataDir/snapshots), the TCP transport, Apply with a timeout, membership
// changes, leadership notifications, and each member's metadata (its API
// addresses), replicated so that any node can point a client at the leader.
//
// Consumers bring an FSM of three methods and never see a Raft type: errors
// are this package's (*NotLeaderError, ErrTimeout, ErrShutdown), and member
// metadata travels in the same log and snapshots, behind the FSM's back.
//
// A consumer that keeps leader-only state (cached ranges, leases) follows
// Subscribe: on gaining leadership it calls Barrier before serving, so its
// FSM holds every committed entry, and on losing it drops that state.
//
// The exported Cluster in testing.go runs real nodes over TCP on loopback for
// consumers' tests too, with Kill, Restart, Partition and Heal.
package raftstore
