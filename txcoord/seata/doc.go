// Package seata is a Seata v1 RPC transaction coordinator (TC) for
// unmodified seata-go v1.2.0 applications, on the coordinator's Raft group.
//
// It owns: the Seata frame (read with bounds checks; bodies through
// seata-go's own codec packages), client sessions (heartbeats, RegisterTM,
// RegisterRM), the global-transaction rules as a deterministic state
// machine (State, applied in Raft order by Module, module byte 2 of the
// txcoord log), AT row locks, and the phase-two driver that sends
// BranchCommit/BranchRollback to RMs from the leader, with its own timeout
// and retries, and resumes on a new leader from the replicated state.
//
// It may import raftstore (for the leadership event type) and seata-go's
// protocol packages; it reaches Raft only through the Proposer interface.
package seata
