package config

import (
	"fmt"
	"regexp"
	"time"
)

var metaSchemaRe = regexp.MustCompile(`^[A-Za-z0-9_]+$`)

// ReadWrite configures read/write splitting (package shardproxy/rwsplit,
// over shardproxy/fleet): plain reads outside transactions go to healthy
// replicas within the lag limit, at the session's consistency level;
// everything else goes to the primary. The servers are the shards' primary
// and replicas above, named <shard>-<i> (0 for the configured primary, 1.. for
// the replicas in order).
type ReadWrite struct {
	// Enabled turns splitting on. Default false: every statement goes to
	// the primary, as before.
	Enabled bool `yaml:"enabled"`
	// Consistency is the default read consistency of a session: session
	// (read-your-writes), global (read every write this proxy acknowledged,
	// whichever connection made it), eventual, or strong (primary). A session changes
	// it with SET strata_read_consistency = '...'. Default session.
	Consistency string `yaml:"consistency"`
	// MaxLag: a replica further behind gets no reads. Default 1s.
	MaxLag time.Duration `yaml:"max_lag"`
	// NoReplica is what a read does when no replica qualifies: primary
	// (default) serves it from the primary, fail gives an error.
	NoReplica string `yaml:"no_replica"`
	// SessionWait: a session read after a write may wait this long on a
	// replica for the write (MASTER_GTID_WAIT) before going to the primary.
	// Default 20ms; 0 sends it to the primary at once.
	SessionWait time.Duration `yaml:"session_wait"`
	// CheckInterval is how often every server is checked and the heartbeat
	// written (the resolution of lag). Default 100ms.
	CheckInterval time.Duration `yaml:"check_interval"`
	// CheckTimeout bounds one check. Default 400ms.
	CheckTimeout time.Duration `yaml:"check_timeout"`
	// EjectAfter: a server whose check fails when it has not answered one
	// for this long gets no queries until it answers again (2 consecutive
	// failed checks eject it sooner). Default 1s.
	EjectAfter time.Duration `yaml:"eject_after"`
	// HoldTimeout and HoldMax bound the queries held per shard during a
	// switchover. Defaults 10s and 10000.
	HoldTimeout time.Duration `yaml:"hold_timeout"`
	HoldMax     int           `yaml:"hold_max"`
	// DrainTimeout bounds the wait for statements and transactions running
	// on the old primary when a switchover starts, and then (at least 1s)
	// the wait of SET GLOBAL read_only for statements still running there;
	// past that the switchover is undone. Default 2s.
	DrainTimeout time.Duration `yaml:"drain_timeout"`
	// CatchupTimeout bounds how long the new primary may take to apply all
	// the old one committed. Default 10s.
	CatchupTimeout time.Duration `yaml:"catchup_timeout"`
	// AutoPromoteAfter promotes the most advanced replica when a primary
	// has been down this long. Default 0: never (read the README's note on
	// split brain first). Turn it on in one proxy only; the others follow.
	AutoPromoteAfter time.Duration `yaml:"auto_promote_after"`
	// AdminUser and AdminPassword are the account the proxy's health
	// checks, heartbeats and switchovers use on every server: it must be
	// able to set read_only, change replication and write through
	// read_only (root). Default root, no password.
	AdminUser     string `yaml:"admin_user"`
	AdminPassword string `yaml:"admin_password"`
	// ReplUser and ReplPassword are what replicas use to replicate from a
	// new primary after a switchover. Default: the admin account.
	ReplUser     string `yaml:"repl_user"`
	ReplPassword string `yaml:"repl_password"`
	// MetaSchema holds the heartbeat table, created on the primaries.
	// Default strata_meta.
	MetaSchema string `yaml:"meta_schema"`
	// AdminUsers may run STRATA SWITCHOVER and STRATA FAILOVER through the
	// proxy. Empty (the default): every proxy user may. SHOW STRATA SERVERS
	// is open to all.
	AdminUsers []string `yaml:"admin_users"`
}

// DefaultReadWrite is ReadWrite's defaults.
func DefaultReadWrite() ReadWrite {
	return ReadWrite{
		Consistency:    "session",
		MaxLag:         time.Second,
		NoReplica:      "primary",
		SessionWait:    20 * time.Millisecond,
		CheckInterval:  100 * time.Millisecond,
		CheckTimeout:   400 * time.Millisecond,
		EjectAfter:     time.Second,
		HoldTimeout:    10 * time.Second,
		HoldMax:        10000,
		DrainTimeout:   2 * time.Second,
		CatchupTimeout: 10 * time.Second,
		AdminUser:      "root",
		MetaSchema:     "strata_meta",
	}
}

// validate checks the read_write section.
func (rw *ReadWrite) validate() error {
	f := func(name, format string, args ...any) error {
		return fieldErr("read_write."+name, format, args...)
	}
	switch rw.Consistency {
	case "session", "global", "eventual", "strong":
	default:
		return f("consistency", "%q: want session, global, eventual or strong", rw.Consistency)
	}
	switch rw.NoReplica {
	case "primary", "fail":
	default:
		return f("no_replica", "%q: want primary or fail", rw.NoReplica)
	}
	switch {
	case rw.MaxLag <= 0:
		return f("max_lag", "must be positive, e.g. 1s")
	case rw.SessionWait < 0:
		return f("session_wait", "must not be negative (0: read from the primary at once)")
	case rw.CheckInterval <= 0:
		return f("check_interval", "must be positive, e.g. 100ms")
	case rw.EjectAfter < rw.CheckInterval:
		return f("eject_after", "%v is shorter than check_interval %v", rw.EjectAfter, rw.CheckInterval)
	case rw.CheckTimeout <= 0 || rw.CheckTimeout >= rw.EjectAfter:
		return f("check_timeout", "%v: must be positive and shorter than eject_after %v", rw.CheckTimeout, rw.EjectAfter)
	case rw.HoldTimeout <= 0:
		return f("hold_timeout", "must be positive, e.g. 10s")
	case rw.HoldMax < 1:
		return f("hold_max", "%d, need at least 1", rw.HoldMax)
	case rw.DrainTimeout < 0:
		return f("drain_timeout", "must not be negative")
	case rw.CatchupTimeout <= 0:
		return f("catchup_timeout", "must be positive, e.g. 10s")
	case rw.AutoPromoteAfter < 0:
		return f("auto_promote_after", "must not be negative (0: off)")
	case rw.AdminUser == "":
		return f("admin_user", "required (an account that may set read_only and change replication, e.g. root)")
	case !metaSchemaRe.MatchString(rw.MetaSchema):
		return f("meta_schema", "%q: use letters, digits and _", rw.MetaSchema)
	}
	for i, u := range rw.AdminUsers {
		if u == "" {
			return f(fmt.Sprintf("admin_users[%d]", i), "empty user name")
		}
	}
	return nil
}

// ServerName is the name read/write splitting gives the i-th server of a
// shard: 0 is the configured primary, 1.. the replicas in order.
func ServerName(shard string, i int) string { return fmt.Sprintf("%s-%d", shard, i) }
