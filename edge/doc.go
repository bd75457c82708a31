// Package edge is Strata's thin API edge: an HTTP server in front of the
// ID service and the shard proxy that authenticates every request
// (HMAC-SHA256 signatures over method, path, sorted query, body hash,
// timestamp and nonce; see edge/client), rate limits it (token buckets per
// app key and per client IP, per route, shared across a fleet of edges by
// leasing tokens from one of them), guards the backends (concurrency
// limits, timeouts, circuit breakers), sends a share of chosen traffic to
// a canary backend (gray release), and serves the SRE console (/console),
// /openapi.json, /metrics and /healthz.
//
// It owns the HTTP surface only. IDs come from the ID service through
// idserver/client (gRPC); rows and admin statements go to the shard proxy
// over the MySQL protocol (go-sql-driver), as any client's would. Data of
// other components (hot keys, cache, transactions, drills) reaches the
// console through Panel sources: a URL in the config or SetPanel.
//
// May import: idserver/client, edge/client, the standard library and the
// project's chosen libraries (prometheus, goccy/go-yaml, x/time/rate,
// gobreaker, go-sql-driver). Nothing of the proxy's or the ID service's
// internals.
package edge
