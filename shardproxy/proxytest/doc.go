// Package proxytest is the shard proxy's test kit, for this repository's
// tests and for consumers': Start runs a proxy over a localdb topology on
// free ports, with databases of its own (Proxy.Demo, Proxy.Test) so that
// tests sharing one topology (SharedTopology, stopped by Main) do not see
// each other's tables; Raw is a MySQL client that speaks the protocol by
// hand, for what drivers do not let a test choose.
//
// May import: shardproxy and its packages, localdb, go-sql-driver/mysql.
// Only tests import it.
package proxytest
