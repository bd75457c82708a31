package edge

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Options are a Server's dependencies.
type Options struct {
	// IDs is the ID service (an *idserver/client.Client); nil makes one
	// from Config.IDServer.Addrs.
	IDs IDSource
	// Rows reads rows and runs admin statements through the shard proxy;
	// nil makes one (go-sql-driver) from Config.Proxy.
	Rows RowSource
	// Logger gets the edge's own log; AccessLog one line per request (nil:
	// no access log).
	Logger    *slog.Logger
	AccessLog *slog.Logger
	// Registerer and Gatherer default to a fresh registry.
	Registerer prometheus.Registerer
	Gatherer   prometheus.Gatherer
	// Now is the clock (tests); nil is time.Now.
	Now func() time.Time
}

// Server is the edge.
type Server struct {
	cfg      Config
	log      *slog.Logger
	access   *slog.Logger
	now      func() time.Time
	m        *metrics
	metricsH http.Handler
	keys     *keyring
	verify   *verifier
	buckets  *buckets // local buckets; the fleet's when this edge is the quota server
	limit    limiter
	gray     grayRules
	ids      IDSource
	rows     RowSource
	idsG     *guard
	proxyG   *guard
	healthHC *http.Client // the proxy's /healthz, for the console
	panelMu  sync.RWMutex
	panels   map[string]Panel
	closers  []func() error
	tags     tagCounter

	reqPrefix string
	reqSeq    atomic.Uint64

	ln     net.Listener
	http   *http.Server
	connMu sync.Mutex
	fresh  map[net.Conn]struct{} // connections that have not sent a request yet
	done   chan struct{}
	stop   context.CancelFunc
	bg     context.Context
}

// New builds an edge from a validated config; Start or Handler serve it.
func New(cfg Config, o Options) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Registerer == nil {
		reg := prometheus.NewRegistry()
		o.Registerer, o.Gatherer = reg, reg
	}
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, fmt.Errorf("edge: metrics: %w", err)
	}
	s := &Server{cfg: cfg, log: o.Logger, access: o.AccessLog, now: o.Now, m: m, done: make(chan struct{}),
		healthHC: &http.Client{Timeout: 2 * time.Second}}
	s.bg, s.stop = context.WithCancel(context.Background())
	var rb [6]byte
	rand.Read(rb[:])
	s.reqPrefix = hex.EncodeToString(rb[:]) + "-"
	if o.Gatherer != nil {
		s.metricsH = promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{})
	} else {
		s.metricsH = http.NotFoundHandler()
	}
	if s.keys, err = newKeyring(cfg.Apps, cfg.StateFile); err != nil {
		return nil, err
	}
	s.verify = &verifier{keys: s.keys, window: cfg.Window, nonces: newNonceStore(cfg.Window), now: o.Now}
	s.buckets = newBuckets(o.Now)
	s.limit = s.buckets
	if cfg.Limits.Fleet.LeaseFrom != "" {
		s.limit = newFleetLimiter(cfg.Limits.Fleet, o.Now)
	}
	for _, g := range cfg.Gray {
		r, err := newGrayRule(g)
		if err != nil {
			return nil, err
		}
		s.gray = append(s.gray, r)
	}
	s.ids = o.IDs
	if s.ids == nil && len(cfg.IDServer.Addrs) > 0 {
		c, err := newIDClient(cfg.IDServer)
		if err != nil {
			return nil, err
		}
		s.ids = c
		s.closers = append(s.closers, c.Close)
	}
	s.rows = o.Rows
	if s.rows == nil && cfg.Proxy.Addr != "" {
		p, err := newProxyRows(cfg.Proxy)
		if err != nil {
			return nil, err
		}
		s.rows = p
		s.closers = append(s.closers, p.Close)
	}
	s.idsG = newGuard("idserver", cfg.IDServer.Backend, cfg.Breaker, m)
	s.proxyG = newGuard("proxy", cfg.Proxy.Backend, cfg.Breaker, m)
	s.panels = map[string]Panel{}
	for name := range panels {
		s.panels[name] = unavailable("no source configured for " + name)
	}
	for name, u := range cfg.Console.Sources {
		s.panels[name] = sourcePanel(u)
	}
	go s.sweep()
	return s, nil
}

// SetPanel wires a console panel (hot_keys, cache, transactions, seata,
// drills) to a source, at any time; components that run in the same
// process use it instead of a URL in the config (console.sources).
func (s *Server) SetPanel(name string, p Panel) {
	s.panelMu.Lock()
	defer s.panelMu.Unlock()
	s.panels[name] = p
}

// sweep drops idle local buckets now and then.
func (s *Server) sweep() {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-s.bg.Done():
			return
		case <-t.C:
			s.buckets.sweep()
			if fl, ok := s.limit.(*fleetLimiter); ok {
				fl.sweep()
			}
		}
	}
}

// Start listens on Config.Listen and serves until Close.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("edge: listen: %w", err)
	}
	s.ln = ln
	s.fresh = map[net.Conn]struct{}{}
	s.http = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ConnState: func(c net.Conn, st http.ConnState) {
			s.connMu.Lock()
			defer s.connMu.Unlock()
			if st == http.StateNew {
				s.fresh[c] = struct{}{}
			} else {
				delete(s.fresh, c)
			}
		}}
	go func() {
		defer close(s.done)
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("edge: serve", "err", err)
		}
	}()
	s.log.Info("edge: listening", "addr", ln.Addr().String())
	return nil
}

// Addr is the address Start listens on.
func (s *Server) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// URL is http://Addr.
func (s *Server) URL() string { return "http://" + s.Addr() }

// Close stops serving (letting requests in flight finish for up to 10 s)
// and closes the backends' clients. Idempotent.
func (s *Server) Close() error {
	if s == nil {
		return nil
	}
	s.stop()
	var errs []error
	if s.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		shut := make(chan error, 1)
		go func() { shut <- s.http.Shutdown(ctx) }()
		// Shutdown waits up to 5 s for connections that never sent a
		// request (a client's spare dials): nothing is in flight on them.
		time.Sleep(10 * time.Millisecond)
		s.connMu.Lock()
		for c := range s.fresh {
			c.Close()
		}
		s.connMu.Unlock()
		errs = append(errs, <-shut)
		cancel()
		<-s.done
		s.http = nil
	}
	for _, c := range s.closers {
		errs = append(errs, c())
	}
	s.closers = nil
	return errors.Join(errs...)
}

// route is what a path resolves to.
type route struct {
	name   string // ids, rows, admin, fleet, console, public
	auth   bool   // needs a signature
	admin  bool   // needs an admin key
	limits bool
	serve  func(s *Server, w http.ResponseWriter, r *http.Request, c *reqCtx)
}

// stableHeader is the X-Strata-Variant value of stable answers (shared,
// never appended to).
var stableHeader = []string{variantStable}

// reqCtx is one request as it passes through.
type reqCtx struct {
	id      string
	app     string
	admin   bool
	ip      string
	body    []byte
	variant string
	rest    string // the path after the route's prefix
}

// newReqID is a random per-server prefix and a counter: unique across
// restarts and edges, with no crypto/rand call per request.
func (s *Server) newReqID() string { return s.reqPrefix + strconv.FormatUint(s.reqSeq.Add(1), 36) }

// statusWriter records the status and size of an answer.
type statusWriter struct {
	http.ResponseWriter
	code  int
	bytes int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += n
	return n, err
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// maxBody bounds a request body.
const maxBody = 1 << 20

func (s *Server) resolve(path string) (route, string, bool) {
	switch {
	case strings.HasPrefix(path, "/v1/ids/"):
		return route{name: "ids", auth: true, limits: true, serve: (*Server).serveIDs}, path[len("/v1/ids/"):], true
	case strings.HasPrefix(path, "/v1/rows/"):
		return route{name: "rows", auth: true, limits: true, serve: (*Server).serveRows}, path[len("/v1/rows/"):], true
	case strings.HasPrefix(path, "/v1/admin/"):
		return route{name: "admin", auth: true, admin: true, limits: true, serve: (*Server).serveAdmin}, path[len("/v1/admin/"):], true
	case path == "/v1/fleet/lease":
		return route{name: "fleet", auth: true, admin: true, serve: func(s *Server, w http.ResponseWriter, r *http.Request, c *reqCtx) {
			if r.Method != http.MethodPost {
				methodNotAllowed(w, http.MethodPost)
				return
			}
			s.serveLease(w, r, c.body)
		}}, "", true
	case strings.HasPrefix(path, "/console/api/"):
		return route{name: "console", auth: true, admin: true, serve: (*Server).serveConsoleAPI}, path[len("/console/api/"):], true
	case path == "/console" || strings.HasPrefix(path, "/console/"):
		return route{name: "console", serve: (*Server).serveConsolePage}, strings.TrimPrefix(path, "/console"), true
	case path == "/healthz":
		return route{name: "public", serve: (*Server).serveHealthz}, "", true
	case path == "/metrics":
		return route{name: "public", serve: func(s *Server, w http.ResponseWriter, r *http.Request, _ *reqCtx) { s.metricsH.ServeHTTP(w, r) }}, "", true
	case path == "/openapi.json":
		return route{name: "public", serve: serveOpenAPI}, "", true
	case path == "/":
		return route{name: "public", serve: func(_ *Server, w http.ResponseWriter, r *http.Request, _ *reqCtx) {
			http.Redirect(w, r, "/console/", http.StatusFound)
		}}, "", true
	}
	return route{}, "", false
}

// ServeHTTP authenticates, limits, routes (stable or canary) and logs.
func (s *Server) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	start := s.now()
	c := &reqCtx{id: r.Header.Get("X-Request-Id"), app: "-", variant: variantStable}
	if c.id == "" || len(c.id) > 64 || strings.ContainsAny(c.id, "\r\n\"") {
		c.id = s.newReqID()
	}
	w := &statusWriter{ResponseWriter: rw}
	w.Header()["X-Request-Id"] = []string{c.id} // canonical already: no Set
	c.ip = clientIP(r, s.cfg.TrustForwardedFor)
	rt, rest, ok := s.resolve(r.URL.Path)
	if !ok {
		rt.name = "unknown"
		writeError(w, http.StatusNotFound, "not_found", "no route "+r.URL.Path)
	} else {
		c.rest = rest
		s.handle(w, r, rt, c)
	}
	if w.code == 0 {
		w.code = http.StatusOK
	}
	d := s.now().Sub(start)
	s.m.requests.WithLabelValues(rt.name, c.app, strconv.Itoa(w.code), c.variant).Inc()
	s.m.latency.WithLabelValues(rt.name, c.variant).Observe(d.Seconds())
	if s.access != nil {
		s.access.LogAttrs(r.Context(), slog.LevelInfo, "access",
			slog.String("id", c.id), slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.String("route", rt.name), slog.String("app", c.app), slog.String("ip", c.ip),
			slog.Int("status", w.code), slog.Int("bytes", w.bytes), slog.String("variant", c.variant),
			slog.Duration("dur", d))
	}
}

func (s *Server) handle(w http.ResponseWriter, r *http.Request, rt route, c *reqCtx) {
	if rt.auth {
		if r.Body != nil && r.Body != http.NoBody {
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
			if err != nil {
				writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("body over %d bytes", maxBody))
				return
			}
			c.body = body
		}
		if rt.name == "console" && s.consoleLocal(r) {
			c.app, c.admin = "-", true
		} else {
			k, ae := s.verify.verify(r, c.body)
			if ae != nil {
				s.m.authFail.WithLabelValues(ae.reason).Inc()
				writeError(w, ae.status, ae.reason, "request refused: "+ae.reason)
				return
			}
			c.app, c.admin = k.name, k.admin
			if rt.limits && !s.allow(w, r, rt.name, c, k) {
				return
			}
		}
		if rt.admin && !c.admin {
			writeError(w, http.StatusForbidden, ReasonNotAdmin, "this route needs an admin key")
			return
		}
	}
	if g := s.gray.find(rt.name, c.app); g != nil && c.app != "-" && g.canary(c.app, c.ip, r) {
		c.variant = variantCanary
		w.Header().Set("X-Strata-Variant", variantCanary)
		r.Header.Set("X-Strata-App", c.app)
		r.Header.Set("X-Request-Id", c.id)
		g.proxy.ServeHTTP(w, r)
		return
	}
	if rt.limits {
		w.Header()["X-Strata-Variant"] = stableHeader
	}
	rt.serve(s, w, r, c)
}

// rules are the app and IP buckets that apply to a route and key.
func (s *Server) rules(routeName string, k *key) (app, ip Rule) {
	app, ip = s.cfg.Limits.App, s.cfg.Limits.IP
	if rl, ok := s.cfg.Limits.Routes[routeName]; ok {
		if rl.App.set() {
			app = rl.App
		}
		if rl.IP.set() {
			ip = rl.IP
		}
	}
	if k.limit.set() {
		app = k.limit
	}
	return app, ip
}

// allow spends a token of the app's and of the IP's bucket, or answers 429.
func (s *Server) allow(w http.ResponseWriter, r *http.Request, routeName string, c *reqCtx, k *key) bool {
	app, ip := s.rules(routeName, k)
	if app.set() {
		if ok, wait := s.limit.take(r.Context(), "app/"+routeName+"/"+c.app, app); !ok {
			s.refuse(w, routeName, "app", wait)
			return false
		}
	}
	if ip.set() {
		if ok, wait := s.limit.take(r.Context(), "ip/"+routeName+"/"+c.ip, ip); !ok {
			s.refuse(w, routeName, "ip", wait)
			return false
		}
	}
	return true
}

func (s *Server) refuse(w http.ResponseWriter, routeName, scope string, wait time.Duration) {
	s.m.limited.WithLabelValues(routeName, scope).Inc()
	w.Header().Set("Retry-After", retryAfter(wait))
	writeError(w, http.StatusTooManyRequests, "rate_limited", "rate limit of the "+scope+" bucket reached")
}

// retryAfter is Retry-After's whole seconds, at least 1.
func retryAfter(d time.Duration) string {
	return strconv.Itoa(max(1, int(math.Ceil(d.Seconds()))))
}

// consoleLocal says whether the console's local-only mode admits r: it is
// on and r comes from a loopback address, not through a proxy. A loopback
// peer is not enough: a browser on this machine also connects from
// loopback when a web page elsewhere makes it send a request (a form
// POSTing to the switchover, or a DNS name rebound to 127.0.0.1), so the
// Host must name loopback and an Origin, when sent, must be that host.
func (s *Server) consoleLocal(r *http.Request) bool {
	if !s.cfg.Console.Local {
		return false
	}
	for _, h := range []string{"X-Forwarded-For", "Forwarded", "X-Real-Ip"} {
		if r.Header.Get(h) != "" {
			return false
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return false
	}
	if !loopbackHost(r.Host) {
		return false
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host || (u.Scheme != "http" && u.Scheme != "https") {
			return false
		}
	}
	return true
}

// loopbackHost says whether a Host header (host or host:port) names this
// machine: localhost or a loopback IP.
func loopbackHost(h string) bool {
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	} else {
		h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	}
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func (s *Server) serveHealthz(w http.ResponseWriter, _ *http.Request, _ *reqCtx) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "ok\nidserver breaker %s\nproxy breaker %s\n", s.idsG.state(), s.proxyG.state())
}

// errorBody is every error's JSON.
type errorBody struct {
	Error  string `json:"error"`
	Reason string `json:"reason"`
}

// writeError answers with status, the reason code in X-Strata-Reason and
// {"error", "reason"}.
func writeError(w http.ResponseWriter, status int, reason, msg string) {
	w.Header().Set("X-Strata-Reason", reason)
	writeJSON(w, status, errorBody{Error: msg, Reason: reason})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"encoding the answer failed","reason":"internal"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func methodNotAllowed(w http.ResponseWriter, allowed string) {
	w.Header().Set("Allow", allowed)
	writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use "+allowed)
}

//go:embed openapi.json
var openAPI []byte

func serveOpenAPI(_ *Server, w http.ResponseWriter, _ *http.Request, _ *reqCtx) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(openAPI)
}
