package shardproxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"vitess.io/vitess/go/mysql"
	"vitess.io/vitess/go/sqlescape"
	"vitess.io/vitess/go/vt/vtenv"

	"github.com/strata-db/strata/shardproxy/backend"
	"github.com/strata-db/strata/shardproxy/config"
	"github.com/strata-db/strata/shardproxy/executor"
	"github.com/strata-db/strata/shardproxy/planner"
	"github.com/strata-db/strata/shardproxy/rowcache"
	"github.com/strata-db/strata/shardproxy/rwsplit"
	"github.com/strata-db/strata/shardproxy/session"
	"github.com/strata-db/strata/shardproxy/vschema"
	"github.com/strata-db/strata/shardproxy/wire"
)

// Planner plans one normalized statement, returning the plan with its
// facts (planner.Plan).
type Planner = executor.Planner

// Options are a Server's dependencies.
type Options struct {
	// Config is the validated configuration. Required.
	Config *config.Config
	// Planner builds plans; nil is planner.Plan.
	Planner Planner
	// Registry receives the proxy's metrics and is served on /metrics. Nil
	// makes a new one.
	Registry *prometheus.Registry
	// Router picks a shard's server for each statement; nil sends
	// everything to primaries (or to the read/write router's choice).
	Router backend.Router
	// ReadWrite is a read/write router the caller built and starts: it is
	// bound to the pools, routes, and answers STRATA statements. Nil with
	// read_write.enabled (and no Router) builds and starts one.
	ReadWrite *rwsplit.Router
	// Logger gets startup, slow query and backend health lines.
	Logger *slog.Logger
	// XAFailpoint, for tests, is called at each step of a two-phase commit
	// ("prepared", "decided"); an error makes the proxy act as if it died
	// there (xa.CommitterConfig.Failpoint).
	XAFailpoint func(step string, txid uint64) error
}

// Server is the shard proxy: a MySQL listener whose connections the
// executor serves, the backend pools, and the admin HTTP server.
type Server struct {
	cfg     *config.Config
	vs      *vschema.VSchema
	env     *vtenv.Environment
	cluster *backend.Cluster
	reg     *prometheus.Registry
	log     *slog.Logger
	x       *executor.Executor

	listener *mysql.Listener
	adminLn  net.Listener
	admin    *http.Server

	version  string
	dbShards map[string]map[string]bool // database -> shards that hold it

	// rw is the read/write router (readwrite.go), nil when splitting is off;
	// ownRW when the server started it.
	rw    *rwsplit.Router
	ownRW bool

	// keys generates shard keys from the ID service; nil without
	// id_service.
	keys *session.KeyGen
	xa   *xaParts // cross-shard transactions, nil without a coordinator (xa.go)

	// rc is the hot-row cache (cache.go), nil when no table is cached.
	rc *rowcache.Manager

	mu     sync.Mutex
	closed bool
	done   chan struct{}
}

// New validates the configuration, creates the backend pools and binds the
// MySQL and admin listeners (so that Addr is known before Serve).
func New(ctx context.Context, o Options) (*Server, error) {
	if o.Config == nil {
		return nil, errors.New("shardproxy: Options.Config: required")
	}
	if o.Planner == nil {
		o.Planner = planner.Plan
	}
	cfg := o.Config
	vs, err := cfg.VSchema()
	if err != nil {
		return nil, fmt.Errorf("shardproxy: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("shardproxy: %w", err)
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	reg := o.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	// The parser follows MySQL 8.0's grammar, which covers what clients
	// send to MariaDB 10.11 through a proxy.
	env, err := vtenv.New(vtenv.Options{MySQLServerVersion: "8.0.40", TruncateErrLen: 256})
	if err != nil {
		return nil, fmt.Errorf("shardproxy: %w", err)
	}
	var tlsConf *tls.Config
	if cfg.TLS.Cert != "" {
		// TLS is terminated by the executor's client connection, below the
		// listener.
		cert, err := tls.LoadX509KeyPair(cfg.TLS.Cert, cfg.TLS.Key)
		if err != nil {
			return nil, fmt.Errorf("shardproxy: tls: %w", err)
		}
		tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	var specs []backend.ShardSpec
	for _, s := range cfg.Shards {
		specs = append(specs, backend.ShardSpec{Name: s.Name, Primary: s.Primary, Replicas: s.Replicas})
	}
	bo := backend.Options{
		User: cfg.Backend.User, Password: cfg.Backend.Password,
		MaxOpen: cfg.Backend.MaxOpen, MaxIdle: cfg.Backend.MaxIdle,
		IdleTimeout: cfg.Backend.IdleTimeout, ConnectTimeout: cfg.Backend.ConnectTimeout,
		WaitTimeout: cfg.Backend.WaitTimeout, HealthCheckInterval: cfg.Backend.HealthCheckInterval,
		Pipelines: cfg.Backend.Pipelines, PipelineDepth: cfg.Backend.PipelineDepth,
		Logger: log,
	}
	cluster, err := backend.NewCluster(specs, bo)
	if err != nil {
		return nil, fmt.Errorf("shardproxy: %w", err)
	}
	if o.Router != nil {
		cluster.SetRouter(o.Router)
	}
	s := &Server{
		cfg: cfg, vs: vs, env: env, cluster: cluster, reg: reg, log: log,
		dbShards: session.DatabaseShards(vs),
		done:     make(chan struct{}),
	}
	sm, xm, err := newMetrics(reg, s)
	if err != nil {
		cluster.Close()
		return nil, fmt.Errorf("shardproxy: metrics: %w", err)
	}
	if err := s.startReadWrite(ctx, o); err != nil {
		cluster.Close()
		return nil, err
	}
	if s.keys, err = session.NewKeyGen(cfg, reg); err != nil {
		s.stopReadWrite()
		cluster.Close()
		return nil, err
	}
	hot, err := newHotCombiner(vs, reg)
	if err != nil {
		s.keys.Close()
		s.stopReadWrite()
		cluster.Close()
		return nil, err
	}
	s.version = cfg.ServerVersion
	if s.version == "" {
		s.version = s.backendVersion(ctx)
	}
	sxa, err := s.startXA(o)
	if err != nil {
		s.keys.Close()
		s.stopReadWrite()
		cluster.Close()
		return nil, err
	}
	shared := &session.Shared{
		Cluster: cluster, VSchema: vs, DBShards: s.dbShards, Metrics: sm, Log: log,
		QueryTimeout: cfg.QueryTimeout, MaxRows: 1 << 24, Keys: s.keys, Hot: hot,
		Collations: env.CollationEnv(), TxMode: cfg.TxMode, XA: sxa,
	}
	if s.rw != nil {
		shared.RW = s.rw
	}
	if cfg.CreateDatabases {
		s.createDatabases(ctx)
	}
	s.createMonthTables(ctx)
	if err := s.startCache(ctx); err != nil {
		s.stopXA()
		s.keys.Close()
		s.stopReadWrite()
		cluster.Close()
		return nil, err
	}
	s.x = executor.New(ctx, executor.Options{
		Config: cfg, VSchema: vs, Env: env, Planner: o.Planner, Shared: shared, Metrics: xm,
		RW: s.rw, Log: log, Version: s.version, TLS: tlsConf, Cache: s.rc,
	})
	if err := s.listen(); err != nil {
		s.rc.Close()
		s.stopXA()
		s.keys.Close()
		s.stopReadWrite()
		cluster.Close()
		return nil, err
	}
	return s, nil
}

// backendVersion asks the first shard's primary for its version, so that
// clients see the server they are really talking to.
func (s *Server) backendVersion(ctx context.Context) string {
	const fallback = "10.11.0-MariaDB-strata"
	version := ""
	err := s.onPrimary(ctx, s.vs.Shards[0], func(conn *backend.Conn) error {
		res, _, err := conn.Exec(ctx, "SELECT VERSION()", backend.ExecOptions{Timeout: s.cfg.Backend.ConnectTimeout})
		if err == nil && len(res.Rows) > 0 {
			version = res.Rows[0][0].ToString()
		}
		return err
	})
	if err != nil || version == "" {
		s.log.Warn("shardproxy: cannot read the backend version; announcing "+fallback, "err", err)
		return fallback
	}
	return version
}

// createDatabases creates every logical database on the shards that hold
// it. A shard that is down is logged and skipped: the proxy still starts.
func (s *Server) createDatabases(ctx context.Context) {
	for db, shards := range s.dbShards {
		for sh := range shards {
			err := s.onPrimary(ctx, sh, func(conn *backend.Conn) error {
				_, _, err := conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+sqlescape.EscapeID(db), backend.ExecOptions{Timeout: s.cfg.Backend.ConnectTimeout})
				return err
			})
			if err != nil {
				s.log.Warn("shardproxy: cannot create database", "db", db, "shard", sh, "err", err)
			}
		}
	}
}

// onPrimary runs fn on a connection to a shard's primary as the Router
// names it: with read/write splitting the fleet's, which after a
// switchover is not the configured one (that one is a read_only replica
// by then).
func (s *Server) onPrimary(ctx context.Context, shard string, fn func(*backend.Conn) error) error {
	t, err := s.cluster.Route(ctx, shard, false, &backend.RouteHint{})
	if err != nil {
		return err
	}
	conn, err := t.Pool.Get(ctx, nil)
	if err == nil {
		err = fn(conn)
		t.Pool.Put(conn)
	}
	if t.Done != nil {
		t.Done(err)
	}
	return err
}

func (s *Server) listen() error {
	l, err := mysql.NewListenerWithConfig(mysql.ListenerConfig{
		Protocol:            "tcp",
		Address:             s.cfg.Listen,
		AuthServer:          wire.NewAuthServer(s.cfg.Users, s.cfg.AuthPlugin),
		Handler:             s.x.Handler(),
		ConnReadBufferSize:  0, // clientConn buffers the client's bytes
		ConnBufferPooling:   true,
		ConnKeepAlivePeriod: 30 * time.Second,
		FlushDelay:          100 * time.Millisecond,
		MultiQuery:          true,
	})
	if err != nil {
		return fmt.Errorf("shardproxy: listen %s: %w", s.cfg.Listen, err)
	}
	l.ServerVersion = s.version
	if strings.Contains(s.version, "MariaDB") && !strings.HasPrefix(s.version, "5.5.5-") {
		// MariaDB announces itself behind this prefix; clients strip it.
		l.ServerVersion = "5.5.5-" + s.version
	}
	l.PreHandleFunc = s.x.Accept
	s.listener = l
	if s.cfg.AdminListen != "off" {
		aln, err := net.Listen("tcp", s.cfg.AdminListen)
		if err != nil {
			l.Close()
			return fmt.Errorf("shardproxy: admin listen %s: %w", s.cfg.AdminListen, err)
		}
		s.adminLn = aln
		s.admin = &http.Server{Handler: s.adminMux(), ReadHeaderTimeout: 10 * time.Second}
	}
	return nil
}

// Addr is the MySQL listener's address.
func (s *Server) Addr() string { return s.listener.Addr().String() }

// AdminAddr is the admin HTTP address, "" when disabled.
func (s *Server) AdminAddr() string {
	if s.adminLn == nil {
		return ""
	}
	return s.adminLn.Addr().String()
}

// Version is the server version announced to clients.
func (s *Server) Version() string { return s.version }

// VSchema is the sharding schema the proxy routes by.
func (s *Server) VSchema() *vschema.VSchema { return s.vs }

// Stats are the executor's counters (client connections, plan cache, fast
// lane), as the metrics show them.
func (s *Server) Stats() executor.Stats { return s.x.Stats() }

// MaxAllowedPacket is the largest client packet the proxy takes: its
// max_allowed_packet, capped by the shards'.
func (s *Server) MaxAllowedPacket() int { return s.x.MaxAllowedPacket() }

// Executor runs the proxy's client sessions; tests and tools look up a
// session through it.
func (s *Server) Executor() *executor.Executor { return s.x }

// Serve accepts clients until ctx is done, then closes everything.
func (s *Server) Serve(ctx context.Context) error {
	if s.admin != nil {
		go func() {
			if err := s.admin.Serve(s.adminLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("shardproxy: admin server", "err", err)
			}
		}()
	}
	go s.listener.Accept()
	go s.monthTablesLoop(ctx)
	s.log.Info("shardproxy: serving", "mysql", s.Addr(), "admin", s.AdminAddr(), "version", s.version)
	select {
	case <-ctx.Done():
	case <-s.done:
	}
	s.Close()
	return nil
}

// Close stops accepting, closes client connections and the pools. Safe to
// call more than once.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	close(s.done)
	s.mu.Unlock()
	s.listener.Shutdown()
	if s.admin != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = s.admin.Shutdown(ctx)
		cancel()
	}
	// Closing the sockets ends the connections' goroutines, which roll
	// back their transactions in ConnectionClosed.
	s.x.CloseSessions()
	deadline := time.Now().Add(5 * time.Second)
	for s.x.Clients() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	s.stopXA()
	s.stopReadWrite()
	s.keys.Close()
	s.rc.Close()
	s.cluster.Close()
}
