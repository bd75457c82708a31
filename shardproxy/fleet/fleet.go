package fleet

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/prometheus/client_golang/prometheus"
)

// Fleet is the set of servers of every shard, their health, lag and GTID
// positions, and the routing decisions made from them. Its methods are safe
// for concurrent use; AcquireRead and AcquirePrimary are on every query's
// path and take no fleet-wide lock.
type Fleet struct {
	cfg   Config
	log   *slog.Logger
	m     *metrics
	epoch time.Time
	hbID  string
	hbSeq atomic.Int64

	shards  map[string]*shard
	order   []*shard
	servers map[string]*server

	mu        sync.Mutex
	listeners []func(Event)
	stop      chan struct{}
	// life is canceled by Close: the fleet's own long operations (a
	// switchover past its point of no return, fencing, promotion) run on
	// it, not on a caller's context that may end halfway.
	life    context.Context
	endLife context.CancelFunc
	wg      sync.WaitGroup
	started bool
	closed  bool
}

// EventKind says what changed.
type EventKind int

const (
	// ServerEjected: the server stopped answering; no queries are routed
	// to it. A proxy should close its backend connections to it, so queries
	// hung on a paused server end (and reads are retried elsewhere).
	ServerEjected EventKind = iota + 1
	// ServerRestored: the server answers again. Emitted just before
	// queries are routed to it again.
	ServerRestored
	// PrimaryChanged: Server is the shard's primary now, in place of Old.
	PrimaryChanged
)

func (k EventKind) String() string {
	switch k {
	case ServerEjected:
		return "ejected"
	case ServerRestored:
		return "restored"
	case PrimaryChanged:
		return "primary-changed"
	}
	return "unknown"
}

// Event is a change the proxy may act on.
type Event struct {
	Kind   EventKind
	Shard  string
	Server string
	Old    string // PrimaryChanged: the former primary
}

// shard is one shard's servers and routing state.
type shard struct {
	name    string
	servers []*server
	primary atomic.Pointer[server]
	rr      atomic.Uint32 // rotates the start of replica scans so ties spread

	mu        sync.Mutex // the gate
	switching bool
	gate      chan struct{} // closed when a switchover ends
	held      int
	downSince time.Time // when the primary was ejected; zero while it is up

	op sync.Mutex // one switchover or failover at a time

	hbMu  sync.Mutex
	beats []beat // heartbeats written on this shard's primary, ascending seq
}

// beat is one heartbeat write: its seq and when the fleet sent it.
type beat struct {
	seq int64
	at  int64 // nanoseconds since the fleet's epoch
}

// maxBeats bounds the heartbeat history: at the default interval, 7 minutes.
const maxBeats = 4096

// server is one server's state as the fleet sees it.
type server struct {
	f   *Fleet
	sh  *shard
	cfg ServerConfig
	db  *sql.DB

	healthy atomic.Bool
	// reports counts ReportFailure calls; cleared is the count seen when
	// the last successful check began. While reports > cleared the server is
	// suspect and gets no queries: a check that began after the report must
	// pass first.
	reports     atomic.Uint64
	cleared     atomic.Uint64
	outstanding atomic.Int64
	pos         atomic.Pointer[Position]
	lagKnown    atomic.Bool
	behindSince atomic.Int64 // epoch ns of the oldest heartbeat not applied; 0: caught up
	checkedLag  atomic.Int64 // ns: the lag as measured at the last check (behindSince grows it since)
	reads       atomic.Uint64
	writes      atomic.Uint64
	mReads      prometheus.Counter // cached: the label lookup is too slow per query
	mWrites     prometheus.Counter
	kick        chan struct{}

	mu          sync.Mutex
	lastOK      time.Time
	failures    int
	lastErr     string
	ejections   uint64
	readOnly    bool
	replicating bool // SHOW SLAVE STATUS has a row
	ioRunning   bool
	ioStopped   bool // Slave_IO_Running is No (not Yes, not Connecting)
	sqlRunning  bool
	sqlDelay    int
	ioPos       Position
	replErr     string
	masterAddr  string
	needsFence  bool // a primary replaced while it was down: fence when it returns
	// needsRepoint: a replica that could not be repointed at a new primary
	// (down, or the repoint failed); retried when it answers, at most every
	// repointRetry, so it does not stay behind the old primary for good.
	needsRepoint  bool
	repointFailed time.Time
	repointFormer bool // the pending repoint is of a former primary (current_pos)
}

// New validates cfg and builds the fleet. It connects to nothing until
// Start. Metrics are registered on reg (nil: not registered); log nil
// discards.
func New(cfg Config, reg prometheus.Registerer, log *slog.Logger) (*Fleet, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.HeartbeatID == "" {
		host, _ := os.Hostname()
		cfg.HeartbeatID = fmt.Sprintf("%.50s-%d", host, os.Getpid())
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	f := &Fleet{
		cfg: cfg, log: log, m: m, epoch: time.Now(), hbID: cfg.HeartbeatID,
		shards: map[string]*shard{}, servers: map[string]*server{},
		stop: make(chan struct{}),
	}
	f.life, f.endLife = context.WithCancel(context.Background())
	// Seqs continue across restarts of the proxy, so a replica's row from
	// an earlier run never looks newer than this run's heartbeats.
	f.hbSeq.Store(time.Now().UnixMicro())
	for _, sc := range cfg.Shards {
		sh := &shard{name: sc.Name}
		for _, c := range sc.Servers {
			s := &server{f: f, sh: sh, cfg: c, kick: make(chan struct{}, 1)}
			s.db = openAdmin(c, cfg.CheckTimeout)
			s.mReads = m.reads.WithLabelValues(sc.Name, c.Name)
			s.mWrites = m.writes.WithLabelValues(sc.Name, c.Name)
			m.healthy.WithLabelValues(sc.Name, c.Name).Set(0)
			m.lag.WithLabelValues(sc.Name, c.Name).Set(-1)
			m.ejections.WithLabelValues(sc.Name, c.Name)
			sh.servers = append(sh.servers, s)
			f.servers[c.Name] = s
			if c.Role == RolePrimary {
				sh.primary.Store(s)
			}
			m.role.WithLabelValues(sh.name, c.Name).Set(b2f(c.Role == RolePrimary))
		}
		f.shards[sc.Name] = sh
		f.order = append(f.order, sh)
	}
	return f, nil
}

func openAdmin(c ServerConfig, timeout time.Duration) *sql.DB {
	mc := mysql.NewConfig()
	mc.User, mc.Passwd, mc.Net, mc.Addr = c.User, c.Password, "tcp", c.Addr
	// Checks carry their own context deadline; these bound what a context
	// cannot reach (a dial or a handshake with a stopped server).
	mc.Timeout, mc.ReadTimeout, mc.WriteTimeout = timeout, 30*time.Second, timeout
	db := sql.OpenDB(mustConnector(mc))
	// One connection for checks and heartbeats, one for admin work that
	// may run beside them.
	db.SetMaxOpenConns(3)
	db.SetMaxIdleConns(3)
	db.SetConnMaxIdleTime(time.Minute)
	return db
}

func mustConnector(mc *mysql.Config) driver.Connector {
	c, err := mysql.NewConnector(mc)
	if err != nil {
		// NewConnector fails only on a config it cannot normalize, which
		// Validate already excluded.
		panic(fmt.Sprintf("fleet: mysql connector: %v", err))
	}
	return c
}

// OnEvent adds fn to the functions called on every Event. Call it before
// Start. fn runs on a fleet goroutine and must not block.
func (f *Fleet) OnEvent(fn func(Event)) {
	f.mu.Lock()
	f.listeners = append(f.listeners, fn)
	f.mu.Unlock()
}

func (f *Fleet) emit(e Event) {
	f.mu.Lock()
	ls := make([]func(Event), len(f.listeners))
	copy(ls, f.listeners)
	f.mu.Unlock()
	for _, fn := range ls {
		fn(e)
	}
}

// Start checks every server once (each bounded by Config.CheckTimeout),
// settles each shard's primary from what the servers report, creates the
// heartbeat table on the primaries that answer, and starts the checks. A
// server that does not answer starts ejected; Start fails only on ctx.
func (f *Fleet) Start(ctx context.Context) error {
	f.mu.Lock()
	if f.started || f.closed {
		f.mu.Unlock()
		return errors.New("fleet: Start called twice or after Close")
	}
	f.started = true
	f.mu.Unlock()

	var wg sync.WaitGroup
	for _, s := range f.servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			began := time.Now()
			cctx, cancel := context.WithTimeout(ctx, f.cfg.CheckTimeout)
			defer cancel()
			s.record(f.probe(cctx, s), began)
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, sh := range f.order {
		f.discoverPrimary(sh)
		if p := sh.primary.Load(); p != nil && p.healthy.Load() {
			cctx, cancel := context.WithTimeout(ctx, 5*f.cfg.CheckTimeout)
			if err := f.ensureMeta(cctx, p); err != nil {
				f.log.Warn("fleet: heartbeat table", "shard", sh.name, "server", p.cfg.Name, "err", err)
			} else {
				_ = f.writeBeat(cctx, sh, p)
			}
			cancel()
		}
	}
	for _, s := range f.servers {
		f.wg.Add(1)
		go f.checkLoop(s)
	}
	f.wg.Add(1)
	go f.superviseLoop()
	f.log.Info("fleet: started", "shards", len(f.order), "servers", len(f.servers))
	return nil
}

// discoverPrimary takes as primary the one server of the shard that is
// writable and not replicating, when there is exactly one; otherwise the
// configured primary stays.
func (f *Fleet) discoverPrimary(sh *shard) {
	var found []*server
	for _, s := range sh.servers {
		s.mu.Lock()
		w := s.healthy.Load() && !s.readOnly && !s.replicating
		s.mu.Unlock()
		if w {
			found = append(found, s)
		}
	}
	cur := sh.primary.Load()
	switch {
	case len(found) == 1 && found[0] != cur:
		f.log.Warn("fleet: primary differs from config; using the writable server", "shard", sh.name, "config", cur.cfg.Name, "primary", found[0].cfg.Name)
		f.setPrimary(sh, found[0])
	case len(found) > 1:
		names := make([]string, len(found))
		for i, s := range found {
			names[i] = s.cfg.Name
		}
		f.log.Warn("fleet: several writable servers in one shard; keeping the configured primary", "shard", sh.name, "writable", names, "primary", cur.cfg.Name)
	}
}

func (f *Fleet) setPrimary(sh *shard, p *server) {
	old := sh.primary.Swap(p)
	for _, s := range sh.servers {
		f.m.role.WithLabelValues(sh.name, s.cfg.Name).Set(b2f(s == p))
	}
	if old != p {
		e := Event{Kind: PrimaryChanged, Shard: sh.name, Server: p.cfg.Name}
		if old != nil {
			e.Old = old.cfg.Name
		}
		f.emit(e)
	}
}

// Close stops the checks and closes the admin connections. Leases still
// out stay valid; the fleet routes nothing after Close.
func (f *Fleet) Close() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	f.closed = true
	close(f.stop)
	f.mu.Unlock()
	f.endLife()
	f.wg.Wait()
	var errs []error
	for _, s := range f.servers {
		errs = append(errs, s.db.Close())
	}
	f.m.unregister()
	return errors.Join(errs...)
}

// now is the time since the fleet's epoch, monotonic.
func (f *Fleet) now() int64 { return int64(time.Since(f.epoch)) }

// Shards returns the shard names in config order.
func (f *Fleet) Shards() []string {
	out := make([]string, len(f.order))
	for i, sh := range f.order {
		out[i] = sh.name
	}
	return out
}

// Primary returns the name and address of the shard's current primary,
// healthy or not.
func (f *Fleet) Primary(shardName string) (name, addr string, err error) {
	sh, err := f.shard(shardName)
	if err != nil {
		return "", "", err
	}
	p := sh.primary.Load()
	return p.cfg.Name, p.cfg.Addr, nil
}

// Addr returns a server's address.
func (f *Fleet) Addr(serverName string) (string, error) {
	s, ok := f.servers[serverName]
	if !ok {
		return "", fmt.Errorf("%w %q", ErrUnknownServer, serverName)
	}
	return s.cfg.Addr, nil
}

// Servers returns every server's name and address, shard by shard.
func (f *Fleet) Servers() []ServerConfig {
	var out []ServerConfig
	for _, sh := range f.order {
		for _, s := range sh.servers {
			c := s.cfg
			c.Role = s.role()
			c.User, c.Password = "", ""
			out = append(out, c)
		}
	}
	return out
}

func (f *Fleet) shard(name string) (*shard, error) {
	sh, ok := f.shards[name]
	if !ok {
		return nil, &Error{Shard: name, Err: ErrUnknownShard, Msg: "unknown shard"}
	}
	return sh, nil
}

// usable reports whether queries may go to the server: healthy and not
// suspect.
func (s *server) usable() bool {
	return s.healthy.Load() && s.reports.Load() <= s.cleared.Load()
}

func (s *server) role() Role {
	if s.sh.primary.Load() == s {
		return RolePrimary
	}
	return RoleReplica
}

func (s *server) position() Position {
	if p := s.pos.Load(); p != nil {
		return *p
	}
	return nil
}

// lag is how far behind the replica is at fleet time now, and whether that
// is known.
func (s *server) lag(now int64) (time.Duration, bool) {
	if !s.lagKnown.Load() {
		return 0, false
	}
	b := s.behindSince.Load()
	if b == 0 || b > now {
		return 0, true
	}
	return time.Duration(now - b), true
}

// ReportFailure tells the fleet a query on the server failed in a way that
// suggests it is gone (a connection error). The server gets no queries
// until a check that starts after the report passes, and that check runs
// at once: a dead server is ejected within milliseconds, and a retry of the
// failed read never lands on it again.
func (f *Fleet) ReportFailure(serverName string) {
	if s, ok := f.servers[serverName]; ok {
		s.reports.Add(1)
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
}

// sortedServers is the shard's servers by name, for stable listings.
func (sh *shard) sortedServers() []*server {
	out := append([]*server(nil), sh.servers...)
	sort.Slice(out, func(i, j int) bool { return out[i].cfg.Name < out[j].cfg.Name })
	return out
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
