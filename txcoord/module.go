package txcoord

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc"

	"github.com/strata-db/strata/raftstore"
)

// Module is one part of the coordinator's replicated state. Every Raft entry
// starts with the ID byte of the module it belongs to; the node hands the
// rest to that module.
type Module interface {
	// ID is the module's entry tag: 1 is the XA decisions (ModuleXA, this
	// package), 2 the Seata TC (txcoord/seata). 0 is reserved.
	ID() byte
	// Apply applies one committed command (without its ID byte) and returns
	// the answer Propose gets. It must be deterministic: the same commands
	// in the same order give the same state and answers on every node, so
	// it may not read the clock or anything local (a proposer puts the time
	// in the command). A non-nil error is a deterministic refusal: the state
	// is unchanged and Propose returns a *RefusedError carrying the error's
	// text, along with the returned bytes (e.g. the decision that won). cmd
	// must not be kept: copy what is needed.
	Apply(index uint64, cmd []byte) ([]byte, error)
	// Snapshot returns the module's whole state; it is called on the Raft
	// FSM goroutine, between Applies, so it must copy, not share, live state.
	Snapshot() ([]byte, error)
	// Restore replaces the module's whole state; nil or empty data is the
	// empty state (a snapshot taken before the module existed).
	Restore(data []byte) error
}

// Proposer is what a module gets to change its state.
type Proposer interface {
	// Propose applies cmd to module's state through Raft and returns the
	// module's answer. On the leader it applies it; on a follower the node
	// forwards it to the leader over gRPC. It retries (until ctx ends, or
	// Config.ProposeTimeout when ctx has no deadline) while the command was
	// certainly not applied: no leader known, a leader that just stepped
	// down. An error matching ErrUncertain means the command may have been
	// applied (a leader failed mid-commit): retrying is safe only for
	// idempotent commands, so make commands idempotent (a compare-and-set,
	// an id the module dedupes) wherever a retry could follow. A refusal by
	// the module is a *RefusedError (errors.Is ErrRefused).
	Propose(ctx context.Context, module byte, cmd []byte) ([]byte, error)
	// IsLeader reports whether this node believes it leads now.
	IsLeader() bool
	// Barrier waits until this node's modules have applied every entry
	// committed before the call. A module resuming work on a new leader
	// calls it before reading its own state.
	Barrier(ctx context.Context) error
	// Subscribe delivers this node's leadership changes, the current state
	// first, so a module resumes leader-only work (phase two, timeouts) on a
	// new leader and stops it on the old one. cancel ends the subscription;
	// Node.Close closes the channel.
	Subscribe() (events <-chan raftstore.LeadershipEvent, cancel func())
}

// Runner is optionally implemented by a Module that has work of its own
// (timers, phase two, a listener): the node calls Run in a goroutine once
// it is up, and cancels ctx when Close begins, waiting for Run to return
// before it stops Raft.
type Runner interface {
	Run(ctx context.Context, p Proposer)
}

// GRPCService is optionally implemented by a Module that serves a gRPC API
// on the node's gRPC address; Register is called before the server starts.
type GRPCService interface {
	RegisterGRPC(s *grpc.Server)
}

var (
	// ErrRefused is matched by every *RefusedError.
	ErrRefused = errors.New("txcoord: refused")
	// ErrUncertain marks a Propose whose command may or may not have been
	// applied.
	ErrUncertain = errors.New("txcoord: outcome unknown (the command may have been applied)")
	// ErrUnknownModule is a Propose for a module this node does not run.
	ErrUnknownModule = errors.New("txcoord: unknown module")
	// ErrClosed is a Propose on a closed node.
	ErrClosed = errors.New("txcoord: node is closed")
)

// RefusedError is a module's deterministic refusal of a command, the same
// on every node and whichever node proposed it.
type RefusedError struct {
	Module byte
	Msg    string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("txcoord: module %d refused: %s", e.Module, e.Msg)
}

// Is makes errors.Is(err, ErrRefused) hold.
func (e *RefusedError) Is(target error) bool { return target == ErrRefused }
