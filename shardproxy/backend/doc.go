// Package backend owns the proxy's connections to the shards' servers: one
// pool per server (limits, idle timeout, health checks, prompt errors when a
// server is down and recovery when it returns), the session state a pooled
// connection carries (current database and session variables, applied only
// when they differ from what the connection already has), and the one place
// that decides which server of a shard runs a statement (Router).
//
// Results come back as vitess *sqltypes.Result, decoded once from the
// server's packets and handed to the client side as they are; or, for a
// caller that passes a statement's response to its own client untouched
// (QueryRaw, ExecStmtRaw), as the server's packets, without decoding them,
// the latter through statements the connection prepares on the server.
// Connections announce CLIENT_LOCAL_FILES (localfiles.go), and ExecLocal
// answers a LOAD DATA LOCAL INFILE's file request with the caller's
// content (loadlocal.go).
package backend
