package raftstore

import (
	"context"
	"errors"
	"fmt"
	"maps"

	"github.com/hashicorp/raft"
)

var (
	// ErrNotLeader is matched (errors.Is) by every *NotLeaderError.
	ErrNotLeader = errors.New("raftstore: not the leader")
	// ErrLeadershipLost is matched by a *NotLeaderError whose command was
	// already in the log when leadership was lost: it may still commit, so a
	// retry on the new leader can apply it twice.
	ErrLeadershipLost = errors.New("raftstore: leadership lost, outcome unknown")
	// ErrTimeout means the operation did not finish in time. For Apply the
	// command may still commit.
	ErrTimeout = errors.New("raftstore: timeout")
	// ErrShutdown means the node is closed (or closing). An Apply that was
	// already waiting when Close began may still commit, as with ErrTimeout.
	ErrShutdown = errors.New("raftstore: node is shut down")
)

// NotLeaderError is returned by operations that only the leader can do. It
// names the leader this node knows of, if any, with the leader's replicated
// Meta so a caller can redirect its client to the leader's own API address.
type NotLeaderError struct {
	LeaderID   string            // "" when no leader is known
	LeaderAddr string            // Raft address; "" when no leader is known
	LeaderMeta map[string]string // nil when the leader or its meta is unknown
	// MaybeCommitted is true when the command had been sent before
	// leadership was lost: it may yet commit (errors.Is ErrLeadershipLost).
	MaybeCommitted bool
}

func (e *NotLeaderError) Error() string {
	msg := "raftstore: not the leader"
	if e.MaybeCommitted {
		msg = "raftstore: leadership lost while committing (the command may still commit)"
	}
	if e.LeaderID == "" {
		return msg + "; leader unknown"
	}
	return fmt.Sprintf("%s; leader is %s at %s", msg, e.LeaderID, e.LeaderAddr)
}

// Is makes errors.Is(err, ErrNotLeader) hold, and ErrLeadershipLost when
// MaybeCommitted.
func (e *NotLeaderError) Is(target error) bool {
	return target == ErrNotLeader || (e.MaybeCommitted && target == ErrLeadershipLost)
}

// notLeader describes the current leader as this node knows it.
func (n *Node) notLeader(maybeCommitted bool) *NotLeaderError {
	addr, id := n.raft.LeaderWithID()
	if string(id) == n.cfg.NodeID {
		// Still leader on paper while handing leadership over or stepping
		// down: naming ourselves would send the client straight back here.
		addr, id = "", ""
	}
	e := &NotLeaderError{LeaderID: string(id), LeaderAddr: string(addr), MaybeCommitted: maybeCommitted}
	if id != "" {
		e.LeaderMeta = n.fsm.metaOf(string(id))
	}
	return e
}

// translate maps hashicorp/raft's errors onto this package's, so consumers
// never see raft types.
func (n *Node) translate(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return n.notLeader(false)
	case errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrAbortedByRestore):
		return n.notLeader(true)
	case errors.Is(err, raft.ErrRaftShutdown), errors.Is(err, raft.ErrTransportShutdown):
		return fmt.Errorf("raftstore: %s: %w", op, ErrShutdown)
	case errors.Is(err, raft.ErrEnqueueTimeout), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("raftstore: %s: %w: %w", op, ErrTimeout, err)
	default:
		return fmt.Errorf("raftstore: %s: %w", op, err)
	}
}

func copyMeta(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	return maps.Clone(m)
}
