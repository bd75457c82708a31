package localdb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// Topology is a running set of shards. Its methods are safe for concurrent
// use.
type Topology struct {
	cfg Config
	log *slog.Logger

	mu     sync.Mutex
	shards []*Shard
}

// Shard is a primary and its replicas. Which server is the primary changes
// on Promote, so read it through the methods.
type Shard struct {
	Name    string
	mu      sync.Mutex
	servers []*Server // all servers of the shard, in creation order
}

// Primary returns the shard's current primary.
func (sh *Shard) Primary() *Server {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for _, s := range sh.servers {
		if s.Role() == RolePrimary {
			return s
		}
	}
	return nil
}

// Replicas returns the shard's current replicas.
func (sh *Shard) Replicas() []*Server {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	var out []*Server
	for _, s := range sh.servers {
		if s.Role() == RoleReplica {
			out = append(out, s)
		}
	}
	return out
}

// Servers returns every server of the shard, primary or not.
func (sh *Shard) Servers() []*Server {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return append([]*Server(nil), sh.servers...)
}

// record is what topology.json holds: enough to start the same servers again.
type record struct {
	Shards []recordShard `json:"shards"`
}

type recordShard struct {
	Name    string         `json:"name"`
	Servers []recordServer `json:"servers"`
}

type recordServer struct {
	Name     string `json:"name"`
	Port     int    `json:"port"`
	ServerID int    `json:"server_id"`
	Role     Role   `json:"role"`
}

// Start brings up the topology under cfg.Root: it installs data directories
// that do not exist, starts every server, and points every replica at its
// shard's primary. On a root that holds an earlier topology it reuses it
// (its data, its roles and, when BasePort is zero, its ports where they are
// still free). On error every server it started is stopped again.
func Start(ctx context.Context, cfg Config) (*Topology, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Mariadbd == "" || cfg.InstallDB == "" {
		d, i, err := FindBinaries()
		if err != nil {
			return nil, err
		}
		if cfg.Mariadbd == "" {
			cfg.Mariadbd = d
		}
		if cfg.InstallDB == "" {
			cfg.InstallDB = i
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	root, err := filepath.Abs(cfg.Root)
	if err != nil {
		return nil, fmt.Errorf("localdb: root: %w", err)
	}
	cfg.Root = root
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("localdb: root: %w", err)
	}
	t := &Topology{cfg: cfg, log: cfg.Logger}
	rec, err := t.plan()
	if err != nil {
		return nil, err
	}
	t.build(rec)
	if err := t.saveRecord(); err != nil {
		return nil, err
	}
	if err := t.startAll(ctx); err != nil {
		_ = t.Stop()
		return nil, err
	}
	// A server may have moved to another port (errPortTaken).
	if err := t.saveRecord(); err != nil {
		_ = t.Stop()
		return nil, err
	}
	return t, nil
}

// plan reads an earlier record or makes a new one, and settles ports.
func (t *Topology) plan() (record, error) {
	var rec record
	b, err := os.ReadFile(t.recordPath())
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &rec); err != nil {
			return rec, fmt.Errorf("localdb: %s: %w", t.recordPath(), err)
		}
		if len(rec.Shards) != t.cfg.Shards || len(rec.Shards[0].Servers) != 1+t.cfg.Replicas {
			return rec, fmt.Errorf("localdb: %s holds %d shards of %d servers, config asks for %d of %d: use another data directory",
				t.recordPath(), len(rec.Shards), len(rec.Shards[0].Servers), t.cfg.Shards, 1+t.cfg.Replicas)
		}
		t.adoptPromotions(&rec)
	case errors.Is(err, os.ErrNotExist):
		id := 1
		for i := 0; i < t.cfg.Shards; i++ {
			sh := recordShard{Name: "s" + strconv.Itoa(i)}
			for j := 0; j <= t.cfg.Replicas; j++ {
				role := RoleReplica
				if j == 0 {
					role = RolePrimary
				}
				sh.Servers = append(sh.Servers, recordServer{Name: fmt.Sprintf("%s-%d", sh.Name, j), ServerID: id, Role: role})
				id++
			}
			rec.Shards = append(rec.Shards, sh)
		}
	default:
		return rec, fmt.Errorf("localdb: %w", err)
	}
	n := 0
	// The kernel may hand out a port again once its probe listener is
	// closed, so two servers of one topology could draw the same one.
	used := make(map[int]bool)
	for i := range rec.Shards {
		for j := range rec.Shards[i].Servers {
			s := &rec.Shards[i].Servers[j]
			switch {
			case t.cfg.BasePort != 0:
				s.Port = t.cfg.BasePort + n
			case s.Port == 0 || used[s.Port] || !portFree(s.Port):
				p, err := freePortExcept(used)
				if err != nil {
					return rec, err
				}
				s.Port = p
			}
			used[s.Port] = true
			n++
		}
	}
	return rec, nil
}

func freePortExcept(used map[int]bool) (int, error) {
	for range 100 {
		p, err := freePort()
		if err != nil {
			return 0, err
		}
		if !used[p] {
			return p, nil
		}
	}
	return 0, fmt.Errorf("localdb: free port: the kernel kept handing out ports already taken by this topology")
}

// adoptPromotions corrects the recorded roles after a promotion that
// someone else made (the proxy's switchover, an operator): a replica keeps
// its replication settings in master.info, and promoting a server removes
// them (RESET SLAVE ALL). So when exactly one server of a shard has no
// master.info, that server is the primary, whatever the record says.
func (t *Topology) adoptPromotions(rec *record) {
shards:
	for i := range rec.Shards {
		sh := &rec.Shards[i]
		primary := -1
		for j, s := range sh.Servers {
			_, err := os.Stat(filepath.Join(t.cfg.Root, s.Name, "data", "master.info"))
			if !errors.Is(err, os.ErrNotExist) {
				continue
			}
			if primary >= 0 {
				continue shards // more than one candidate: keep the record
			}
			primary = j
		}
		if primary < 0 || sh.Servers[primary].Role == RolePrimary {
			continue
		}
		for j := range sh.Servers {
			sh.Servers[j].Role = RoleReplica
		}
		sh.Servers[primary].Role = RolePrimary
		t.log.Info("localdb: adopting a promotion made outside localdb", "shard", sh.Name, "primary", sh.Servers[primary].Name)
	}
}

func (t *Topology) build(rec record) {
	for _, rs := range rec.Shards {
		sh := &Shard{Name: rs.Name}
		for _, r := range rs.Servers {
			sh.servers = append(sh.servers, &Server{
				Name: r.Name, Shard: rs.Name, Port: r.Port, ServerID: r.ServerID,
				Dir: filepath.Join(t.cfg.Root, r.Name),
				cfg: &t.cfg, log: t.log, role: r.Role,
			})
		}
		t.shards = append(t.shards, sh)
	}
}

func (t *Topology) recordPath() string { return filepath.Join(t.cfg.Root, "topology.json") }

func (t *Topology) saveRecord() error {
	var rec record
	for _, sh := range t.Shards() {
		rs := recordShard{Name: sh.Name}
		for _, s := range sh.Servers() {
			rs.Servers = append(rs.Servers, recordServer{Name: s.Name, Port: s.Port, ServerID: s.ServerID, Role: s.Role()})
		}
		rec.Shards = append(rec.Shards, rs)
	}
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	tmp := t.recordPath() + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("localdb: %w", err)
	}
	if err := os.Rename(tmp, t.recordPath()); err != nil {
		return fmt.Errorf("localdb: %w", err)
	}
	return nil
}

func (t *Topology) startAll(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, s := range t.Servers() {
		g.Go(func() error {
			if err := s.install(gctx); err != nil {
				return err
			}
			err := s.start(gctx)
			for try := 0; errors.Is(err, errPortTaken) && t.cfg.BasePort == 0 && try < 3; try++ {
				// Taken since it was chosen: choose again.
				p, perr := freePort()
				if perr != nil {
					return perr
				}
				t.log.Warn("localdb: port taken, trying another", "server", s.Name, "port", s.Port, "new", p)
				s.Port = p // only this goroutine reads it until startAll returns
				err = s.start(gctx)
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	g, gctx = errgroup.WithContext(ctx)
	for _, sh := range t.Shards() {
		p := sh.Primary()
		// Created on the primary, the user reaches the replicas through
		// replication like any other write.
		if err := p.Exec(ctx,
			"CREATE USER IF NOT EXISTS '"+AppUser+"'@'127.0.0.1'",
			"GRANT ALL PRIVILEGES ON *.* TO '"+AppUser+"'@'127.0.0.1' WITH GRANT OPTION",
			"REVOKE READ_ONLY ADMIN ON *.* FROM '"+AppUser+"'@'127.0.0.1'",
		); err != nil {
			return err
		}
		for _, r := range sh.Replicas() {
			g.Go(func() error { return t.replicate(gctx, r, p) })
		}
	}
	if err := g.Wait(); err != nil {
		return err
	}
	// Until the replicas have applied the application user's grants, the
	// user cannot read there; callers expect a topology they can use.
	return t.WaitReplicated(ctx)
}

// replicate points replica r at primary p with GTIDs and starts replication.
func (t *Topology) replicate(ctx context.Context, r, p *Server) error {
	// CHANGE MASTER keeps a MASTER_DELAY set earlier unless told
	// otherwise, so a delay survives restarts and repoints. current_pos
	// (rather than slave_pos) lets a former primary resume after the
	// transactions in its own binlog instead of asking for them again.
	return r.Exec(ctx,
		"STOP SLAVE",
		"SET GLOBAL read_only = 1",
		fmt.Sprintf("CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=%d, MASTER_USER='root', MASTER_PASSWORD='', MASTER_USE_GTID=current_pos, MASTER_CONNECT_RETRY=1", p.Port),
		"START SLAVE",
	)
}

// Shards returns the shards in order.
func (t *Topology) Shards() []*Shard {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]*Shard(nil), t.shards...)
}

// Shard returns the shard with the given name, or nil.
func (t *Topology) Shard(name string) *Shard {
	for _, sh := range t.Shards() {
		if sh.Name == name {
			return sh
		}
	}
	return nil
}

// Servers returns every server, shard by shard.
func (t *Topology) Servers() []*Server {
	var out []*Server
	for _, sh := range t.Shards() {
		out = append(out, sh.Servers()...)
	}
	return out
}

// Server returns the server with the given name, or nil.
func (t *Topology) Server(name string) *Server {
	for _, s := range t.Servers() {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// Root is the absolute data root.
func (t *Topology) Root() string { return t.cfg.Root }

// Stop stops every server gracefully, in parallel. It is idempotent.
func (t *Topology) Stop() error {
	if t == nil {
		return nil
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(t.Servers()))
	for _, s := range t.Servers() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Stop(); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

// Restart starts a stopped or killed server again from its data directory
// and, if it is a replica, points it at its shard's current primary. A
// restarted server that was a primary and was replaced meanwhile comes back
// as a replica (with read_only set), so an old primary never takes writes.
func (t *Topology) Restart(ctx context.Context, s *Server) error {
	if s.Running() {
		if err := s.Stop(); err != nil {
			return err
		}
	}
	if err := s.start(ctx); err != nil {
		return err
	}
	if s.Role() == RoleReplica {
		p := t.Shard(s.Shard).Primary()
		if p == nil {
			return fmt.Errorf("localdb: shard %s has no primary", s.Shard)
		}
		return t.replicate(ctx, s, p)
	}
	return nil
}

// SetReplicationDelay makes replica r apply events only d after the
// primary committed them (MASTER_DELAY, whole seconds).
func (t *Topology) SetReplicationDelay(ctx context.Context, r *Server, d time.Duration) error {
	if r.Role() != RoleReplica {
		return fmt.Errorf("localdb: %s is not a replica", r.Name)
	}
	return r.Exec(ctx,
		"STOP SLAVE",
		fmt.Sprintf("CHANGE MASTER TO MASTER_DELAY=%d", int(d.Round(time.Second)/time.Second)),
		"START SLAVE",
	)
}

// WaitReplicated waits until every running replica of every shard has
// applied everything its primary had committed when the call began.
func (t *Topology) WaitReplicated(ctx context.Context) error {
	for _, sh := range t.Shards() {
		p := sh.Primary()
		if p == nil || !p.Running() {
			continue
		}
		pos, err := p.QueryString(ctx, "SELECT @@gtid_binlog_pos")
		if err != nil {
			return err
		}
		for _, r := range sh.Replicas() {
			if !r.Running() || r.Paused() {
				continue
			}
			if err := waitGTID(ctx, r, pos); err != nil {
				return err
			}
		}
	}
	return nil
}

// waitGTID blocks until server s has applied pos or ctx ends.
func waitGTID(ctx context.Context, s *Server, pos string) error {
	if pos == "" {
		return nil
	}
	timeout := 30.0
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl).Seconds()
	}
	res, err := s.QueryString(ctx, fmt.Sprintf("SELECT MASTER_GTID_WAIT('%s', %.3f)", pos, timeout))
	if err != nil {
		return err
	}
	if res != "0" {
		return fmt.Errorf("localdb: %s did not reach GTID %s", s.Name, pos)
	}
	return nil
}

// Promote makes replica r its shard's primary. If the old primary is
// running it is fenced first (read_only) and r is given every transaction it
// committed, so nothing acknowledged is lost; if it is down, r is promoted
// with what it has. The other replicas, and the old primary if running, are
// repointed at r. The new roles are recorded, so a later Start or Restart
// keeps them.
func (t *Topology) Promote(ctx context.Context, r *Server) error {
	sh := t.Shard(r.Shard)
	if sh == nil {
		return fmt.Errorf("localdb: %s: unknown shard %s", r.Name, r.Shard)
	}
	if r.Role() != RoleReplica {
		return fmt.Errorf("localdb: %s is already the primary of %s", r.Name, r.Shard)
	}
	if !r.Running() || r.Paused() {
		return fmt.Errorf("localdb: %s: cannot promote: %w", r.Name, errNotRunning)
	}
	old := sh.Primary()
	oldUp := old != nil && old.Running() && !old.Paused()
	if oldUp {
		if err := old.Exec(ctx, "SET GLOBAL read_only = 1"); err != nil {
			return err
		}
		pos, err := old.QueryString(ctx, "SELECT @@gtid_binlog_pos")
		if err != nil {
			return err
		}
		// A delayed replica would hold the promotion for its whole delay.
		if err := r.Exec(ctx, "STOP SLAVE", "CHANGE MASTER TO MASTER_DELAY=0", "START SLAVE"); err != nil {
			return err
		}
		if err := waitGTID(ctx, r, pos); err != nil {
			return fmt.Errorf("localdb: promote %s: %w", r.Name, err)
		}
	}
	if err := r.Exec(ctx, "STOP SLAVE", "RESET SLAVE ALL", "SET GLOBAL read_only = 0"); err != nil {
		return err
	}
	if old != nil {
		old.setRole(RoleReplica)
	}
	r.setRole(RolePrimary)
	if err := t.saveRecord(); err != nil {
		return err
	}
	for _, o := range sh.Replicas() {
		if !o.Running() || o.Paused() {
			continue // repointed when it is restarted
		}
		if err := t.replicate(ctx, o, r); err != nil {
			return err
		}
	}
	t.log.Info("localdb: promoted", "shard", sh.Name, "primary", r.Name)
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("localdb: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func portFree(p int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}
