// Package bench is the one benchmark harness behind `strata bench NAME`:
// each Benchmark starts what it needs (a localdb topology, the proxy or
// the ID service from the strata binary, HAProxy) and returns its variants
// (the subject and the baselines measured in the same run); the harness
// interleaves rounds of every variant, prints a table of figures and
// ratios to the reference with their spread, and writes the same report as
// the drills (JSON and an HTML page with SVG plots from chaos/plot).
//
// It drives the system only as a user would: sysbench and Go clients over
// the MySQL protocol, HTTP and gRPC; processes through localdb and the
// binary. It may import: localdb, idserver/client, edge/client, chaos
// (StartGroup, for the coordinator group), chaos/plot, internal/zipf.
package bench
