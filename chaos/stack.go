package chaos

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/go-sql-driver/mysql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/strata-db/strata/localdb"
)

// stack is the system under test, as the drill reaches it: addresses for
// the workloads, and handles for the faults.
// quietDriver keeps go-sql-driver/mysql from printing "unexpected EOF"
// for every connection a fault breaks: the workloads record the errors.
var quietDriver mysql.Logger = log.New(io.Discard, "", 0)

type stack struct {
	log *slog.Logger
	j   *journal

	// proxyAddr is what clients dial: a Toxiproxy link in front of the
	// proxy, which listens on proxyReal.
	proxyAddr, proxyReal string
	user, password       string
	// dbSharded holds the workloads' tables (sharded over every shard in
	// a local stack); dbSingle the bank's (one shard).
	dbSharded, dbSingle string
	idGRPC, idHTTP      []string
	// txGRPC, txHTTP: the coordinator group's nodes (local only).
	txGRPC, txHTTP []string

	// Local only.
	env   []string // for the processes it starts
	dir   string
	topo  *localdb.Topology
	tp    *toxiproxy.ApiServer
	links map[string]*toxiproxy.Proxy // "mariadb:NAME" (proxy→server), "proxy" (clients→proxy)
	procs map[string]*proc            // "proxy", "idserver:ID", "txcoord:ID"
	txg   *Group                      // the coordinator group

	// idg is the ID service group (external: nodes without processes,
	// named by their gRPC addresses).
	idg *Group

	// External only.
	dbRoot string
}

// server is one MariaDB server of the stack.
type server struct {
	Name, Shard, Addr string
	local             *localdb.Server
}

// proc is a process the drill started from the strata binary.
type proc struct {
	name, addr string // addr: where it listens (to wait for it)
	args       []string
	env        []string // added to the drill's environment
	logPath    string
	j          *journal

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	entry  int
}

func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	lf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.args[0], p.args[1:]...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.Env = append(os.Environ(), p.env...)
	// Dies with the drill even when the drill is killed; the journal
	// names it too, for cleanup.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return fmt.Errorf("chaos: start %s: %w", p.name, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); lf.Close(); close(exited) }()
	p.cmd, p.exited = cmd, exited
	p.entry = p.j.add(JournalEntry{Kind: jProcess, What: p.name, Pid: cmd.Process.Pid, Cmdline: p.args})
	return nil
}

func (p *proc) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

func (p *proc) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

func (p *proc) signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return fmt.Errorf("%s is not running", p.name)
	}
	return p.cmd.Process.Signal(sig)
}

// kill ends it with SIGKILL and waits until it is reaped.
func (p *proc) kill() {
	p.mu.Lock()
	cmd, exited, entry := p.cmd, p.exited, p.entry
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGCONT)
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-exited
	p.j.done(entry)
}

// stop ends it gracefully (SIGTERM, then SIGKILL after 10s).
func (p *proc) stop() {
	p.mu.Lock()
	cmd, exited, entry := p.cmd, p.exited, p.entry
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGCONT)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-exited
	}
	p.j.done(entry)
}

// StackOptions are what starting a stack needs besides the drill.
type StackOptions struct {
	// Binary is the strata binary that runs the proxy and the ID service.
	Binary string
	// Dir is where a local stack keeps its data; empty makes a temporary
	// directory, removed at the end.
	Dir string
	// Env is added to the environment of the processes the stack starts.
	Env    []string
	Logger *slog.Logger
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// startLocal brings up a local stack for the drill.
func startLocal(ctx context.Context, lt *LocalTarget, o StackOptions, j *journal) (_ *stack, err error) {
	if o.Binary == "" {
		return nil, errors.New("chaos: a local target needs the strata binary (StackOptions.Binary)")
	}
	s := &stack{log: o.Logger, j: j, user: "root", links: map[string]*toxiproxy.Proxy{}, procs: map[string]*proc{}, env: o.Env, dbSharded: "chaos", dbSingle: "chaosbank"}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	s.dir = o.Dir
	if s.dir == "" {
		if s.dir, err = os.MkdirTemp("", "strata-chaos-"); err != nil {
			return nil, err
		}
		j.add(JournalEntry{Kind: jDir, What: s.dir, Path: s.dir})
	}
	cfg := localdb.DefaultConfig()
	cfg.Root = filepath.Join(s.dir, "mariadb")
	cfg.Shards, cfg.Replicas = lt.Shards, lt.Replicas
	cfg.Logger = o.Logger
	if s.topo, err = localdb.Start(ctx, cfg); err != nil {
		return nil, err
	}
	for _, sv := range s.topo.Servers() {
		j.add(JournalEntry{Kind: jProcess, What: "mariadbd " + sv.Name, Pid: sv.Pid(), Cmdline: cmdlineOf(sv.Pid())})
	}

	// Toxiproxy, embedded: one link per server, the proxy's only way there.
	// Its toxics log through zerolog's global logger at trace level (a line
	// per interrupted pipe); only warnings are worth the console.
	s.tp = newToxiproxy()
	for _, sv := range s.topo.Servers() {
		if _, err := s.link("mariadb:"+sv.Name, sv.Addr()); err != nil {
			return nil, err
		}
	}

	if lt.IDServers > 0 {
		// The clock a clock_skew fault moves; offset 0 unless one does.
		if err := s.startIDServers(ctx, lt.IDServers, o.Binary, []string{"--chaos-clock"}); err != nil {
			return nil, err
		}
	}
	if lt.TXCoords > 0 {
		if err := s.startTXCoords(ctx, lt.TXCoords, o.Binary); err != nil {
			return nil, err
		}
	}
	if err := s.startProxy(ctx, lt, o.Binary); err != nil {
		return nil, err
	}
	return s, nil
}

// startTXCoords starts a `strata txcoord` group of n nodes on free ports,
// without their Seata TCs (two nodes of one machine would both want 8091,
// and the drills have no Seata client), and waits for a leader.
func (s *stack) startTXCoords(ctx context.Context, n int, bin string) (err error) {
	s.txg, err = s.startGroup(ctx, GroupConfig{Binary: bin, Command: "txcoord", Nodes: n, Args: []string{"--seata-addr", "off"}})
	if err != nil {
		return err
	}
	s.txGRPC, s.txHTTP = s.txg.GRPCAddrs(), s.txg.HTTPAddrs()
	return nil
}

// startIDServers starts a `strata idserver` group of n nodes on free ports
// and waits for a leader that serves.
func (s *stack) startIDServers(ctx context.Context, n int, bin string, args []string) (err error) {
	s.idg, err = s.startGroup(ctx, GroupConfig{Binary: bin, Command: "idserver", Nodes: n, Args: args})
	if err != nil {
		return err
	}
	s.idGRPC, s.idHTTP = s.idg.GRPCAddrs(), s.idg.HTTPAddrs()
	return nil
}

// startGroup starts a group in the stack's directory, its processes in
// the journal and in procs (by "command:ID", for the faults).
func (s *stack) startGroup(ctx context.Context, cfg GroupConfig) (*Group, error) {
	cfg.Dir, cfg.Env = s.dir, s.env
	g, err := startGroup(ctx, cfg, s.j)
	if g == nil {
		return nil, err
	}
	for _, n := range g.Nodes {
		s.procs[n.p.name] = n.p
	}
	return g, err
}

// newToxiproxy is the embedded Toxiproxy. Its toxics log through
// zerolog's global logger at trace level (a line per interrupted pipe);
// only warnings are worth the console.
func newToxiproxy() *toxiproxy.ApiServer {
	zerolog.SetGlobalLevel(zerolog.WarnLevel)
	return toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
}

// link starts a Toxiproxy link to upstream and returns its address.
func (s *stack) link(name, upstream string) (string, error) {
	p := toxiproxy.NewProxy(s.tp, name, "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		return "", fmt.Errorf("chaos: toxiproxy %s: %w", name, err)
	}
	s.links[name] = p
	return p.Listen, nil
}

// idLeader returns the index of the ID service node that says it leads
// and serves.
func (s *stack) idLeader(ctx context.Context) (int, error) {
	if s.idg == nil {
		return -1, errors.New("no ID service")
	}
	return s.idg.Leader(ctx)
}

// txLeader returns the index of the coordinator node that says it leads.
func (s *stack) txLeader(ctx context.Context) (int, error) {
	if s.txg == nil {
		return -1, errors.New("no coordinator group")
	}
	return s.txg.Leader(ctx)
}

func (s *stack) startProxy(ctx context.Context, lt *LocalTarget, bin string) error {
	listen, err := freeAddr()
	if err != nil {
		return err
	}
	admin, err := freeAddr()
	if err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "listen: %s\nadmin_listen: %s\nslow_query_threshold: 0s\nusers: [{name: root, password: \"\"}]\nbackend: {user: %s, password: \"\"}\nshards:\n", listen, admin, localdb.AppUser)
	for _, sh := range s.topo.Shards() {
		fmt.Fprintf(&b, "  - name: %s\n    primary: %q\n", sh.Name, s.links["mariadb:"+sh.Primary().Name].Listen)
		var reps []string
		for _, r := range sh.Replicas() {
			reps = append(reps, strconv.Quote(s.links["mariadb:"+r.Name].Listen))
		}
		if len(reps) > 0 {
			fmt.Fprintf(&b, "    replicas: [%s]\n", strings.Join(reps, ", "))
		}
	}
	b.WriteString("databases:\n  chaos:\n    sharded: true\n    tables:\n")
	for _, t := range []string{"set_items:id", "registers:k", "ryw:k", "cache_items:k", "accounts:id", "transfers:id"} {
		name, col, _ := strings.Cut(t, ":")
		fmt.Fprintf(&b, "      %s: {kind: sharded, column: %s, function: hash}\n", name, col)
	}
	fmt.Fprintf(&b, "  chaosbank: {shard: %s}\n", s.topo.Shards()[0].Name)
	if lt.Replicas > 0 {
		fmt.Fprintf(&b, "read_write:\n  enabled: true\n  consistency: session\n  max_lag: %s\n", lt.MaxLag.D())
		if lt.AutoPromoteAfter > 0 {
			fmt.Fprintf(&b, "  auto_promote_after: %s\n", lt.AutoPromoteAfter.D())
		}
	}
	if len(s.idGRPC) > 0 {
		fmt.Fprintf(&b, "id_service:\n  addrs: [%s]\n", strings.Join(s.idGRPC, ", "))
	}
	if len(s.txGRPC) > 0 {
		// Recovery runs often and presumes abort early, so that a drill's
		// settle period sees every branch a fault left prepared finished.
		fmt.Fprintf(&b, "transactions:\n  coordinator: [%s]\n  resolve_interval: 1s\n  abandon_after: 5s\n", strings.Join(s.txGRPC, ", "))
	}
	cfgPath := filepath.Join(s.dir, "proxy.yaml")
	if err := os.WriteFile(cfgPath, []byte(b.String()), 0o644); err != nil {
		return err
	}
	p := &proc{name: "proxy", addr: listen, j: s.j, env: s.env, logPath: filepath.Join(s.dir, "proxy.log"),
		args: []string{bin, "proxy", "--log-level", "warn", "--config", cfgPath}}
	if err := p.start(); err != nil {
		return err
	}
	s.procs["proxy"] = p
	s.proxyReal = listen
	if s.proxyAddr, err = s.link("proxy", listen); err != nil {
		return err
	}
	if err := s.waitProxy(ctx, 60*time.Second); err != nil {
		tail, _ := os.ReadFile(p.logPath)
		return fmt.Errorf("%w; proxy log: %s", err, lastLine(string(tail)))
	}
	return nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > 3 {
		lines = lines[len(lines)-3:]
	}
	return strings.Join(lines, " | ")
}

// waitProxy waits until the proxy answers a query.
func (s *stack) waitProxy(ctx context.Context, d time.Duration) error {
	db, err := s.openProxy("")
	if err != nil {
		return err
	}
	defer db.Close()
	deadline := time.Now().Add(d)
	var last error
	for time.Now().Before(deadline) && ctx.Err() == nil {
		c, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, last = db.ExecContext(c, "SELECT 1")
		cancel()
		if last == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("chaos: the proxy does not answer: %v", last)
}

// openProxy is a handle to the proxy as a client, for database db.
func (s *stack) openProxy(db string) (*sql.DB, error) {
	c := mysql.NewConfig()
	c.User, c.Passwd, c.Net, c.Addr, c.DBName = s.user, s.password, "tcp", s.proxyAddr, db
	c.Timeout, c.ReadTimeout, c.WriteTimeout = 3*time.Second, 5*time.Second, 5*time.Second
	c.InterpolateParams = true
	c.Logger = quietDriver
	conn, err := mysql.NewConnector(c)
	if err != nil {
		return nil, err
	}
	d := sql.OpenDB(conn)
	d.SetMaxIdleConns(64)
	return d, nil
}

// attachExternal describes a running stack.
func attachExternal(et *ExternalTarget, log *slog.Logger, j *journal) (*stack, error) {
	s := &stack{log: log, j: j, proxyReal: et.Proxy, user: et.User, password: et.Password, dbSharded: et.Database, dbSingle: et.Database,
		idGRPC: et.IDServerGRPC, idHTTP: et.IDServerHTTP, dbRoot: et.MariaDBRoot}
	if len(et.IDServerHTTP) > 0 {
		s.idg = &Group{}
		for i, h := range et.IDServerHTTP {
			s.idg.Nodes = append(s.idg.Nodes, &GroupNode{ID: et.IDServerGRPC[i], HTTP: h, GRPC: et.IDServerGRPC[i]})
		}
	}
	if s.dbRoot != "" {
		if _, err := s.servers(); err != nil {
			return nil, err
		}
	}
	if et.Proxy != "" {
		// The workloads reach the proxy through a link of the drill's own,
		// so that network faults on target proxy work here too. The
		// proxy's own connections (to its servers, the ID service, the
		// coordinator) are the stack's: the drill cannot sit on them.
		s.tp, s.links = newToxiproxy(), map[string]*toxiproxy.Proxy{}
		var err error
		if s.proxyAddr, err = s.link("proxy", et.Proxy); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// topologyRecord is localdb's topology.json, as far as the drill reads it.
type topologyRecord struct {
	Shards []struct {
		Name    string `json:"name"`
		Servers []struct {
			Name string `json:"name"`
			Port int    `json:"port"`
		} `json:"servers"`
	} `json:"shards"`
}

// servers lists the stack's MariaDB servers.
func (s *stack) servers() ([]server, error) {
	if s.topo != nil {
		var out []server
		for _, sv := range s.topo.Servers() {
			out = append(out, server{Name: sv.Name, Shard: sv.Shard, Addr: sv.Addr(), local: sv})
		}
		return out, nil
	}
	if s.dbRoot == "" {
		return nil, errors.New("chaos: no MariaDB servers known (target.external.mariadb_root)")
	}
	b, err := os.ReadFile(filepath.Join(s.dbRoot, "topology.json"))
	if err != nil {
		return nil, fmt.Errorf("chaos: target.external.mariadb_root: %w", err)
	}
	var rec topologyRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("chaos: %s/topology.json: %w", s.dbRoot, err)
	}
	var out []server
	for _, sh := range rec.Shards {
		for _, sv := range sh.Servers {
			out = append(out, server{Name: sv.Name, Shard: sh.Name, Addr: fmt.Sprintf("127.0.0.1:%d", sv.Port)})
		}
	}
	return out, nil
}

// isPrimary asks the server itself: a primary is not read_only. Roles move
// with switchovers, which localdb's record does not follow.
func isPrimary(ctx context.Context, addr string) (bool, error) {
	db, err := rootDB(addr)
	if err != nil {
		return false, err
	}
	defer db.Close()
	c, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var ro int
	if err := db.QueryRowContext(c, "SELECT @@read_only").Scan(&ro); err != nil {
		return false, err
	}
	return ro == 0, nil
}

// resolveServers turns mariadb:NAME, primary:SHARD, replica:SHARD or
// shard:SHARD into servers, roles as they are now. A server that does not
// answer has no role; on a loaded machine one may answer late, so an empty
// answer is asked again for a few seconds.
func (s *stack) resolveServers(ctx context.Context, target string) ([]server, error) {
	var out []server
	var err error
	for try := 0; try < 5; try++ {
		if out, err = s.resolveOnce(ctx, target); err == nil || ctx.Err() != nil {
			return out, err
		}
		sleepCtx(ctx, time.Second)
	}
	return out, err
}

func (s *stack) resolveOnce(ctx context.Context, target string) ([]server, error) {
	what, arg, _ := strings.Cut(target, ":")
	all, err := s.servers()
	if err != nil {
		return nil, err
	}
	var out []server
	for _, sv := range all {
		switch what {
		case "mariadb":
			if sv.Name == arg {
				out = append(out, sv)
			}
		case "shard":
			if sv.Shard == arg {
				out = append(out, sv)
			}
		case "primary", "replica":
			if sv.Shard != arg {
				continue
			}
			p, err := isPrimary(ctx, sv.Addr)
			if err != nil {
				continue // down: neither
			}
			if p == (what == "primary") {
				out = append(out, sv)
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("chaos: %s: no such server (up and answering)", target)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	if what == "replica" || what == "primary" {
		out = out[:1]
	}
	return out, nil
}

// close stops everything a local stack started: gracefully when its data
// directory is kept, with SIGKILL when it is about to be removed (nothing
// in it is worth the seconds a clean shutdown takes).
func (s *stack) close() {
	if s == nil {
		return
	}
	throwaway := len(s.j.entriesOf(jDir)) > 0
	if p := s.procs["proxy"]; p != nil {
		if throwaway {
			p.kill()
		} else {
			p.stop()
		}
	}
	for name, p := range s.procs {
		if name != "proxy" {
			if throwaway {
				p.kill()
			} else {
				p.stop()
			}
		}
	}
	if s.tp != nil {
		for _, l := range s.links {
			l.Stop()
		}
	}
	if s.topo != nil {
		if throwaway {
			var wg sync.WaitGroup
			for _, sv := range s.topo.Servers() {
				wg.Add(1)
				go func() { defer wg.Done(); _ = sv.Kill() }()
			}
			wg.Wait()
		}
		_ = s.topo.Stop()
		for _, e := range s.j.entriesOf(jProcess) {
			if strings.HasPrefix(e.What, "mariadbd ") {
				s.j.done(e.ID)
			}
		}
	}
}

func (j *journal) entriesOf(kind string) []JournalEntry {
	if j == nil {
		return nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []JournalEntry
	for _, e := range j.f.Entries {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

// removeDir removes a temporary stack directory and its journal entry.
func (s *stack) removeDir() {
	for _, e := range s.j.entriesOf(jDir) {
		if e.Path == s.dir {
			_ = os.RemoveAll(s.dir)
			s.j.done(e.ID)
		}
	}
}

// waitReplicated waits until every answering replica has applied what its
// shard's primary had when the call began. Roles are asked of the servers
// (localdb's record does not follow the proxy's switchovers), and a
// promoted replica's own writes are not in its gtid_slave_pos, so only the
// servers that are replicas now are waited on.
func (s *stack) waitReplicated(ctx context.Context) error {
	all, err := s.servers()
	if err != nil {
		return err
	}
	byShard := map[string][]server{}
	for _, sv := range all {
		byShard[sv.Shard] = append(byShard[sv.Shard], sv)
	}
	for _, svs := range byShard {
		var primary string
		var replicas []string
		for _, sv := range svs {
			p, err := isPrimary(ctx, sv.Addr)
			switch {
			case err != nil:
				continue // down or paused: nothing to wait for
			case p:
				primary = sv.Addr
			default:
				replicas = append(replicas, sv.Addr)
			}
		}
		if primary == "" {
			continue
		}
		pos, err := queryString(ctx, primary, "SELECT @@gtid_binlog_pos")
		if err != nil || pos == "" {
			continue
		}
		for _, r := range replicas {
			res, err := queryString(ctx, r, fmt.Sprintf("SELECT MASTER_GTID_WAIT('%s', 20)", pos))
			if err != nil {
				return err
			}
			if res != "0" {
				return fmt.Errorf("chaos: replica %s did not reach %s", r, pos)
			}
		}
	}
	return nil
}

func queryString(ctx context.Context, addr, q string) (string, error) {
	db, err := rootDB(addr)
	if err != nil {
		return "", err
	}
	defer db.Close()
	var v sql.NullString
	err = db.QueryRowContext(ctx, q).Scan(&v)
	return v.String, err
}
