// Package chaos runs drills: it brings up (or attaches to) a Strata stack,
// runs workloads against it as a user would (the MySQL protocol through the
// proxy, the ID service's gRPC API), injects faults on a schedule, undoes
// every fault, and checks the workloads' histories for anomalies, giving a
// verdict and a report (JSON and a self-contained HTML page).
//
// It owns: the drill file format (Load, Drill.Validate), the faults (Fault:
// Inject/Recover/Name, in the manner of etcd's failpoints) over processes
// (SIGKILL, SIGSTOP/SIGCONT), network links (Toxiproxy embedded as a
// library between the proxy and each MariaDB server, and between clients
// and the proxy), replication (MASTER_DELAY) and the proxy's admin
// statements (STRATA SWITCHOVER); the journal of active faults and started
// processes that Cleanup reads after a crash of the drill itself; the
// workloads and their checkers; the report.
//
// It drives the system only as a user would: processes through localdb and
// the strata binary, MySQL through go-sql-driver/mysql, the ID service
// through its public Go client. It imports no package internals.
//
// It may import: localdb, idserver/client, chaos/plot, and third-party
// clients (go-sql-driver/mysql, toxiproxy, porcupine, goccy/go-yaml).
package chaos
