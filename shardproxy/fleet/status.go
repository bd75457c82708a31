package fleet

import "time"

// ServerStatus is one server as the fleet sees it, for SHOW STRATA SERVERS.
type ServerStatus struct {
	Shard, Name, Addr string
	Role              Role
	Healthy           bool
	ReadOnly          bool
	// Lag is the heartbeat lag (replicas); LagKnown is false before the
	// first heartbeat reached the fleet's view of it.
	Lag      time.Duration
	LagKnown bool
	Position string // applied GTID position
	// Replication, for replicas: "running", "stopped", "io stopped",
	// "sql stopped", "" for a primary; ReplError is the last replication error.
	Replication string
	ReplError   string
	Delay       int // MASTER_DELAY, seconds
	Outstanding int64
	Reads       uint64
	Writes      uint64
	Ejections   uint64
	// LastError is the last failed check's error, "" when the last check passed.
	LastError string
	// Fenced: a former primary replaced while down, to be fenced with
	// read_only when it returns.
	Fenced bool
}

// Status lists every server, shard by shard in config order, servers by
// name.
func (f *Fleet) Status() []ServerStatus {
	now := f.now()
	var out []ServerStatus
	for _, sh := range f.order {
		for _, s := range sh.sortedServers() {
			st := ServerStatus{
				Shard: sh.name, Name: s.cfg.Name, Addr: s.cfg.Addr, Role: s.role(),
				Healthy: s.healthy.Load(), Position: s.position().String(),
				Outstanding: s.outstanding.Load(), Reads: s.reads.Load(), Writes: s.writes.Load(),
			}
			st.Lag, st.LagKnown = s.lag(now)
			s.mu.Lock()
			st.ReadOnly, st.Ejections, st.LastError, st.Fenced = s.readOnly, s.ejections, s.lastErr, s.needsFence
			if st.Role == RoleReplica {
				st.ReplError, st.Delay = s.replErr, s.sqlDelay
				switch {
				case !s.replicating:
					st.Replication = "not configured"
				case s.ioRunning && s.sqlRunning:
					st.Replication = "running"
				case !s.ioRunning && !s.sqlRunning:
					st.Replication = "stopped"
				case !s.ioRunning:
					st.Replication = "io stopped"
				default:
					st.Replication = "sql stopped"
				}
			}
			s.mu.Unlock()
			out = append(out, st)
		}
	}
	return out
}
