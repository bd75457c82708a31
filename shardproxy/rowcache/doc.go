// Package rowcache is the proxy's result cache for hot rows, built on
// cachetier: it decides which statements it may answer from memory (point
// selects by a cached table's primary key, or by a declared unique key),
// what a write through the proxy invalidates, and what a transaction seen in
// a shard's binlog (package binlogtail) invalidates.
//
// It owns, per cached table: a cachetier.Cache per key (the primary key and
// each declared unique key), the bloom filter build from the table's keys at
// start (and again after a write that may have inserted rows it cannot
// name), one binlog tailer per shard, the SHOW STRATA CACHE / HOTKEYS /
// BINLOG answers and the Prometheus metrics. It also owns the wire form of
// an entry (encode.go): the text-protocol packets a hit is answered with in
// the proxy's fast lane (the entry's values are slices of them, so the
// budget holds each value once), the shape's column definitions, and the
// binary-protocol rows encoded from the values at send time.
//
// It does not run statements: the proxy passes a loader that runs the
// client's own statement on the shard primary (fills never come from
// replicas, so a fill is never older than the primary at the time the fill
// took its version), and calls Invalidate after a write's backend OK and
// before its client OK (at COMMIT for a transaction). Which session may use
// the cache (outside transactions, plain reads) is the proxy's decision.
//
// Keys are integer values, or values of columns with a binary collation: a
// value is cached under its canonical text, and with a case- or
// accent-insensitive collation two texts name one row, so such keys are
// refused at start.
//
// May import: cachetier, shardproxy/binlogtail, vitess (sqlparser, go/mysql,
// sqltypes), prometheus client_golang. Never: executor, session, shardproxy.
package rowcache
