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
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"vitess.io/vitess/go/mysql"
	"vitess.io/vitess/go/sqlescape"
	"vitess.io/vitess/go/vt/sqlparser"
	"vitess.io/vitess/go/vt/vtenv"

	"github.com/strata-db/strata/shardproxy/backend"
	"github.com/strata-db/strata/shardproxy/config"
	"github.com/strata-db/strata/shardproxy/engine"
	"github.com/strata-db/strata/shardproxy/planner"
	"github.com/strata-db/strata/shardproxy/rwsplit"
	"github.com/strata-db/strata/shardproxy/vschema"
)

// Planner builds the plan of one normalized statement (planner.Build).
type Planner func(stmt sqlparser.Statement, vs *vschema.VSchema, db string) (engine.Primitive, error)

// Options are a Server's dependencies.
type Options struct {
	// Config is the validated configuration. Required.
	Config *config.Config
	// Planner builds plans; nil is planner.Build.
	Planner Planner
	// Registry receives the proxy's metrics and is served on /metrics. Nil
	// makes a new one.
	Registry *prometheus.Registry
	// Router picks a shard's server for each statement; nil sends
	// everything to primaries.
	Router backend.Router
	// Logger gets startup, slow query and backend health lines.
	Logger *slog.Logger
}

// Server is the shard proxy: a MySQL listener, its sessions, the backend
// pools, and the admin HTTP server.
type Server struct {
	mysql.UnimplementedHandler

	cfg     *config.Config
	vs      *vschema.VSchema
	env     *vtenv.Environment
	parser  *sqlparser.Parser
	cluster *backend.Cluster
	planner Planner
	plans   *planCache
	metrics *metrics
	reg     *prometheus.Registry
	log     *slog.Logger

	listener *mysql.Listener
	adminLn  net.Listener
	admin    *http.Server

	version  string
	maxRows  int
	dbShards map[string]map[string]bool // database -> shards that hold it

	// rw is the read/write router (readwrite.go), nil when splitting is off;
	// ownRW when the server started it.
	rw    *rwsplit.Router
	ownRW bool

	// keys generates shard keys from the ID service (keygen.go); nil
	// without id_service.
	keys *keyGen

	tlsConf *tls.Config // nil: no TLS offered
	proto   protoServer // start time, client packet limit (protocol.go)

	clients  atomic.Int64
	fastHits atomic.Uint64
	laneHits atomic.Uint64 // statements the fast lane answered (lane.go)
	fast     *shapeCache

	mu       sync.Mutex
	sessions map[uint32]*Session
	closed   bool
	done     chan struct{}
}

// New validates the configuration, creates the backend pools and binds the
// MySQL and admin listeners (so that Addr is known before Serve).
func New(ctx context.Context, o Options) (*Server, error) {
	if o.Config == nil {
		return nil, errors.New("shardproxy: Options.Config: required")
	}
	if o.Planner == nil {
		o.Planner = planner.Build
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
	var specs []backend.ShardSpec
	for _, s := range cfg.Shards {
		specs = append(specs, backend.ShardSpec{Name: s.Name, Primary: s.Primary, Replicas: s.Replicas})
	}
	bo := backend.Options{
		User: cfg.Backend.User, Password: cfg.Backend.Password,
		MaxOpen: cfg.Backend.MaxOpen, MaxIdle: cfg.Backend.MaxIdle,
		IdleTimeout: cfg.Backend.IdleTimeout, ConnectTimeout: cfg.Backend.ConnectTimeout,
		WaitTimeout: cfg.Backend.WaitTimeout, HealthCheckInterval: cfg.Backend.HealthCheckInterval,
		Logger: log,
	}
	cluster, err := backend.NewCluster(specs, bo)
	if err != nil {
		return nil, fmt.Errorf("shardproxy: %w", err)
	}
	if o.Router != nil {
		if _, isRW := o.Router.(*rwsplit.Router); !isRW {
			cluster.SetRouter(o.Router)
		}
	}
	s := &Server{
		cfg: cfg, vs: vs, env: env, parser: env.Parser(), cluster: cluster,
		planner: o.Planner, plans: newPlanCache(cfg.PlanCacheSize), reg: reg, log: log,
		maxRows:  1 << 24,
		dbShards: map[string]map[string]bool{},
		sessions: map[uint32]*Session{},
		done:     make(chan struct{}),
		fast:     newShapeCache(cfg.PlanCacheSize),
	}
	for name, d := range vs.Databases {
		set := map[string]bool{}
		if d.Sharded {
			for _, sh := range vs.Shards {
				set[sh] = true
			}
		} else {
			set[d.Shard] = true
		}
		s.dbShards[name] = set
	}
	if s.metrics, err = newMetrics(reg, s); err != nil {
		cluster.Close()
		return nil, fmt.Errorf("shardproxy: metrics: %w", err)
	}
	if err := s.startReadWrite(ctx, o); err != nil {
		cluster.Close()
		return nil, err
	}
	if s.keys, err = newKeyGen(cfg, reg); err != nil {
		s.stopReadWrite()
		cluster.Close()
		return nil, err
	}
	s.version = cfg.ServerVersion
	if s.version == "" {
		s.version = s.backendVersion(ctx)
	}
	s.proto = s.protocolLimits(ctx)
	if cfg.CreateDatabases {
		s.createDatabases(ctx)
	}
	if err := s.listen(); err != nil {
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
		res, _, err := conn.Exec("SELECT VERSION()", "", nil, "", 0, s.cfg.Backend.ConnectTimeout)
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
				_, _, err := conn.Exec("CREATE DATABASE IF NOT EXISTS "+sqlescape.EscapeID(db), "", nil, "", 0, s.cfg.Backend.ConnectTimeout)
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
		AuthServer:          newAuthServer(s.cfg.Users, s.cfg.AuthPlugin),
		Handler:             s,
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
	if s.cfg.TLS.Cert != "" {
		// TLS is terminated by clientConn, below the listener.
		cert, err := tls.LoadX509KeyPair(s.cfg.TLS.Cert, s.cfg.TLS.Key)
		if err != nil {
			l.Close()
			return fmt.Errorf("shardproxy: tls: %w", err)
		}
		s.tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	l.PreHandleFunc = s.preHandle
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
	sessions := make([]*Session, 0, len(s.sessions))
	for _, ss := range s.sessions {
		sessions = append(sessions, ss)
	}
	s.mu.Unlock()
	s.listener.Shutdown()
	if s.admin != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = s.admin.Shutdown(ctx)
		cancel()
	}
	for _, ss := range sessions {
		// Closing the socket ends the connection's goroutine, which rolls
		// back its transaction in ConnectionClosed.
		ss.Conn.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.clients.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	s.stopReadWrite()
	s.keys.Close()
	s.cluster.Close()
}

// preHandle runs on each accepted connection before the handshake: it
// refuses connections over max_client_connections with MySQL's 1040, as a
// server does, and wraps the rest in a clientConn (TLS, packet limits,
// COM_FIELD_LIST).
func (s *Server) preHandle(_ context.Context, c net.Conn, id uint32) (net.Conn, error) {
	if n := s.clients.Add(1); n > int64(s.cfg.MaxClientConnections) {
		s.clients.Add(-1)
		writeRawError(c, 1040, "08004", "Too many connections")
		c.Close()
		return nil, errors.New("too many connections")
	}
	return newClientConn(c, s, id), nil
}

// writeRawError writes an ERR packet with sequence 0 to a connection
// that has not had a handshake.
func writeRawError(c net.Conn, code uint16, state, msg string) {
	payload := []byte{0xff, byte(code), byte(code >> 8), '#'}
	payload = append(payload, state...)
	payload = append(payload, msg...)
	pkt := []byte{byte(len(payload)), byte(len(payload) >> 8), byte(len(payload) >> 16), 0}
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = c.Write(append(pkt, payload...))
}

func (s *Server) session(c *mysql.Conn) *Session {
	ss, _ := c.ClientData.(*Session)
	return ss
}

func (s *Server) sessionByID(id uint32) *Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[id]
}
