package bench

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/strata-db/strata/localdb"
)

// stack is what a benchmark started, stopped in reverse order.
type stack struct{ stops []func() }

func (s *stack) add(f func()) { s.stops = append(s.stops, f) }

func (s *stack) stop() {
	for i := len(s.stops) - 1; i >= 0; i-- {
		s.stops[i]()
	}
}

// topology starts a localdb topology in the scratch directory.
func (s *stack) topology(ctx context.Context, e *Env, shards, replicas int) (*localdb.Topology, error) {
	cfg := localdb.DefaultConfig()
	cfg.Root, cfg.Shards, cfg.Replicas, cfg.Logger = filepath.Join(e.Dir, "mariadb"), shards, replicas, e.Logger
	topo, err := localdb.Start(ctx, cfg)
	if err != nil {
		return nil, err
	}
	s.add(func() { _ = topo.Stop() })
	return topo, nil
}

// shardsYAML is the proxy's shards: section for topo (primaries only).
func shardsYAML(topo *localdb.Topology) string {
	b := "shards:\n"
	for _, sh := range topo.Shards() {
		b += fmt.Sprintf("  - {name: %s, primary: %q}\n", sh.Name, sh.Primary().Addr())
	}
	return b
}

// proxy starts `strata proxy` with the config body given (everything but
// listen, admin_listen, users and backend) and waits until it answers a
// query; it returns the address clients dial. env is added to the
// proxy's environment.
func (s *stack) proxy(ctx context.Context, e *Env, name, body string, env ...string) (string, *proc, error) {
	listen, err := freeAddr()
	if err != nil {
		return "", nil, err
	}
	// Unless the body chooses, the admin port (metrics, pprof) on a free
	// address, written beside the log as NAME.admin, for a look at a
	// proxy while it is measured.
	admin := ""
	if !strings.Contains(body, "admin_listen:") {
		addr, err := freeAddr()
		if err != nil {
			return "", nil, err
		}
		admin = "admin_listen: " + addr + "\n"
		if err := os.WriteFile(filepath.Join(e.Dir, name+".admin"), []byte(addr+"\n"), 0o644); err != nil {
			return "", nil, err
		}
	}
	yml := fmt.Sprintf("listen: %s\n%sslow_query_threshold: 0s\nusers: [{name: root, password: \"\"}]\nbackend: {user: %s, password: \"\"}\n%s", listen, admin, localdb.AppUser, body)
	conf := filepath.Join(e.Dir, name+".yaml")
	if err := os.WriteFile(conf, []byte(yml), 0o644); err != nil {
		return "", nil, err
	}
	// The params' settings first: the caller's env, later, wins.
	var penv []string
	if procs := param(e, "proxy_procs", 0); procs > 0 {
		penv = append(penv, "GOMAXPROCS="+strconv.Itoa(procs))
	}
	if lim := e.Params["proxy_gomemlimit"]; lim != "" {
		penv = append(penv, "GOMEMLIMIT="+lim)
	}
	env = append(penv, env...)
	p, err := startProc(e.Dir, name, env, e.Binary, "proxy", "--log-level", "warn", "--config", conf)
	if err != nil {
		return "", nil, err
	}
	s.add(p.stop)
	db, err := openDB(listen, "root", "")
	if err != nil {
		return "", nil, err
	}
	defer db.Close()
	var last error
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline) && ctx.Err() == nil; time.Sleep(100 * time.Millisecond) {
		c, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, last = db.ExecContext(c, "SELECT 1")
		cancel()
		if last == nil {
			return listen, p, nil
		}
	}
	b, _ := os.ReadFile(filepath.Join(e.Dir, name+".log"))
	return "", nil, fmt.Errorf("strata proxy (%s) does not answer: %v; log: %s", name, last, lastLines(string(b), 3))
}

// openDB opens a client pool to a MySQL-protocol address, parameters
// interpolated by the client (one COM_QUERY per statement, as most ORMs
// send them).
func openDB(addr, user, db string) (*sql.DB, error) {
	c := mysql.NewConfig()
	c.User, c.Net, c.Addr, c.DBName = user, "tcp", addr, db
	c.InterpolateParams = true
	c.Timeout, c.ReadTimeout, c.WriteTimeout = 5*time.Second, 30*time.Second, 30*time.Second
	conn, err := mysql.NewConnector(c)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(conn), nil
}

// perOp is load with a unit: each call is one operation.
func perOp(ctx context.Context, conc int, d time.Duration, unit string, call func(ctx context.Context) error) Round {
	r := load(ctx, conc, d, func(ctx context.Context) (uint64, error) { return 1, call(ctx) })
	r.Unit = unit
	return r
}
