// Package txcoord is Strata's transaction coordinator: one Raft group (on
// raftstore) whose replicated state is made of modules, and the gRPC API
// proxies use to record the outcome of their distributed transactions.
//
// It owns the node (Config, Start, Node: the Raft member, the gRPC server,
// forwarding of a follower's proposals to the leader), the Module and
// Proposer contract, and module 1, the XA decisions the proxy's two-phase
// commit records: transaction ids, decide as a compare-and-set (the first
// decision wins), completion and garbage collection, batching of
// decisions into one Raft entry under load; package client is the proxies'
// Go client. Module 2, the Seata TC, lives in txcoord/seata on the same
// group.
//
// Every Raft entry starts with the ID byte of its module; a snapshot is the
// modules' snapshots side by side. A module sees only its own commands, in
// log order, and changes state only through Propose, so every node holds the
// same state. TestGroup (testing.go) runs a real group on loopback for
// modules' tests, with Kill and Restart.
//
// It may import raftstore and the seata-go protocol packages (in
// txcoord/seata); nothing of the proxy.
package txcoord
