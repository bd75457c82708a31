// Package shardproxy is the MySQL server side of Strata's shard proxy: it
// accepts any MySQL client (vitess go/mysql Listener), authenticates it
// against the configured users, keeps each connection's session (current
// database, session and user variables, transaction, prepared statements,
// warnings), classifies every statement, and either answers it itself (SET,
// USE, transactions, SHOW DATABASES, SHOW WARNINGS, EXPLAIN, @@version) or
// plans it (parse, normalize, plan cache, planner) and runs the plan through
// the session, which implements the engine's VCursor over the backend pools.
//
// It also owns the proxy's observability: Prometheus metrics per shard, the
// admin HTTP server (/metrics, /healthz, /debug/pprof) and the slow query
// log.
//
// The planner and the engine (packages planner and engine) know nothing of
// sessions: a plan sees only ExecuteShards. This package knows nothing of
// routing: which shard a statement needs is the plan's business, which
// server of that shard runs it is backend.Router's.
package shardproxy
