// Package fleet knows every server of every shard and answers the proxy's
// routing questions: which server is a shard's primary, which replica may
// serve a read at the session's consistency level, and when a query must
// wait (a switchover) or fail (the primary is down).
//
// It owns its own admin connections to every server (go-sql-driver/mysql,
// with the credentials the config gives for each server) and nothing else:
// the proxy's backend pools stay the proxy's. Over those connections it
//
//   - checks every server continuously and ejects one that stops answering
//     (killed, paused) within Config.EjectAfter, and takes it back when it
//     answers again;
//   - writes a heartbeat row on each primary (Config.MetaSchema.heartbeat, as
//     pt-heartbeat does) and reads it on the replicas: a replica's lag is how
//     long ago the fleet wrote the oldest heartbeat the replica has not
//     applied yet, measured on the fleet's own clock, so it needs no clock
//     agreement between servers and resolves to about Config.CheckInterval;
//   - tracks each server's applied MariaDB GTID position, so a read that
//     must see a session's last write goes only to a replica known to have
//     applied it (or one the caller makes wait with MASTER_GTID_WAIT);
//   - performs planned switchovers (read_only on the old primary, wait until
//     the chosen replica has every GTID, promote it, repoint the old primary
//     with MASTER_USE_GTID=current_pos and the others with slave_pos) behind a per-shard
//     gate that holds primary-bound queries meanwhile, and, when configured,
//     promotes the most advanced replica after the primary has been down for
//     a while, fencing the old primary with read_only when it returns.
//
// Routing is lease based: AcquireRead and AcquirePrimary return a Lease for
// one query (or one transaction) and the caller Releases it when done, which
// is how the fleet balances by least outstanding queries and drains a
// primary before a switchover.
package fleet
