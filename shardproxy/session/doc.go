// Package session owns one client session's state and its backend
// connections: the current database, autocommit and the explicit
// transaction, system variables (a backend.State applied to whichever
// backend connection serves the session) and user variables, the settings
// the proxy applies itself (Vars: next-transaction characteristics,
// sql_select_limit, SET insert_id, SQL_CALC_FOUND_ROWS), warnings,
// LAST_INSERT_ID/ROW_COUNT/FOUND_ROWS, the transaction's pinned
// connection, reserved connections (reserve.go), and the ID-service key
// generator.
//
// A Session is the engine's VCursor: ExecuteShards runs a plan's shard
// queries on the pools (outside a transaction, one connection per query,
// in parallel; inside one, on the pinned connection), collecting each
// connection's warnings and FOUND_ROWS() before the connection serves
// anyone else.
//
// It does not parse, plan or classify statements (package executor does),
// nor speak the client protocol (package wire). What every session of a
// proxy shares (pools, metrics, limits) comes in a Shared, built by the
// server.
//
// Transactions that span shards (xa.go) run as XA branches finished by
// package xa's committer, when the database's transaction_mode is twopc.
//
// May import: backend, config, engine, fleet, vschema, mysqlerr, xa,
// idserver/client, vitess go/mysql and sqltypes. Never: executor, wire,
// planner, shardproxy.
package session
