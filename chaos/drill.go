package chaos

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
)

// Drill is one drill file: the stack it targets, the workloads it runs, the
// faults it injects and when, and the checks that give the verdict.
type Drill struct {
	// Name is a short name, used in reports. Default: the file's name.
	Name string `yaml:"name"`
	// Description says what the drill shows, in a sentence or two.
	Description string `yaml:"description"`
	// Target is the stack under test.
	Target Target `yaml:"target"`
	// Duration is how long the workloads run (faults are scheduled within).
	Duration Duration `yaml:"duration"`
	// ShortDuration, when set, is the length of the short form (`make
	// test`, --short): every fault's at and for are scaled by
	// ShortDuration/Duration.
	ShortDuration Duration `yaml:"short_duration"`
	// Settle is how long the drill waits after the last fault is undone and
	// the workloads stop before reading the final state (replicas catch up,
	// the proxy sees servers healthy again). Default 2s.
	Settle Duration `yaml:"settle"`
	// Workloads run concurrently for Duration.
	Workloads []WorkloadSpec `yaml:"workloads"`
	// Faults is the schedule.
	Faults []FaultSpec `yaml:"faults"`
	// Checks are the checkers to run; empty means every workload's own.
	// Besides the workloads' kinds there is xa: once the stack has
	// settled, XA RECOVER on every primary lists none of Strata's XIDs
	// (nothing left prepared, in doubt).
	Checks []string `yaml:"checks"`

	file string
}

// Target is the stack a drill runs against: Local (started by the drill in
// a temporary directory on free ports, the components `strata up` starts)
// or External (the addresses of a running one). Exactly one is set.
type Target struct {
	Local    *LocalTarget    `yaml:"local"`
	External *ExternalTarget `yaml:"external"`
}

// LocalTarget is the stack the drill starts itself: a localdb topology, the
// proxy (`strata proxy`, read/write split on when there are replicas) and
// an ID service group (`strata idserver`), each MariaDB server reached by
// the proxy through an embedded Toxiproxy link.
type LocalTarget struct {
	Shards   int `yaml:"shards"`
	Replicas int `yaml:"replicas"`
	// IDServers is the size of the ID service's Raft group (0: none).
	IDServers int `yaml:"idservers"`
	// TXCoords is the size of the transaction coordinator's Raft group
	// (`strata txcoord`, 0: none). With one, the proxy runs cross-shard
	// transactions as XA two-phase commits (transaction_mode twopc).
	TXCoords int `yaml:"txcoords"`
	// MaxLag is the proxy's read_write.max_lag. Default 5s.
	MaxLag Duration `yaml:"max_lag"`
	// AutoPromoteAfter is the proxy's read_write.auto_promote_after
	// (0: off, the proxy's default).
	AutoPromoteAfter Duration `yaml:"auto_promote_after"`
}

// ExternalTarget is a running stack, e.g. the one `strata up` started.
// The workloads reach its proxy through a Toxiproxy link of the drill's
// own, so network faults work on target proxy (clients → proxy); the
// stack's own links (proxy → servers) need a Local target. Process and
// replication faults need MariaDBRoot for the servers' pid files and
// roles.
type ExternalTarget struct {
	Proxy    string `yaml:"proxy"`
	User     string `yaml:"user"`
	Password string `yaml:"password"`
	// Database holds the workloads' tables (created if missing). Default
	// test: unsharded on the first shard in `strata up`'s config.
	Database string `yaml:"database"`
	// IDServerGRPC are the ID service's gRPC addresses.
	IDServerGRPC []string `yaml:"idserver_grpc"`
	// IDServerHTTP are the ID service's HTTP addresses, in the same order
	// (for the leader's role, read from /healthz).
	IDServerHTTP []string `yaml:"idserver_http"`
	// MariaDBRoot is the localdb root of the servers (DATA/mariadb for
	// `strata up --data DATA`): its topology.json names the servers, their
	// ports and shards, and each server's pid file is in it.
	MariaDBRoot string `yaml:"mariadb_root"`
}

// WorkloadSpec is one workload.
type WorkloadSpec struct {
	// Kind: set, ids, ryw, bank, register, cache.
	Kind string `yaml:"kind"`
	// Clients is the number of concurrent clients. Default 4.
	Clients int `yaml:"clients"`
	// Rate bounds each client's operations per second (0: no bound).
	Rate float64 `yaml:"rate"`
	// Params are the workload's own settings (see each kind's doc).
	Params map[string]any `yaml:"params"`
}

// FaultSpec is one scheduled fault.
type FaultSpec struct {
	// Kind: kill, pause, latency, timeout, reset_peer, bandwidth, lag,
	// switchover, clock_skew.
	Kind string `yaml:"kind"`
	// Target names what the fault hits: mariadb:NAME, primary:SHARD,
	// replica:SHARD, shard:SHARD (network: every server of the shard),
	// proxy, idserver:leader, idserver:follower, idserver:ID,
	// txcoord:leader, txcoord:follower, txcoord:ID.
	Target string `yaml:"target"`
	// At is when the fault starts, from the start of the workloads.
	At Duration `yaml:"at"`
	// For is how long it lasts; 0 means until the end of the drill.
	For Duration `yaml:"for"`
	// Params are the fault's settings: latency, jitter (latency);
	// timeout (timeout, reset_peer); rate in KB/s (bandwidth); delay (lag);
	// offset (clock_skew: negative moves the node's clock back).
	Params map[string]any `yaml:"params"`
}

// Duration is a time.Duration written as "3s", "250ms".
type Duration time.Duration

// UnmarshalYAML reads a duration string (or a number of seconds).
func (d *Duration) UnmarshalYAML(b []byte) error {
	s := strings.Trim(strings.TrimSpace(string(b)), `"'`)
	if v, err := time.ParseDuration(s); err == nil {
		*d = Duration(v)
		return nil
	}
	var secs float64
	if _, err := fmt.Sscanf(s, "%g", &secs); err == nil && fmt.Sprint(secs) == s {
		*d = Duration(time.Duration(secs * float64(time.Second)))
		return nil
	}
	return fmt.Errorf("%q is not a duration (write e.g. 3s, 250ms, 1m)", s)
}

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// D is the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// FieldError is a problem in a drill file: the file, the field (a path such
// as faults[2].target) and what is wrong.
type FieldError struct {
	File, Field, Problem string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("%s: %s", e.File, e.Problem)
	}
	return fmt.Sprintf("%s: %s: %s", e.File, e.Field, e.Problem)
}

// Load reads and validates a drill file.
func Load(path string) (*Drill, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("chaos: %w", err)
	}
	return Parse(path, b)
}

// Parse reads a drill from b; file names it in errors.
func Parse(file string, b []byte) (*Drill, error) {
	d := &Drill{}
	if err := yaml.UnmarshalWithOptions(b, d, yaml.Strict()); err != nil {
		return nil, &FieldError{File: file, Problem: yamlProblem(err)}
	}
	d.file = file
	if d.Name == "" {
		base := file[strings.LastIndex(file, "/")+1:]
		d.Name = strings.TrimSuffix(strings.TrimSuffix(base, ".yaml"), ".yml")
	}
	if err := d.Validate(); err != nil {
		return nil, err
	}
	return d, nil
}

// yamlProblem is goccy/go-yaml's message on one line (it points into the
// file with a multi-line excerpt that console output does not need twice).
func yamlProblem(err error) string {
	msg := yaml.FormatError(err, false, false)
	lines := strings.Split(strings.TrimSpace(msg), "\n")
	return strings.TrimSpace(lines[0])
}

// Kinds known to this build.
var (
	workloadKinds = []string{"set", "ids", "ryw", "bank", "register", "cache"}
	// stateChecks are checks of the final state that need no workload.
	stateChecks = []string{"xa"}
	faultKinds  = []string{"kill", "pause", "latency", "timeout", "reset_peer", "bandwidth", "lag", "switchover", "clock_skew"}
)

func isNetworkFault(kind string) bool {
	switch kind {
	case "latency", "timeout", "reset_peer", "bandwidth":
		return true
	}
	return false
}

// Validate reports the first problem, naming the field.
func (d *Drill) Validate() error {
	bad := func(field, format string, args ...any) error {
		return &FieldError{File: d.file, Field: field, Problem: fmt.Sprintf(format, args...)}
	}
	t := d.Target
	switch {
	case t.Local == nil && t.External == nil:
		return bad("target", "required: local or external")
	case t.Local != nil && t.External != nil:
		return bad("target", "local and external are exclusive")
	}
	if l := t.Local; l != nil {
		if l.Shards == 0 {
			l.Shards = 2
		}
		if l.Shards < 1 || l.Shards > 8 {
			return bad("target.local.shards", "%d: want 1 to 8", l.Shards)
		}
		if l.Replicas < 0 || l.Replicas > 4 {
			return bad("target.local.replicas", "%d: want 0 to 4", l.Replicas)
		}
		if l.IDServers < 0 || l.IDServers > 5 {
			return bad("target.local.idservers", "%d: want 0 to 5", l.IDServers)
		}
		if l.TXCoords < 0 || l.TXCoords > 5 {
			return bad("target.local.txcoords", "%d: want 0 to 5", l.TXCoords)
		}
		if l.MaxLag == 0 {
			l.MaxLag = Duration(5 * time.Second)
		}
	}
	if e := t.External; e != nil {
		if e.Proxy == "" && len(e.IDServerGRPC) == 0 {
			return bad("target.external", "give proxy or idserver_grpc")
		}
		if e.User == "" {
			e.User = "root"
		}
		if e.Database == "" {
			e.Database = "test"
		}
		if len(e.IDServerHTTP) > 0 && len(e.IDServerHTTP) != len(e.IDServerGRPC) {
			return bad("target.external.idserver_http", "%d addresses for %d gRPC addresses", len(e.IDServerHTTP), len(e.IDServerGRPC))
		}
	}
	if d.Duration <= 0 {
		return bad("duration", "required, positive")
	}
	if d.ShortDuration < 0 || d.ShortDuration > d.Duration {
		return bad("short_duration", "%v: must be between 0 and duration (%v)", d.ShortDuration.D(), d.Duration.D())
	}
	if d.Settle == 0 {
		d.Settle = Duration(2 * time.Second)
	}
	if len(d.Workloads) == 0 {
		return bad("workloads", "at least one workload")
	}
	for i := range d.Workloads {
		w := &d.Workloads[i]
		f := fmt.Sprintf("workloads[%d]", i)
		if !contains(workloadKinds, w.Kind) {
			return bad(f+".kind", "%q: want one of %s", w.Kind, strings.Join(workloadKinds, ", "))
		}
		if w.Clients == 0 {
			w.Clients = 4
		}
		if w.Clients < 1 || w.Clients > 256 {
			return bad(f+".clients", "%d: want 1 to 256", w.Clients)
		}
		if w.Rate < 0 {
			return bad(f+".rate", "must not be negative")
		}
		needProxy := w.Kind != "ids"
		if needProxy && t.External != nil && t.External.Proxy == "" {
			return bad(f+".kind", "%s needs the proxy: set target.external.proxy", w.Kind)
		}
		if w.Kind == "ids" && ((t.Local != nil && t.Local.IDServers == 0) || (t.External != nil && len(t.External.IDServerGRPC) == 0)) {
			return bad(f+".kind", "ids needs the ID service: set target.local.idservers or target.external.idserver_grpc")
		}
		if err := checkParams(w.Kind, w.Params); err != nil {
			return bad(f+".params", "%v", err)
		}
	}
	for i := range d.Faults {
		fs := &d.Faults[i]
		f := fmt.Sprintf("faults[%d]", i)
		if !contains(faultKinds, fs.Kind) {
			return bad(f+".kind", "%q: want one of %s", fs.Kind, strings.Join(faultKinds, ", "))
		}
		if fs.At < 0 || fs.At.D() >= d.Duration.D() {
			return bad(f+".at", "%v: must be within the duration (%v)", fs.At.D(), d.Duration.D())
		}
		if fs.For < 0 {
			return bad(f+".for", "must not be negative")
		}
		if err := checkTarget(fs.Kind, fs.Target); err != nil {
			return bad(f+".target", "%v", err)
		}
		if isNetworkFault(fs.Kind) && t.External != nil && (fs.Target != "proxy" || t.External.Proxy == "") {
			return bad(f+".target", "%s of %s: against an external target the drill sits only between the workloads and the proxy (target proxy, with target.external.proxy); the stack's own links (proxy to servers) need target.local", fs.Kind, fs.Target)
		}
		if (fs.Kind == "kill" || fs.Kind == "pause" || fs.Kind == "lag") && t.External != nil && t.External.MariaDBRoot == "" && !strings.HasPrefix(fs.Target, "idserver") && !strings.HasPrefix(fs.Target, "txcoord") && fs.Target != "proxy" {
			return bad(f+".target", "%s of a MariaDB server of an external target needs target.external.mariadb_root", fs.Kind)
		}
		if strings.HasPrefix(fs.Target, "idserver:") && t.External != nil && len(t.External.IDServerHTTP) == 0 {
			return bad(f+".target", "%s of an external target needs target.external.idserver_http (roles are read from /healthz)", fs.Target)
		}
		if strings.HasPrefix(fs.Target, "idserver:") && t.Local != nil && t.Local.IDServers == 0 {
			return bad(f+".target", "%s: target.local.idservers is 0", fs.Target)
		}
		if strings.HasPrefix(fs.Target, "txcoord:") && (t.Local == nil || t.Local.TXCoords == 0) {
			return bad(f+".target", "%s: needs target.local with txcoords (the coordinator group the drill starts)", fs.Target)
		}
		if err := checkFaultParams(fs.Kind, fs.Params); err != nil {
			return bad(f+".params", "%v", err)
		}
	}
	for i, c := range d.Checks {
		if contains(stateChecks, c) {
			if t.External != nil && t.External.MariaDBRoot == "" {
				return bad(fmt.Sprintf("checks[%d]", i), "%s reads every primary: an external target needs target.external.mariadb_root", c)
			}
			continue
		}
		if !contains(workloadKinds, c) {
			return bad(fmt.Sprintf("checks[%d]", i), "%q: want one of %s", c, strings.Join(append(workloadKinds, stateChecks...), ", "))
		}
		found := false
		for _, w := range d.Workloads {
			found = found || w.Kind == c
		}
		if !found {
			return bad(fmt.Sprintf("checks[%d]", i), "%q has no workload of that kind to check", c)
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// checkTarget checks a fault's target against its kind.
func checkTarget(kind, target string) error {
	what, arg, _ := strings.Cut(target, ":")
	switch kind {
	case "switchover":
		if what != "shard" || arg == "" {
			return fmt.Errorf("%q: switchover takes shard:NAME", target)
		}
		return nil
	case "clock_skew":
		if what != "idserver" || arg == "" {
			return fmt.Errorf("%q: clock_skew takes idserver:leader, idserver:follower or idserver:ID", target)
		}
		return nil
	case "lag":
		if what != "replica" && what != "mariadb" || arg == "" {
			return fmt.Errorf("%q: lag takes replica:SHARD or mariadb:NAME (a replica)", target)
		}
		return nil
	}
	switch what {
	case "mariadb", "primary", "replica":
		if arg == "" {
			return fmt.Errorf("%q: name the %s", target, map[bool]string{true: "server", false: "shard"}[what == "mariadb"])
		}
	case "shard":
		if !isNetworkFault(kind) {
			return fmt.Errorf("%q: shard:NAME is for network faults; use primary:SHARD, replica:SHARD or mariadb:NAME", target)
		}
		if arg == "" {
			return fmt.Errorf("%q: name the shard", target)
		}
	case "proxy":
		if arg != "" {
			return fmt.Errorf("%q: proxy takes no argument", target)
		}
	case "idserver", "txcoord":
		if arg == "" {
			return fmt.Errorf("%q: %s:leader, %s:follower or %s:ID", target, what, what, what)
		}
		if isNetworkFault(kind) {
			return fmt.Errorf("%q: %s takes kill or pause", target, what)
		}
	default:
		return fmt.Errorf("%q: want mariadb:NAME, primary:SHARD, replica:SHARD, shard:SHARD, proxy, idserver:leader|follower|ID or txcoord:leader|follower|ID", target)
	}
	return nil
}

var faultParams = map[string][]string{
	"latency":    {"latency", "jitter"},
	"timeout":    {"timeout"},
	"reset_peer": {"timeout"},
	"bandwidth":  {"rate"},
	"lag":        {"delay"},
	"kill":       {},
	"pause":      {},
	"switchover": {"to"},
	"clock_skew": {"offset"},
}

func checkFaultParams(kind string, p map[string]any) error {
	allowed := faultParams[kind]
	for k := range p {
		if !contains(allowed, k) {
			if len(allowed) == 0 {
				return fmt.Errorf("%s takes no params (got %q)", kind, k)
			}
			return fmt.Errorf("%q: %s takes %s", k, kind, strings.Join(allowed, ", "))
		}
	}
	for _, k := range []string{"latency", "jitter", "timeout", "delay"} {
		if v, ok := p[k]; ok {
			if d, err := paramDuration(v); err != nil {
				return fmt.Errorf("%s: %w", k, err)
			} else if d < 0 {
				return fmt.Errorf("%s: %v: must not be negative", k, v)
			}
		}
	}
	if kind == "clock_skew" {
		d, err := paramDuration(p["offset"])
		if err != nil || d == 0 {
			return fmt.Errorf("offset: %v: want a non-zero duration, e.g. -3s (back) or 2s (forward)", p["offset"])
		}
	}
	if v, ok := p["rate"]; ok {
		if n, ok := paramInt(v); !ok || n < 0 {
			return fmt.Errorf("rate: %v: want KB/s, a whole number", v)
		}
	}
	return nil
}

var workloadParams = map[string][]string{
	"set":      {"transactions"},
	"ids":      {"tag", "count", "mode"},
	"ryw":      {"keys"},
	"bank":     {"accounts", "initial", "cross_shard"},
	"register": {"keys", "consistency"},
	"cache":    {"keys", "read_prefix"},
}

func checkParams(kind string, p map[string]any) error {
	allowed := workloadParams[kind]
	for k := range p {
		if !contains(allowed, k) {
			if len(allowed) == 0 {
				return fmt.Errorf("%s takes no params (got %q)", kind, k)
			}
			return fmt.Errorf("%q: %s takes %s", k, kind, strings.Join(allowed, ", "))
		}
	}
	for _, k := range []string{"count", "keys", "accounts", "initial"} {
		if v, ok := p[k]; ok {
			if n, ok := paramInt(v); !ok || n < 1 || n > maxParam {
				return fmt.Errorf("%s: %v: want a whole number from 1 to %d", k, v, maxParam)
			}
		}
	}
	// A transfer picks two accounts and moves 1 to initial/2.
	if kind == "bank" {
		for _, k := range []string{"accounts", "initial"} {
			if n, ok := paramInt(p[k]); ok && n < 2 {
				return fmt.Errorf("%s: %d: bank needs at least 2", k, n)
			}
		}
	}
	if v, ok := p["transactions"]; ok {
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("transactions: %v: want true or false", v)
		}
	}
	if v, ok := p["mode"]; ok {
		if s, _ := v.(string); s != "segment" && s != "snowflake" {
			return fmt.Errorf("mode: %v: want segment or snowflake", v)
		}
	}
	if v, ok := p["consistency"]; ok {
		if s, _ := v.(string); s != "strong" && s != "session" && s != "eventual" {
			return fmt.Errorf("consistency: %v: want strong, session or eventual", v)
		}
	}
	return nil
}

// maxParam bounds the counts of a workload's params: keys and accounts
// are created one by one at the start, and accounts × initial must not
// overflow.
const maxParam = 1_000_000

func paramDuration(v any) (time.Duration, error) {
	switch x := v.(type) {
	case string:
		return time.ParseDuration(x)
	case uint64:
		return time.Duration(x) * time.Millisecond, nil
	case int64:
		return time.Duration(x) * time.Millisecond, nil
	case int:
		return time.Duration(x) * time.Millisecond, nil
	case float64:
		return time.Duration(x * float64(time.Millisecond)), nil
	}
	return 0, fmt.Errorf("%v: want a duration such as 200ms", v)
}

func paramInt(v any) (int64, bool) {
	switch x := v.(type) {
	case uint64:
		return int64(x), true
	case int64:
		return x, true
	case int:
		return int64(x), true
	case float64:
		return int64(x), x == float64(int64(x))
	}
	return 0, false
}

// pDuration and pInt read a validated param, or def.
func pDuration(p map[string]any, k string, def time.Duration) time.Duration {
	if v, ok := p[k]; ok {
		if d, err := paramDuration(v); err == nil {
			return d
		}
	}
	return def
}

func pInt(p map[string]any, k string, def int64) int64 {
	if v, ok := p[k]; ok {
		if n, ok := paramInt(v); ok {
			return n
		}
	}
	return def
}

func pString(p map[string]any, k, def string) string {
	if s, ok := p[k].(string); ok && s != "" {
		return s
	}
	return def
}

func pBool(p map[string]any, k string) bool {
	b, _ := p[k].(bool)
	return b
}

// errNotYet marks a capability that waits for another component.
var errNotYet = errors.New("not yet built")
