// Package xa is the proxy's side of atomic cross-shard transactions: the
// XID format (XID), the two-phase committer (Committer) that finishes a
// transaction's XA branches, and the resolver (Resolver) that finds the
// prepared branches a crash or a failover left behind and finishes them
// as the coordinator's recorded decision says; and which transactions to
// roll back to break a deadlock across shards (Victims), which no shard's
// server can see.
//
// An XID names the coordinator's transaction id in its gtrid (decimal),
// the shard in its bqual, and carries FormatID, so `XA RECOVER` on a
// shard shows at a glance which prepared transactions are Strata's (and
// the resolver touches no other).
//
// The rule that keeps every shard agreeing: a branch is committed only
// after the coordinator (txcoord) has durably recorded commit for its
// transaction; the decision is a compare-and-set, so a committer and a
// resolver that presumes abort can never both win. Recording abort
// first, then rolling back, is the only way a prepared branch is rolled
// back.
//
// It knows connections only through the small interfaces it declares
// (Conn, Querier, Coordinator): it may import the txcoord client API and
// vitess's sqlerror, nothing of the proxy's sessions.
package xa
