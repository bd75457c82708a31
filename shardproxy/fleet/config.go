package fleet

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"time"
)

// Role is a server's place in its shard.
type Role string

const (
	RolePrimary Role = "primary"
	RoleReplica Role = "replica"
)

// Consistency is what a read must see.
type Consistency string

const (
	// Session is read-your-writes: a read sees every write its session
	// committed before it (on a replica known to have applied the session's
	// last GTID on that shard, else on the primary), and otherwise reads as
	// Eventual does.
	Session Consistency = "session"
	// Global is read-your-writes across connections: a read sees every
	// write this proxy acknowledged, to any session, before the read began
	// (MaxScale's causal_reads=global). What an application with a
	// connection pool expects of one database: it writes on one pooled
	// connection and reads on another. It reads as Session does, with the
	// proxy's last write on the shard in place of the session's.
	Global Consistency = "global"
	// Eventual reads from any healthy replica within Config.MaxLag.
	Eventual Consistency = "eventual"
	// Strong reads from the primary.
	Strong Consistency = "strong"
)

// ParseConsistency accepts "session", "global", "eventual" and "strong"
// (any case).
func ParseConsistency(s string) (Consistency, error) {
	switch c := Consistency(lower(s)); c {
	case Session, Global, Eventual, Strong:
		return c, nil
	}
	return "", fmt.Errorf("fleet: consistency %q: want session, global, eventual or strong", s)
}

// NoReplica says what a read does when no replica qualifies.
type NoReplica string

const (
	// FallbackPrimary serves the read from the primary.
	FallbackPrimary NoReplica = "primary"
	// FailRead fails the read with ErrNoReplica.
	FailRead NoReplica = "fail"
)

// ServerConfig is one MariaDB server of a shard.
type ServerConfig struct {
	// Name is unique across the fleet, e.g. "s0-1"; it names the server in
	// metrics, SHOW STRATA SERVERS and switchover commands.
	Name string
	// Addr is host:port, as the proxy and the shard's replicas reach it.
	Addr string
	// Role is the role at start. Start corrects it from the servers
	// themselves when exactly one server of the shard is writable and not
	// replicating (after a switchover the config may be stale).
	Role Role
	// User and Password are the fleet's own admin account on the server. It
	// needs to change read_only and replication and to write through
	// read_only (MariaDB's root does; the proxy's application user must
	// not, so that read_only fences it).
	User, Password string
}

// ShardConfig is a shard: one primary and its replicas.
type ShardConfig struct {
	Name    string
	Servers []ServerConfig
}

// Config is the fleet's configuration. Start from DefaultConfig.
type Config struct {
	Shards []ShardConfig

	// CheckInterval is how often every server is checked (and each
	// primary's heartbeat written). It is also the resolution of lag.
	CheckInterval time.Duration
	// CheckTimeout bounds one check. Keep it under EjectAfter/2 so two
	// failed checks fit in EjectAfter.
	CheckTimeout time.Duration
	// EjectAfter: a server whose last successful check is this old when a
	// check of it begins, and that check fails, is ejected (no queries
	// routed to it): at most EjectAfter + CheckTimeout after it went silent.
	// Silence is measured to the start of the failed check, so a stall of
	// the proxy itself, which makes the check in flight overrun, does not
	// eject anything.
	EjectAfter time.Duration
	// FailuresToEject ejects a server sooner, after this many consecutive
	// failed checks (a killed server refuses connections at once; with the
	// defaults a SIGSTOPped one fails two checks in about 0.9 s).
	FailuresToEject int

	// MaxLag: a replica further behind gets no eventual (or session) reads
	// until it is back under.
	MaxLag time.Duration
	// NoReplica says what a read does when no replica qualifies.
	NoReplica NoReplica
	// SessionWait: a session read whose last write a replica is not yet
	// known to have applied may still go to a replica lagging less than
	// this, which the caller first makes wait for the GTID with
	// MASTER_GTID_WAIT for at most this long (else the read goes to the
	// primary). 0 sends such reads straight to the primary.
	SessionWait time.Duration

	// HoldTimeout bounds how long a primary-bound query waits at the gate
	// of a shard in switchover; HoldMax bounds how many wait per shard.
	HoldTimeout time.Duration
	HoldMax     int
	// DrainTimeout bounds the wait, after closing the gate, for queries and
	// transactions already running on the old primary. Transactions still
	// open after it fail at their next write (read_only).
	DrainTimeout time.Duration
	// CatchupTimeout bounds how long the promoted replica may take to apply
	// everything the old primary committed.
	CatchupTimeout time.Duration

	// AutoPromoteAfter, when positive, promotes the most advanced healthy
	// replica once a shard's primary has been ejected this long. 0 (the
	// default) never promotes on its own: see the split-brain note in the
	// README before turning it on.
	AutoPromoteAfter time.Duration

	// ReplUser and ReplPassword are what repointed replicas use to
	// replicate from a new primary; empty uses each replica's own User and
	// Password.
	ReplUser, ReplPassword string

	// MetaSchema is the schema of the heartbeat table, created on the
	// primaries (and replicated).
	MetaSchema string
	// HeartbeatID names this fleet's heartbeat row, so several proxies can
	// each write their own. Empty: derived from host name and pid.
	HeartbeatID string
}

// DefaultConfig returns the defaults: checks every 100 ms, ejection within
// about a second, max lag 1 s, session reads falling back to the primary.
func DefaultConfig() Config {
	return Config{
		CheckInterval:   100 * time.Millisecond,
		CheckTimeout:    400 * time.Millisecond,
		EjectAfter:      time.Second,
		FailuresToEject: 2,
		MaxLag:          time.Second,
		NoReplica:       FallbackPrimary,
		SessionWait:     20 * time.Millisecond,
		HoldTimeout:     10 * time.Second,
		HoldMax:         10000,
		DrainTimeout:    2 * time.Second,
		CatchupTimeout:  10 * time.Second,
		MetaSchema:      "strata_meta",
	}
}

var identRe = regexp.MustCompile(`^[A-Za-z0-9_]+$`)

// Validate reports the first field that is wrong and why.
func (c *Config) Validate() error {
	if len(c.Shards) == 0 {
		return errors.New("fleet: Config.Shards: need at least one shard")
	}
	shards := map[string]bool{}
	servers := map[string]bool{}
	for i, sh := range c.Shards {
		f := fmt.Sprintf("fleet: Config.Shards[%d]", i)
		if sh.Name == "" {
			return errors.New(f + ".Name: required")
		}
		if shards[sh.Name] {
			return fmt.Errorf("%s.Name: shard %q twice", f, sh.Name)
		}
		shards[sh.Name] = true
		primaries := 0
		for j, s := range sh.Servers {
			g := fmt.Sprintf("%s.Servers[%d]", f, j)
			switch {
			case s.Name == "":
				return errors.New(g + ".Name: required")
			case servers[s.Name]:
				return fmt.Errorf("%s.Name: server %q twice", g, s.Name)
			case s.Role != RolePrimary && s.Role != RoleReplica:
				return fmt.Errorf("%s.Role: %q, want primary or replica", g, s.Role)
			case s.User == "":
				return errors.New(g + ".User: required (the fleet's admin account)")
			}
			if _, _, err := net.SplitHostPort(s.Addr); err != nil {
				return fmt.Errorf("%s.Addr: %q: %v", g, s.Addr, err)
			}
			servers[s.Name] = true
			if s.Role == RolePrimary {
				primaries++
			}
		}
		if primaries != 1 {
			return fmt.Errorf("%s.Servers: %d primaries, want exactly 1", f, primaries)
		}
	}
	switch {
	case c.CheckInterval <= 0:
		return errors.New("fleet: Config.CheckInterval: must be positive")
	case c.CheckTimeout <= 0 || c.CheckTimeout >= c.EjectAfter:
		return fmt.Errorf("fleet: Config.CheckTimeout: %v, must be positive and shorter than EjectAfter %v", c.CheckTimeout, c.EjectAfter)
	case c.EjectAfter < c.CheckInterval:
		return fmt.Errorf("fleet: Config.EjectAfter: %v is shorter than CheckInterval %v", c.EjectAfter, c.CheckInterval)
	case c.FailuresToEject < 1:
		return errors.New("fleet: Config.FailuresToEject: must be at least 1")
	case c.MaxLag <= 0:
		return errors.New("fleet: Config.MaxLag: must be positive")
	case c.NoReplica != FallbackPrimary && c.NoReplica != FailRead:
		return fmt.Errorf("fleet: Config.NoReplica: %q, want primary or fail", c.NoReplica)
	case c.SessionWait < 0:
		return errors.New("fleet: Config.SessionWait: must not be negative")
	case c.HoldTimeout <= 0:
		return errors.New("fleet: Config.HoldTimeout: must be positive")
	case c.HoldMax < 1:
		return errors.New("fleet: Config.HoldMax: must be at least 1")
	case c.DrainTimeout < 0:
		return errors.New("fleet: Config.DrainTimeout: must not be negative")
	case c.CatchupTimeout <= 0:
		return errors.New("fleet: Config.CatchupTimeout: must be positive")
	case c.AutoPromoteAfter < 0:
		return errors.New("fleet: Config.AutoPromoteAfter: must not be negative (0 is off)")
	case !identRe.MatchString(c.MetaSchema):
		return fmt.Errorf("fleet: Config.MetaSchema: %q, want letters, digits and _", c.MetaSchema)
	case len(c.HeartbeatID) > 64:
		return errors.New("fleet: Config.HeartbeatID: at most 64 characters")
	}
	return nil
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
