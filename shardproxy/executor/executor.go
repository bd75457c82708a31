package executor

import (
	"context"
	"crypto/tls"
	"log/slog"
	"sync"
	"sync/atomic"

	"vitess.io/vitess/go/mysql"
	"vitess.io/vitess/go/vt/sqlparser"
	"vitess.io/vitess/go/vt/vtenv"

	"github.com/strata-db/strata/shardproxy/backend"
	"github.com/strata-db/strata/shardproxy/config"
	"github.com/strata-db/strata/shardproxy/engine"
	"github.com/strata-db/strata/shardproxy/rowcache"
	"github.com/strata-db/strata/shardproxy/rwsplit"
	"github.com/strata-db/strata/shardproxy/session"
	"github.com/strata-db/strata/shardproxy/vschema"
	"github.com/strata-db/strata/shardproxy/wire"
)

// Planner plans one normalized statement, returning the plan with its
// facts (planner.Plan).
type Planner func(stmt sqlparser.Statement, vs *vschema.VSchema, db string) (*engine.Plan, error)

// Options are an Executor's dependencies; the server builds them.
type Options struct {
	Config  *config.Config
	VSchema *vschema.VSchema
	Env     *vtenv.Environment
	Planner Planner
	Shared  *session.Shared
	Metrics *Metrics
	// RW is the read/write router, nil when splitting is off.
	RW      *rwsplit.Router
	Log     *slog.Logger
	Version string
	// TLS is offered to clients when not nil.
	TLS *tls.Config
	// Cache is the hot-row cache, nil when no table is cached (rowcache.go).
	Cache *rowcache.Manager
}

// Executor runs the statements of every client session of a proxy: it is
// the vitess listener's mysql.Handler (Handler), wraps each accepted
// connection (Accept), and keeps what sessions share: the plan and shape
// caches and the list of sessions.
type Executor struct {
	deep    *deepStacks // parses (deep.go)
	cfg     *config.Config
	vs      *vschema.VSchema
	env     *vtenv.Environment
	parser  *sqlparser.Parser
	cluster *backend.Cluster
	planner Planner
	plans   *planCache
	metrics *Metrics
	log     *slog.Logger
	shared  *session.Shared

	version  string
	maxRows  int
	dbShards map[string]map[string]bool // database -> shards that hold it

	// rw is the read/write router, nil when splitting is off.
	rw *rwsplit.Router
	// rc is the hot-row cache, nil when no table is cached.
	rc *rowcache.Manager

	wireCfg *wire.Config // every client connection's
	proto   protoServer  // start time, client packet limit (protocol.go)

	clients  atomic.Int64 // logged-in clients
	gate     *loginGate   // connections still in their login
	fastHits atomic.Uint64
	laneHits atomic.Uint64 // statements the fast lane answered (lane.go)
	fast     *shapeCache

	mu       sync.Mutex
	sessions map[uint32]*Session
}

// New makes an Executor. It asks the shards' primaries for their
// max_allowed_packet (protocolLimits).
func New(ctx context.Context, o Options) *Executor {
	x := &Executor{
		cfg: o.Config, vs: o.VSchema, env: o.Env, parser: o.Env.Parser(),
		cluster: o.Shared.Cluster, planner: o.Planner,
		plans: newPlanCache(o.Config.PlanCacheSize), metrics: o.Metrics, log: o.Log, shared: o.Shared,
		version: o.Version, maxRows: o.Shared.MaxRows, dbShards: o.Shared.DBShards,
		rw: o.RW, rc: o.Cache,
		wireCfg: &wire.Config{
			TLS: o.TLS, RequireTLS: o.Config.TLS.Require,
			Users: o.Config.Users, AuthPlugin: o.Config.AuthPlugin, Log: o.Log,
		},
		fast:     newShapeCache(o.Config.PlanCacheSize),
		sessions: map[uint32]*Session{},
		deep:     newDeepStacks(),
		gate:     newLoginGate(orDefault(o.Config.MaxUnauthenticated, 4096), orDefault(o.Config.MaxUnauthenticatedPerHost, 256)),
	}
	x.proto = x.protocolLimits(ctx)
	return x
}

// Handler is the mysql.Handler to give the listener.
func (x *Executor) Handler() mysql.Handler { return &handler{Executor: x} }

// Stats are the executor's counters, for metrics.
type Stats struct {
	Clients                            int64
	PlanHits, PlanMisses, FastLaneHits uint64
	PlanEntries                        int
}

// Stats reads the executor's counters.
func (x *Executor) Stats() Stats {
	return Stats{
		Clients:      x.clients.Load(),
		PlanHits:     x.plans.hits.Load() + x.fastHits.Load(),
		PlanMisses:   x.plans.misses.Load(),
		FastLaneHits: x.laneHits.Load(),
		PlanEntries:  x.plans.len(),
	}
}

// Clients is the number of client connections open.
func (x *Executor) Clients() int64 { return x.clients.Load() }

// CloseSessions closes every client connection; each connection's
// goroutine then rolls back its transaction in ConnectionClosed. The
// parser's idle workers end too (a statement still parsed after it gets a
// worker of its own).
func (x *Executor) CloseSessions() {
	x.deep.stop()
	x.mu.Lock()
	sessions := make([]*Session, 0, len(x.sessions))
	for _, ss := range x.sessions {
		sessions = append(sessions, ss)
	}
	x.mu.Unlock()
	for _, ss := range sessions {
		ss.Conn.Close()
	}
}

// Session is a client session as the executor runs it: the session's
// state and backend connections (package session) and what the executor
// keeps per connection.
type Session struct {
	session.Session // by value: one allocation per connection
	srv             *Executor

	prepared map[uint32]*prepared
	// fast path state: see fastpath.go.
	fp fastState
	// lane is the fast lane's cursor (lane.go), reused by every statement;
	// laneScratch the memory it lends the engine (laneCursor.Scratch).
	lane        laneCursor
	laneScratch engine.Scratch
	pipeTurn    *backend.PipeTurn
	// cursors are the open cursors of prepared statements, by the
	// client's statement id (relay.go).
	cursors map[uint32]*cursor

	// vc, when set, replaces the session as the plans' VCursor: tests run
	// the whole statement path in process without backends.
	vc engine.VCursor
	// pendingInv is what the open transaction's writes invalidate in the
	// row cache at its end (rowcache.go).
	pendingInv rowcache.Invalidation

	// counted: the client logged in and holds one of max_client_connections.
	counted bool
	// laterStmt: the statement running is not the first of its COM_QUERY
	// (a LOAD DATA LOCAL must be: loaddata.go).
	laterStmt bool
	// endWarnings: a result set of a multi-statement COM_QUERY still to be
	// ended (the listener writes its last EOF when the next statement's
	// answer comes), with its warning count, which the next WarningCount
	// answers (endPending) instead of the next statement's.
	endWarnings uint16
	endPending  bool
}

func newSession(x *Executor, c *mysql.Conn) *Session {
	s := &Session{srv: x}
	s.Session.Init(x.shared, c)
	return s
}

// reset starts the session over for COM_RESET_CONNECTION (session.Reset),
// its prepared statements dropped too.
func (s *Session) reset() {
	s.closeCursors()
	s.Session.Reset()
	s.prepared = nil
}

var (
	_ wire.Session = (*Session)(nil)
	_ wire.Server  = (*Executor)(nil)
)

// Close ends the session (session.Session.Close), its cursors closed
// first.
func (s *Session) Close() {
	s.closeCursors()
	s.Session.Close()
}

// MySQL implements wire.Session.
func (s *Session) MySQL() *mysql.Conn { return s.Conn }

// LaneTyped implements wire.Session: the fast lane saw prepared statement
// id's parameter types bound.
func (s *Session) LaneTyped(id uint32) bool {
	p := s.prepared[id]
	return p != nil && p.rawTypes != nil
}

// ChangedUser implements wire.Session: after COM_CHANGE_USER the session
// starts over as after COM_RESET_CONNECTION, as the connection's new user,
// in database db ("" for none, as on MariaDB).
func (s *Session) ChangedUser(db string) error {
	c := s.Conn
	s.SetUser(c.User)
	s.HandshakeNames = s.srv.handshakeNames(c)
	s.reset()
	var err error
	if db != "" {
		err = s.use(db)
	} else {
		s.DB = ""
	}
	c.StatusFlags = s.StatusFlags()
	return err
}
