// Package rwsplit is the proxy's read/write splitting: a backend.Router
// that sends plain reads outside transactions to a shard's replicas and
// everything else to its primary, on top of package fleet (health, lag,
// GTID positions, switchover). It also owns the statements that administer
// it: SHOW STRATA SERVERS, STRATA SWITCHOVER and STRATA FAILOVER, and the
// primary hint /*+ strata:primary */.
//
// Per session it keeps what read-your-writes needs: for each shard, that
// the session wrote there and when, and the primary's GTID position read
// after that write (lazily, at the session's next read of the shard, and
// shared between sessions whose writes a single read covers). A read in
// `session` consistency goes to a replica known to have applied that
// position, or one made to wait for it with MASTER_GTID_WAIT, else to the
// primary.
package rwsplit
