// Package localdb starts and stops real MariaDB (or MySQL) servers on this
// machine: a topology of shards, each a primary with replicas that replicate
// from it with GTIDs, every server a real mariadbd process with its own data
// directory under one root, listening on 127.0.0.1.
//
// It owns the processes it starts and nothing else: it never signals a
// process it did not start (or that a previous run of it left behind in its
// own data directory, found by pid file and checked against the process's
// command line). Tests, `strata up`, the benchmarks and the chaos drills use
// it to get real backends; the faults it offers (kill -9, pause, replication
// delay, promotion) are the ones those callers need to drill.
//
// The topology is recorded in <root>/topology.json, so a second Start on the
// same root reuses the data directories and remembers which server is each
// shard's primary, even after a promotion.
package localdb
