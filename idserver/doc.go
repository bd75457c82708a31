// Package idserver is Strata's global ID service: a Raft group (raftstore)
// that hands out IDs no node ever issues twice, over gRPC and HTTP.
//
// It owns two modes and everything between them and the network:
//
//   - Segment mode, per tag (a namespace such as "orders"): the leader
//     reserves a range by committing a new high-water mark through Raft and
//     only then serves IDs from it, out of memory, with a double buffer (the
//     next range is reserved while the current one is still in use) and a
//     step that grows under load and shrinks when idle. Ranges are computed
//     by the FSM in log order, so every range is above every range reserved
//     before it, whichever leader reserved it. A leader serves only after a
//     Barrier, only while it holds a leader lease (shorter than the Raft
//     heartbeat timeout, renewed with VerifyLeader), and drops every cached
//     range when it loses leadership. So, per tag, every ID is greater than
//     every ID any caller received before its call began, across leader
//     changes and whole-cluster restarts.
//
//   - Snowflake mode: every node issues 64-bit IDs (time, worker,
//     sequence; the layout is configurable) from its own worker ID, leased
//     through Raft with a TTL. The lease also carries a timestamp
//     reservation: a worker issues IDs only with timestamps it has committed
//     ahead of time (a few seconds at once, so not every ID costs a round
//     trip), and whoever holds the worker next starts above the reservation.
//     A restart whose clock is behind, or a worker that changes hands, thus
//     never repeats an ID, however wrong the clocks are. A clock that steps
//     back a few milliseconds is waited out; further back, the node refuses
//     with an error until its clock passes the last timestamp it issued.
//
// The APIs (every node serves them; a follower forwards segment requests to
// the leader): gRPC (package idpb), HTTP JSON under /v1, Leaf-compatible
// /api/segment/get/{tag} and /api/snowflake/get/{key}, /metrics and
// /healthz. Package client is the Go client, with a local buffer.
package idserver
