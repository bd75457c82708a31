package edge

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/parser"
)

// Config is the edge's configuration, read from YAML (Load). Start from
// DefaultConfig.
type Config struct {
	// Listen is the HTTP address (default 127.0.0.1:8080).
	Listen string `yaml:"listen"`
	// Apps are the app keys. Keys added or rotated at run time (the admin
	// API) are kept in StateFile, when set, and read again at start.
	Apps []App `yaml:"apps"`
	// StateFile keeps keys set through the admin API across restarts.
	StateFile string `yaml:"state_file"`
	// Window is how far a request's timestamp may be from the edge's clock
	// either way (default 5m); nonces are remembered for twice that.
	Window time.Duration `yaml:"window"`
	// TrustForwardedFor takes the client IP from X-Forwarded-For's last
	// entry (set it only behind a load balancer that writes that header).
	TrustForwardedFor bool `yaml:"trust_forwarded_for"`

	IDServer IDServerBackend `yaml:"idserver"`
	Proxy    ProxyBackend    `yaml:"proxy"`
	Limits   Limits          `yaml:"limits"`
	Gray     []GrayRule      `yaml:"gray"`
	Console  ConsoleConfig   `yaml:"console"`
	Breaker  BreakerConfig   `yaml:"breaker"`
}

// App is one app key.
type App struct {
	// Name is the key ID sent in X-Strata-Key.
	Name string `yaml:"name"`
	// Secret is the HMAC key, at least 16 bytes; or SecretEnv names the
	// environment variable that holds it.
	Secret    string `yaml:"secret"`
	SecretEnv string `yaml:"secret_env"`
	// Admin keys may call /v1/admin/*, the console and the fleet's lease
	// endpoint.
	Admin bool `yaml:"admin"`
	// Limit overrides Limits.App for this app (rate 0: not overridden).
	Limit Rule `yaml:"limit"`
}

// Rule is a token bucket: Rate tokens per second, up to Burst.
type Rule struct {
	Rate  float64 `yaml:"rate"`
	Burst int     `yaml:"burst"`
}

func (r Rule) set() bool { return r.Rate > 0 }

// Limits are the token buckets. A zero Rule is no limit.
type Limits struct {
	// App is every app key's bucket (per route when Routes sets one);
	// IP is every client IP's.
	App Rule `yaml:"app"`
	IP  Rule `yaml:"ip"`
	// Routes override App and IP per route name (ids, rows, admin).
	Routes map[string]RouteLimits `yaml:"routes"`
	Fleet  FleetConfig            `yaml:"fleet"`
}

// RouteLimits are one route's buckets.
type RouteLimits struct {
	App Rule `yaml:"app"`
	IP  Rule `yaml:"ip"`
}

// FleetConfig makes several edges share their limits: one edge (the quota
// server, LeaseFrom empty) holds every bucket, the others lease tokens from
// it in chunks (LeaseFrom its URL), signing the lease requests with an
// admin key (Key and Secret).
type FleetConfig struct {
	LeaseFrom string `yaml:"lease_from"`
	Key       string `yaml:"key"`
	Secret    string `yaml:"secret"`
	// Chunk is how many tokens one lease asks for at most (0: a twentieth
	// of the rule's rate, at least 1). Smaller chunks strand fewer tokens
	// at an edge and cost more leases.
	Chunk int `yaml:"chunk"`
	// LeaseTTL is how long leased tokens stay usable (default 1s): tokens
	// an edge did not spend by then are dropped, never given back, so the
	// fleet never admits more than the quota server granted.
	LeaseTTL time.Duration `yaml:"lease_ttl"`
	// Edges is how many edges share the limit; while the quota server does
	// not answer, each edge falls back to a local bucket of rule/Edges.
	Edges int `yaml:"edges"`
}

// Backend settings shared by the backends.
type Backend struct {
	// Timeout bounds one call to the backend.
	Timeout time.Duration `yaml:"timeout"`
	// MaxInFlight bounds concurrent calls; a request waits for a slot up to
	// Timeout, then gets 503 backend_busy.
	MaxInFlight int `yaml:"max_inflight"`
}

// IDServerBackend is the ID service, over gRPC (idserver/client).
type IDServerBackend struct {
	Backend `yaml:",inline"`
	// Addrs are the ID service's gRPC addresses.
	Addrs []string `yaml:"addrs"`
	// MaxCount is the largest count of one /v1/ids request (default 1000).
	MaxCount int `yaml:"max_count"`
}

// ProxyBackend is the shard proxy: rows and admin statements over the
// MySQL protocol, health over its admin HTTP.
type ProxyBackend struct {
	Backend  `yaml:",inline"`
	Addr     string `yaml:"addr"`
	User     string `yaml:"user"`
	Password string `yaml:"password"`
	// AdminURL is the proxy's admin HTTP (/healthz, /metrics), e.g.
	// http://127.0.0.1:15000.
	AdminURL string `yaml:"admin_url"`
	// Keys names the key columns of tables whose primary key the edge
	// should not look up ("db.table": "col" or "col1,col2").
	Keys map[string]string `yaml:"keys"`
}

// BreakerConfig is the circuit breaker in front of each backend.
type BreakerConfig struct {
	// Failures in a row open the breaker; it stays open OpenFor, failing
	// fast, then lets one request through to probe.
	Failures int           `yaml:"failures"`
	OpenFor  time.Duration `yaml:"open_for"`
}

// GrayRule sends Share of a route's traffic (of App, or of every app when
// App is empty) to Canary, by a stable hash of By: "app" (the app key: the
// whole app moves), "ip", or "header:NAME" (e.g. header:X-User-Id: each
// user sticks to one variant).
type GrayRule struct {
	Route  string  `yaml:"route"`
	App    string  `yaml:"app"`
	Share  float64 `yaml:"share"`
	By     string  `yaml:"by"`
	Canary string  `yaml:"canary"`
}

// ConsoleConfig is the SRE console at /console.
type ConsoleConfig struct {
	// Local lets requests from loopback addresses use the console without
	// a key (for `strata up`); others still sign in with an admin key.
	Local bool `yaml:"local"`
	// Sources are URLs of JSON documents for the console's panels that
	// other components serve (hot_keys, cache, transactions, seata,
	// drills): http(s) URLs, or file:// globs of JSON files (drill
	// reports); a panel without one shows "not available".
	Sources map[string]string `yaml:"sources"`
}

// DefaultConfig returns the defaults: 127.0.0.1:8080, a ±5 minute window,
// ID service at 127.0.0.1:9090 and proxy at 127.0.0.1:3307, no limits.
func DefaultConfig() Config {
	return Config{
		Listen: "127.0.0.1:8080",
		Window: 5 * time.Minute,
		IDServer: IDServerBackend{
			Backend:  Backend{Timeout: 2 * time.Second, MaxInFlight: 512},
			Addrs:    []string{"127.0.0.1:9090"},
			MaxCount: 1000,
		},
		Proxy: ProxyBackend{
			Backend:  Backend{Timeout: 5 * time.Second, MaxInFlight: 128},
			Addr:     "127.0.0.1:3307",
			User:     "root",
			AdminURL: "http://127.0.0.1:15000",
		},
		Limits:  Limits{Fleet: FleetConfig{LeaseTTL: time.Second, Edges: 1}},
		Breaker: BreakerConfig{Failures: 5, OpenFor: 5 * time.Second},
	}
}

// FieldError is a config problem: the file and line when known, the
// field's YAML path and what is wrong.
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
			fmt.Fprintf(&b, ":%d", e.Line)
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

var (
	nameRE  = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)
	routeRE = map[string]bool{"ids": true, "rows": true, "admin": true}
	panels  = map[string]bool{"hot_keys": true, "cache": true, "transactions": true, "seata": true, "drills": true}
)

// MinSecret is the shortest secret accepted, in bytes.
const MinSecret = 16

// Validate returns the first problem as a *FieldError.
func (c *Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fieldErr("listen", "%q is not host:port", c.Listen)
	}
	if c.Window < time.Second {
		return fieldErr("window", "%v is below 1s", c.Window)
	}
	seen := map[string]bool{}
	for i, a := range c.Apps {
		f := fmt.Sprintf("apps[%d]", i)
		if !nameRE.MatchString(a.Name) {
			return fieldErr(f+".name", "%q is not 1-64 of A-Z a-z 0-9 _ . -", a.Name)
		}
		if seen[a.Name] {
			return fieldErr(f+".name", "%q appears twice", a.Name)
		}
		seen[a.Name] = true
		switch {
		case a.Secret != "" && a.SecretEnv != "":
			return fieldErr(f+".secret", "set secret or secret_env, not both")
		case a.SecretEnv != "" && os.Getenv(a.SecretEnv) == "":
			return fieldErr(f+".secret_env", "environment variable %s is empty", a.SecretEnv)
		case a.SecretEnv == "" && len(a.Secret) < MinSecret:
			// The secret itself is never printed.
			return fieldErr(f+".secret", "shorter than %d bytes", MinSecret)
		}
		if err := a.Limit.check(f + ".limit"); err != nil {
			return err
		}
	}
	if err := c.IDServer.Backend.check("idserver"); err != nil {
		return err
	}
	for i, a := range c.IDServer.Addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fieldErr(fmt.Sprintf("idserver.addrs[%d]", i), "%q is not host:port", a)
		}
	}
	if c.IDServer.MaxCount < 1 {
		return fieldErr("idserver.max_count", "must be at least 1")
	}
	if err := c.Proxy.Backend.check("proxy"); err != nil {
		return err
	}
	if c.Proxy.Addr != "" {
		if _, _, err := net.SplitHostPort(c.Proxy.Addr); err != nil {
			return fieldErr("proxy.addr", "%q is not host:port", c.Proxy.Addr)
		}
	}
	if c.Proxy.AdminURL != "" {
		if err := checkURL(c.Proxy.AdminURL); err != nil {
			return fieldErr("proxy.admin_url", "%v", err)
		}
	}
	for t, cols := range c.Proxy.Keys {
		if db, tb, ok := strings.Cut(t, "."); !ok || !identRE.MatchString(db) || !identRE.MatchString(tb) {
			return fieldErr("proxy.keys."+t, "%q is not db.table", t)
		}
		for _, col := range strings.Split(cols, ",") {
			if !identRE.MatchString(strings.TrimSpace(col)) {
				return fieldErr("proxy.keys."+t, "%q is not a column list", cols)
			}
		}
	}
	if err := c.Limits.App.check("limits.app"); err != nil {
		return err
	}
	if err := c.Limits.IP.check("limits.ip"); err != nil {
		return err
	}
	for name, rl := range c.Limits.Routes {
		if !routeRE[name] {
			return fieldErr("limits.routes."+name, "unknown route (ids, rows, admin)")
		}
		if err := rl.App.check("limits.routes." + name + ".app"); err != nil {
			return err
		}
		if err := rl.IP.check("limits.routes." + name + ".ip"); err != nil {
			return err
		}
	}
	fl := c.Limits.Fleet
	if fl.LeaseFrom != "" {
		if err := checkURL(fl.LeaseFrom); err != nil {
			return fieldErr("limits.fleet.lease_from", "%v", err)
		}
		if fl.Key == "" || len(fl.Secret) < MinSecret {
			return fieldErr("limits.fleet.key", "a fleet member needs an admin key and its secret (%d bytes or more) to lease with", MinSecret)
		}
	}
	if fl.Chunk < 0 {
		return fieldErr("limits.fleet.chunk", "must not be negative")
	}
	if fl.LeaseTTL < 10*time.Millisecond {
		return fieldErr("limits.fleet.lease_ttl", "%v is below 10ms", fl.LeaseTTL)
	}
	if fl.Edges < 1 {
		return fieldErr("limits.fleet.edges", "must be at least 1")
	}
	for i, g := range c.Gray {
		f := fmt.Sprintf("gray[%d]", i)
		if !routeRE[g.Route] || g.Route == "admin" {
			return fieldErr(f+".route", "%q: gray release applies to ids or rows", g.Route)
		}
		if g.Share < 0 || g.Share > 1 {
			return fieldErr(f+".share", "%v is not between 0 and 1", g.Share)
		}
		if _, _, err := parseBy(g.By); err != nil {
			return fieldErr(f+".by", "%v", err)
		}
		if err := checkURL(g.Canary); err != nil {
			return fieldErr(f+".canary", "%v", err)
		}
	}
	for name, u := range c.Console.Sources {
		if !panels[name] {
			return fieldErr("console.sources."+name, "unknown panel (hot_keys, cache, transactions, seata, drills)")
		}
		if glob, ok := strings.CutPrefix(u, "file://"); ok {
			if _, err := filepath.Match(glob, ""); err != nil || !filepath.IsAbs(glob) {
				return fieldErr("console.sources."+name, "%q: file:// takes an absolute path or glob", u)
			}
			continue
		}
		if err := checkURL(u); err != nil {
			return fieldErr("console.sources."+name, "%v", err)
		}
	}
	if c.Breaker.Failures < 1 {
		return fieldErr("breaker.failures", "must be at least 1")
	}
	if c.Breaker.OpenFor <= 0 {
		return fieldErr("breaker.open_for", "must be positive")
	}
	return nil
}

var identRE = regexp.MustCompile(`^[A-Za-z0-9_$]{1,64}$`)

func (r Rule) check(field string) error {
	if r.Rate < 0 {
		return fieldErr(field+".rate", "must not be negative")
	}
	if r.Rate > 0 && r.Burst < 1 {
		return fieldErr(field+".burst", "must be at least 1 when rate is set")
	}
	return nil
}

func (b Backend) check(field string) error {
	if b.Timeout <= 0 {
		return fieldErr(field+".timeout", "must be positive")
	}
	if b.MaxInFlight < 1 {
		return fieldErr(field+".max_inflight", "must be at least 1")
	}
	return nil
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL", s)
	}
	return nil
}

// Load reads a YAML file over DefaultConfig and validates it. Errors name
// the file, the line when known, the field and the problem.
func Load(path string) (*Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("edge config: %w", err)
	}
	return Parse(path, src)
}

// Parse is Load for a file already read; name is used in errors.
func Parse(name string, src []byte) (*Config, error) {
	c := DefaultConfig()
	if err := yaml.UnmarshalWithOptions(src, &c, yaml.DisallowUnknownField()); err != nil {
		fe := &FieldError{File: name, Field: "yaml", Reason: firstLine(err.Error())}
		var ye yaml.Error
		if errors.As(err, &ye) && ye.GetToken() != nil {
			fe.Line, fe.Reason = ye.GetToken().Position.Line, firstLine(ye.GetMessage())
		}
		return nil, fe
	}
	if err := c.Validate(); err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			fe.File, fe.Line = name, lineOf(src, fe.Field)
		}
		return nil, err
	}
	return &c, nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// lineOf finds the line of a field path (apps[1].secret), or of its
// nearest ancestor in the file.
func lineOf(src []byte, field string) int {
	f, err := parser.ParseBytes(src, 0)
	if err != nil {
		return 0
	}
	for p := field; p != ""; {
		if path, err := yaml.PathString("$." + p); err == nil {
			if n, err := path.FilterFile(f); err == nil && n != nil && n.GetToken() != nil {
				return n.GetToken().Position.Line
			}
		}
		i := strings.LastIndexAny(p, ".[")
		if i <= 0 {
			break
		}
		p = p[:i]
	}
	return 0
}
