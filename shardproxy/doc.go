// Package shardproxy is Strata's shard proxy as a server: New wires the
// configuration, the backend pools (package backend), the read/write
// router (rwsplit), the ID-service key generator, the executor and the
// vitess listener together; Serve runs them and the admin HTTP server
// (/metrics, /healthz, /debug/pprof, admin.go); metrics.go registers the
// proxy's metrics.
//
// The work is done below it, one concern per package:
//   - wire: the client connection (framing, TLS, commands answered below
//     the listener, authentication, packet builders);
//   - executor: the listener's mysql.Handler and the per-query path
//     (dispatch, fast path and fast lane, plan cache, SET/USE/SHOW/EXPLAIN,
//     prepared statements);
//   - session: a client session's state, transactions, reserved
//     connections, and the engine.VCursor over the pools;
//   - planner and engine: statements to plans, and plans run against a
//     VCursor; they know nothing of sessions;
//   - backend, fleet, rwsplit: pools, health and which server of a shard
//     serves a statement;
//   - config, vschema: the configuration and the sharding schema;
//   - rowcache (over cachetier), binlogtail: the hot-row cache and the
//     binlog tailers that invalidate it (cache.go starts them);
//   - proxytest: the test kit (a proxy over a localdb topology, a raw
//     client).
//
// May import: every shardproxy package, idserver/client, localdb only in
// tests. docs/architecture.md has the map and the import rules.
package shardproxy
