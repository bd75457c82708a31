package config

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Config is the proxy's whole configuration. Start from DefaultConfig: Load
// decodes the file over it, so a field the file leaves out keeps its default.
type Config struct {
	// Listen is the MySQL protocol address. Default 127.0.0.1:3307.
	Listen string `yaml:"listen"`
	// AdminListen serves /metrics, /healthz and /debug/pprof over HTTP.
	// Default 127.0.0.1:15000; "off" disables it.
	AdminListen string `yaml:"admin_listen"`
	// Users may connect; each needs a name and may have a password (plain
	// text here: the proxy needs it to check both mysql_native_password and
	// caching_sha2_password scrambles). Default: root with no password.
	Users []User `yaml:"users"`
	// AuthPlugin is the authentication method the proxy proposes in its
	// greeting: mysql_native_password (default) or caching_sha2_password.
	// Either works whatever is proposed: a client that asks for the other
	// gets it.
	AuthPlugin string `yaml:"auth_plugin"`
	// TLS, when Cert and Key (or Dir) are set, lets clients upgrade to TLS.
	TLS TLS `yaml:"tls"`
	// Backend is how the proxy connects to the shards' servers.
	Backend Backend `yaml:"backend"`
	// Shards in order. The order is part of the hash shard function: adding,
	// removing or reordering shards moves rows.
	Shards []Shard `yaml:"shards"`
	// Databases are the logical databases clients see, by name.
	Databases map[string]*Database `yaml:"databases"`
	// PlanCacheSize bounds the number of cached plans (keyed by normalized
	// query). Default 10000; a few hundred distinct query shapes is typical.
	PlanCacheSize int `yaml:"plan_cache_size"`
	// SlowQueryThreshold logs one line for each statement that takes longer.
	// Default 1s; 0 disables the log.
	SlowQueryThreshold time.Duration `yaml:"slow_query_threshold"`
	// QueryTimeout bounds how long one statement may wait on a backend; a
	// backend that does not answer in time gives the client an error instead
	// of a hang. Default 0: no limit (a dead backend still errors at once; a
	// stalled one waits).
	QueryTimeout time.Duration `yaml:"query_timeout"`
	// MaxAllowedPacket bounds one client packet (a statement with its
	// data), in bytes, as MySQL's max_allowed_packet does: a client that
	// sends more gets error 1153 and is disconnected. Default 64 MiB.
	MaxAllowedPacket int `yaml:"max_allowed_packet"`
	// MaxClientConnections bounds client connections that have logged in.
	// Default 4096.
	MaxClientConnections int `yaml:"max_client_connections"`
	// ConnectTimeout closes a client connection that has not completed its
	// login (handshake and authentication) this long after it was
	// accepted, as MariaDB's connect_timeout does. Default 10s.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// MaxUnauthenticated bounds connections still in their login, over
	// all clients; they do not take slots of max_client_connections, so
	// connections that never log in cannot lock real clients out. Default
	// 4096.
	MaxUnauthenticated int `yaml:"max_unauthenticated"`
	// MaxUnauthenticatedPerHost bounds connections still in their login
	// from one client address: a new one over it gets 1040 and is closed.
	// Default 256 (a pool opening its connections at once stays far
	// below: a login takes a millisecond or two).
	MaxUnauthenticatedPerHost int `yaml:"max_unauthenticated_per_host"`
	// CreateDatabases makes the proxy create every logical database on the
	// shards that hold it at start (CREATE DATABASE IF NOT EXISTS). Default
	// true.
	CreateDatabases bool `yaml:"create_databases"`
	// ServerVersion is the version the proxy announces. Default: the first
	// shard primary's own version, so clients detect MariaDB features.
	ServerVersion string `yaml:"server_version"`
	// ReadWrite configures read/write splitting (readwrite.go).
	ReadWrite ReadWrite `yaml:"read_write"`
	// IDService generates the shard keys of rows inserted without them
	// (idservice.go). Default: none.
	IDService IDService `yaml:"id_service"`
	// Cache caches hot rows of the tables it lists (cache.go). Default:
	// none.
	Cache Cache `yaml:"cache"`
	// Transactions connects the proxy to the transaction coordinator for
	// atomic cross-shard transactions (transactions.go). Default: none.
	Transactions Transactions `yaml:"transactions"`
}

// User is one account of the proxy.
type User struct {
	Name     string `yaml:"name"`
	Password string `yaml:"password"`
	// Admin sees every session in SHOW PROCESSLIST and may KILL any, as a
	// MariaDB user with PROCESS and CONNECTION ADMIN (SUPER) does; other
	// users see and kill their own sessions only. Default false; the
	// default config's root is an admin.
	Admin bool `yaml:"admin"`
}

// TLS configures optional TLS for client connections.
type TLS struct {
	// Cert and Key are PEM files. Both or neither.
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
	// Dir, instead of Cert and Key, is a directory where the proxy makes a
	// CA (ca.pem) and a server certificate signed by it (server-cert.pem,
	// server-key.pem) at its first start and reuses them after, as MySQL 8
	// does in its data directory. `strata up` sets it to <data>/tls unless
	// the config gives cert and key.
	Dir string `yaml:"dir"`
	// Require refuses clients that do not upgrade to TLS.
	Require bool `yaml:"require"`
}

// Backend configures the connections from the proxy to the shards' servers.
type Backend struct {
	// User and Password are the account on every server. Default user
	// "strata" (localdb's application user, which read_only fences).
	User     string `yaml:"user"`
	Password string `yaml:"password"`
	// MaxOpen bounds open connections per server; a statement that finds
	// them all busy waits up to WaitTimeout. Default 256: size it to the
	// server's max_connections divided by the number of proxies.
	MaxOpen int `yaml:"max_open"`
	// MaxIdle bounds idle connections kept per server (at most MaxOpen are
	// ever kept). Default 64.
	MaxIdle int `yaml:"max_idle"`
	// IdleTimeout closes connections idle longer. Default 1m.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// ConnectTimeout bounds dialing and the handshake. Default 2s.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// WaitTimeout bounds the wait for a free connection. Default 10s.
	WaitTimeout time.Duration `yaml:"wait_timeout"`
	// HealthCheckInterval is how often each server is checked. Default 2s.
	HealthCheckInterval time.Duration `yaml:"health_check_interval"`
	// Pipelines is how many connections per server carry the fast lane's
	// point selects of many sessions at once, each sent without waiting
	// for the answers before it (README "Pipelines"); 0 turns them off.
	// Default 1. They are connections beside MaxOpen. PipelineDepth is how
	// many statements at most wait on one; past it a statement takes the
	// next pipeline, or a connection of its own. Default 32.
	Pipelines     int `yaml:"pipelines"`
	PipelineDepth int `yaml:"pipeline_depth"`
}

// Shard is one shard: a primary and its replicas, as host:port.
type Shard struct {
	Name     string   `yaml:"name"`
	Primary  string   `yaml:"primary"`
	Replicas []string `yaml:"replicas"`
}

// Database is one logical database.
type Database struct {
	// Sharded databases declare every table; unsharded ones live whole on
	// Shard and need no table list.
	Sharded bool   `yaml:"sharded"`
	Shard   string `yaml:"shard"`
	// Tables of a sharded database by name. A name may hold one numeric
	// range in braces, sbtest{1..32}, which declares sbtest1 .. sbtest32.
	Tables map[string]*Table `yaml:"tables"`
	// TransactionMode is twopc, single or multi (transactions.go); default
	// twopc with a coordinator configured, single without.
	TransactionMode string `yaml:"transaction_mode"`
}

// Table places one table of a sharded database.
type Table struct {
	// Kind is sharded, reference (a copy on every shard) or unsharded (whole
	// on Shard).
	Kind string `yaml:"kind"`
	// Column is the shard key of a sharded table.
	Column string `yaml:"column"`
	// Type of the shard-key column: int (default) or string.
	Type string `yaml:"type"`
	// Function is hash (default for sharded tables) or range.
	Function string `yaml:"function"`
	// Ranges of a range-sharded table, in increasing order: keys below Upper
	// (and at or above the previous range's Upper) go to Shard. The last
	// range may leave out Upper to take every larger key.
	Ranges []Range `yaml:"ranges"`
	// Shard holds an unsharded table.
	Shard string `yaml:"shard"`
	// Sequence is the ID service tag that generates the shard keys of a
	// sharded table's rows inserted without one. Default "<db>.<table>".
	// Tables may share one.
	Sequence string `yaml:"sequence"`
	// SubTables spreads each shard's rows of a sharded table over this many
	// physical tables, orders_0000 .. orders_NNNN on every shard, picked by
	// the hash of the shard key. Tables with the same shard function and
	// count co-locate their rows and join on the shard key. 0: none.
	SubTables int `yaml:"sub_tables"`
	// SubTableBy is hash (with SubTables) or month: one physical table per
	// calendar month of the DATE/DATETIME column SubTableColumn,
	// orders_202601, from SubTableFrom ("2026-01") to SubTableTo, or, when
	// that is unset, to SubTableAhead months past the current one (default
	// 3), created ahead by the proxy.
	SubTableBy     string `yaml:"sub_table_by"`
	SubTableColumn string `yaml:"sub_table_column"`
	SubTableFrom   string `yaml:"sub_table_from"`
	SubTableTo     string `yaml:"sub_table_to"`
	SubTableAhead  *int   `yaml:"sub_table_ahead"`
	// Sequences are columns of a sharded table the ID service fills when an
	// INSERT leaves them out or gives NULL (the shard key or any other
	// column); explicit values are kept. LAST_INSERT_ID() is the first ID
	// of the first column listed.
	Sequences []SequenceColumn `yaml:"sequences"`
	// CombineWrites opts a sharded table in to hot-row write combining:
	// concurrent autocommit UPDATE t SET c = c + ? [, d = d - ?] WHERE
	// <shard key> = ? of one row run as one statement per round, each
	// client acknowledged once that statement has committed. The shard key
	// must be the table's primary key. Default false.
	CombineWrites bool `yaml:"combine_writes"`
}

// SequenceColumn is one generated column.
type SequenceColumn struct {
	Column string `yaml:"column"`
	// Tag is the ID service's tag. Default "<db>.<table>.<column>".
	Tag string `yaml:"tag"`
}

// Range is one range of a range-sharded table.
type Range struct {
	Shard string `yaml:"shard"`
	Upper *int64 `yaml:"upper"`
}

// DefaultConfig is the configuration before a file is read. It has no shards
// or databases: those come from the file (or, for `strata up`, from the
// local topology).
func DefaultConfig() *Config {
	return &Config{
		Listen:                    "127.0.0.1:3307",
		AdminListen:               "127.0.0.1:15000",
		Users:                     []User{{Name: "root", Admin: true}},
		AuthPlugin:                "mysql_native_password",
		PlanCacheSize:             10000,
		SlowQueryThreshold:        time.Second,
		MaxClientConnections:      4096,
		ConnectTimeout:            10 * time.Second,
		MaxUnauthenticated:        4096,
		MaxUnauthenticatedPerHost: 256,
		MaxAllowedPacket:          64 << 20,
		CreateDatabases:           true,
		ReadWrite:                 DefaultReadWrite(),
		IDService:                 DefaultIDService(),
		Transactions:              DefaultTransactions(),
		Cache:                     DefaultCache(),
		Backend: Backend{
			User:                "strata",
			MaxOpen:             256,
			MaxIdle:             64,
			IdleTimeout:         time.Minute,
			ConnectTimeout:      2 * time.Second,
			WaitTimeout:         10 * time.Second,
			HealthCheckInterval: 2 * time.Second,
			Pipelines:           1,
			PipelineDepth:       32,
		},
	}
}

// FieldError is a configuration problem: which field and why. Line is the
// line of the field (or of its nearest parent present in the file), 0 when
// unknown.
type FieldError struct {
	File   string
	Line   int
	Field  string
	Reason string
}

func (e *FieldError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteString(":")
			b.WriteString(strconv.Itoa(e.Line))
		}
		b.WriteString(": ")
	}
	b.WriteString(e.Field)
	b.WriteString(": ")
	b.WriteString(e.Reason)
	return b.String()
}

func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

var shardName = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// Validate reports the first problem as a *FieldError naming the field (its
// YAML path, e.g. shards[1].primary) and the reason. It checks the routing
// schema too (through VSchema).
func (c *Config) Validate() error {
	if err := checkAddr(c.Listen); err != nil {
		return fieldErr("listen", "%v", err)
	}
	if c.AdminListen != "off" {
		if err := checkAddr(c.AdminListen); err != nil {
			return fieldErr("admin_listen", "%v (or \"off\")", err)
		}
	}
	if len(c.Users) == 0 {
		return fieldErr("users", "at least one user is required")
	}
	seenUser := map[string]bool{}
	for i, u := range c.Users {
		switch {
		case u.Name == "":
			return fieldErr(fmt.Sprintf("users[%d].name", i), "required")
		case seenUser[u.Name]:
			return fieldErr(fmt.Sprintf("users[%d].name", i), "duplicate user %q", u.Name)
		}
		seenUser[u.Name] = true
	}
	if c.AuthPlugin != "mysql_native_password" && c.AuthPlugin != "caching_sha2_password" {
		return fieldErr("auth_plugin", "%q, want mysql_native_password or caching_sha2_password", c.AuthPlugin)
	}
	if (c.TLS.Cert == "") != (c.TLS.Key == "") {
		return fieldErr("tls", "cert and key go together: set both or neither")
	}
	if c.TLS.Cert != "" && c.TLS.Dir != "" {
		return fieldErr("tls.dir", "set cert and key, or dir (certificates made by the proxy), not both")
	}
	if c.TLS.Require && c.TLS.Cert == "" && c.TLS.Dir == "" {
		return fieldErr("tls.require", "needs tls.cert and tls.key, or tls.dir")
	}
	b := c.Backend
	switch {
	case b.User == "":
		return fieldErr("backend.user", "required")
	case b.MaxOpen < 1:
		return fieldErr("backend.max_open", "%d, need at least 1", b.MaxOpen)
	case b.MaxIdle < 0:
		return fieldErr("backend.max_idle", "%d, must not be negative", b.MaxIdle)
	case b.IdleTimeout <= 0:
		return fieldErr("backend.idle_timeout", "must be positive, e.g. 1m")
	case b.ConnectTimeout <= 0:
		return fieldErr("backend.connect_timeout", "must be positive, e.g. 2s")
	case b.WaitTimeout <= 0:
		return fieldErr("backend.wait_timeout", "must be positive, e.g. 10s")
	case b.HealthCheckInterval <= 0:
		return fieldErr("backend.health_check_interval", "must be positive, e.g. 2s")
	case b.Pipelines < 0:
		return fieldErr("backend.pipelines", "%d, must not be negative (0 turns pipelines off)", b.Pipelines)
	case b.Pipelines > 64:
		return fieldErr("backend.pipelines", "%d, at most 64 (each is a connection per server, beside max_open)", b.Pipelines)
	case b.Pipelines > 0 && b.PipelineDepth < 1:
		return fieldErr("backend.pipeline_depth", "%d, need at least 1", b.PipelineDepth)
	}
	switch {
	case c.PlanCacheSize < 1:
		return fieldErr("plan_cache_size", "%d, need at least 1", c.PlanCacheSize)
	case c.SlowQueryThreshold < 0:
		return fieldErr("slow_query_threshold", "must not be negative (0 disables the slow log)")
	case c.QueryTimeout < 0:
		return fieldErr("query_timeout", "must not be negative (0: no limit)")
	case c.MaxAllowedPacket < 1024:
		return fieldErr("max_allowed_packet", "%d, need at least 1024 bytes", c.MaxAllowedPacket)
	case c.MaxClientConnections < 1:
		return fieldErr("max_client_connections", "%d, need at least 1", c.MaxClientConnections)
	case c.ConnectTimeout <= 0:
		return fieldErr("connect_timeout", "must be positive, e.g. 10s")
	case c.MaxUnauthenticated < 1:
		return fieldErr("max_unauthenticated", "%d, need at least 1", c.MaxUnauthenticated)
	case c.MaxUnauthenticatedPerHost < 1:
		return fieldErr("max_unauthenticated_per_host", "%d, need at least 1", c.MaxUnauthenticatedPerHost)
	}
	if len(c.Shards) == 0 {
		return fieldErr("shards", "at least one shard is required")
	}
	seenShard, seenAddr := map[string]bool{}, map[string]string{}
	for i, s := range c.Shards {
		p := fmt.Sprintf("shards[%d]", i)
		switch {
		case s.Name == "":
			return fieldErr(p+".name", "required")
		case !shardName.MatchString(s.Name):
			return fieldErr(p+".name", "%q: use letters, digits, _ and -", s.Name)
		case seenShard[s.Name]:
			return fieldErr(p+".name", "duplicate shard %q", s.Name)
		}
		seenShard[s.Name] = true
		if s.Primary == "" {
			return fieldErr(p+".primary", "required (host:port)")
		}
		addrs := append([]string{s.Primary}, s.Replicas...)
		for j, a := range addrs {
			f := p + ".primary"
			if j > 0 {
				f = fmt.Sprintf("%s.replicas[%d]", p, j-1)
			}
			if err := checkAddr(a); err != nil {
				return fieldErr(f, "%v", err)
			}
			if other, dup := seenAddr[a]; dup {
				return fieldErr(f, "%s is already %s", a, other)
			}
			seenAddr[a] = f
		}
	}
	if err := c.ReadWrite.validate(); err != nil {
		return err
	}
	if err := c.IDService.validate(); err != nil {
		return err
	}
	if err := c.validateTransactions(); err != nil {
		return err
	}
	if len(c.Databases) == 0 {
		return fieldErr("databases", "at least one database is required")
	}
	if _, err := c.VSchema(); err != nil {
		return err
	}
	if err := c.validateCache(); err != nil {
		return err
	}
	_, err := c.sequences()
	return err
}

func checkAddr(a string) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return fmt.Errorf("%q is not host:port", a)
	}
	if host == "" {
		return fmt.Errorf("%q has no host", a)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: bad port", a)
	}
	return nil
}

// ShardNames returns the shard names in order.
func (c *Config) ShardNames() []string {
	out := make([]string, len(c.Shards))
	for i, s := range c.Shards {
		out[i] = s.Name
	}
	return out
}

// User returns the user with this name.
func (c *Config) User(name string) (User, bool) {
	for _, u := range c.Users {
		if u.Name == name {
			return u, true
		}
	}
	return User{}, false
}

var errNoBrace = errors.New("no range")

var braceRange = regexp.MustCompile(`^(.*)\{(\d+)\.\.(\d+)\}(.*)$`)

// expandName expands one numeric brace range: t{1..3} is t1, t2, t3.
func expandName(name string) ([]string, error) {
	m := braceRange.FindStringSubmatch(name)
	if m == nil {
		if strings.ContainsAny(name, "{}") {
			return nil, fmt.Errorf("%q: braces hold one range like {1..16}", name)
		}
		return nil, errNoBrace
	}
	lo, err1 := strconv.Atoi(m[2])
	hi, err2 := strconv.Atoi(m[3])
	if err1 != nil || err2 != nil || lo > hi || hi-lo >= 10000 {
		return nil, fmt.Errorf("%q: the range must be {lo..hi} with lo <= hi and at most 10000 names", name)
	}
	out := make([]string, 0, hi-lo+1)
	for i := lo; i <= hi; i++ {
		out = append(out, m[1]+strconv.Itoa(i)+m[4])
	}
	return out, nil
}
