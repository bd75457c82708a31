package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
)

// Fault is one failure the drill injects and later undoes. Inject resolves
// its target at that moment (the leader, the primary, by role); Recover
// undoes exactly what Inject did and is safe to call when Inject failed.
type Fault interface {
	Name() string
	Inject(ctx context.Context) error
	Recover(ctx context.Context) error
}

// newFault builds the fault a spec describes, over stack s.
func newFault(s *stack, fs FaultSpec) (Fault, error) {
	name := fs.Kind + "(" + fs.Target + ")"
	switch fs.Kind {
	case "kill", "pause":
		return &processFault{s: s, kind: fs.Kind, target: fs.Target, name: name}, nil
	case "latency", "timeout", "reset_peer", "bandwidth":
		return &networkFault{s: s, spec: fs, name: name}, nil
	case "lag":
		return &lagFault{s: s, target: fs.Target, delay: pDuration(fs.Params, "delay", 5*time.Second), name: name}, nil
	case "clock_skew":
		return &clockFault{s: s, which: strings.TrimPrefix(fs.Target, "idserver:"), offset: pDuration(fs.Params, "offset", 0), name: name}, nil
	case "switchover":
		_, shard, _ := strings.Cut(fs.Target, ":")
		return &switchoverFault{s: s, shard: shard, to: pString(fs.Params, "to", ""), name: name}, nil
	}
	return nil, fmt.Errorf("chaos: fault %s: %w", fs.Kind, errNotYet)
}

// processFault kills (SIGKILL) or pauses (SIGSTOP) a process; Recover
// restarts it or continues it (SIGCONT).
type processFault struct {
	s                  *stack
	kind, target, name string

	// What Inject hit, for Recover.
	local   *server // a MariaDB server of a local stack
	proc    *proc   // a process of a local stack
	pid     int     // a process of an external stack
	cmdline []string
	cwd     string
	addr    string
	entry   int
}

func (f *processFault) Name() string { return f.name }

func (f *processFault) Inject(ctx context.Context) error {
	switch {
	case f.target == "proxy" && f.s.procs["proxy"] != nil:
		f.proc = f.s.procs["proxy"]
	case f.target == "proxy":
		return f.external(ctx, f.s.proxyReal)
	case strings.HasPrefix(f.target, "idserver:"):
		if len(f.s.procs) == 0 {
			i, err := f.s.idNode(ctx, strings.TrimPrefix(f.target, "idserver:"))
			if err != nil {
				return err
			}
			return f.external(ctx, f.s.idGRPC[i])
		}
		i, err := f.s.idNode(ctx, strings.TrimPrefix(f.target, "idserver:"))
		if err != nil {
			return err
		}
		f.proc = f.s.idg.Nodes[i].p
		f.name = fmt.Sprintf("%s(%s=%s)", f.kind, f.target, f.s.idg.Nodes[i].ID)
	case strings.HasPrefix(f.target, "txcoord:"):
		i, err := f.s.txNode(ctx, strings.TrimPrefix(f.target, "txcoord:"))
		if err != nil {
			return err
		}
		f.proc = f.s.txg.Nodes[i].p
		f.name = fmt.Sprintf("%s(%s=%s)", f.kind, f.target, f.s.txg.Nodes[i].ID)
	default:
		svs, err := f.s.resolveServers(ctx, f.target)
		if err != nil {
			return err
		}
		sv := svs[0]
		f.name = fmt.Sprintf("%s(%s=%s)", f.kind, f.target, sv.Name)
		if sv.local == nil {
			return f.external(ctx, sv.Addr)
		}
		f.local = &sv
		l := sv.local
		if f.kind == "kill" {
			return l.Kill()
		}
		f.entry = f.s.j.add(JournalEntry{Kind: jPaused, What: sv.Name, Pid: l.Pid(), Cmdline: cmdlineOf(l.Pid())})
		return l.Pause()
	}
	// A process of the local stack.
	if f.kind == "kill" {
		f.proc.kill()
		return nil
	}
	f.entry = f.s.j.add(JournalEntry{Kind: jPaused, What: f.proc.name, Pid: f.proc.pid(), Cmdline: f.proc.args})
	return f.proc.signal(syscall.SIGSTOP)
}

// external faults a process of a stack the drill does not own, found by
// the port it listens on.
func (f *processFault) external(_ context.Context, addr string) error {
	pid, err := pidListening(addr)
	if err != nil {
		return err
	}
	f.pid, f.addr, f.cmdline = pid, addr, cmdlineOf(pid)
	f.cwd, _ = os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
	if f.kind == "pause" {
		f.entry = f.s.j.add(JournalEntry{Kind: jPaused, What: addr, Pid: pid, Cmdline: f.cmdline})
		return syscall.Kill(pid, syscall.SIGSTOP)
	}
	f.entry = f.s.j.add(JournalEntry{Kind: jKilled, What: addr, Cmdline: f.cmdline, Cwd: f.cwd, Addr: addr})
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return err
	}
	return waitGone(pid, 10*time.Second)
}

func (f *processFault) Recover(ctx context.Context) error {
	defer f.s.j.done(f.entry)
	switch {
	case f.local != nil:
		l := f.local.local
		if f.kind == "pause" {
			if !l.Paused() {
				return nil
			}
			return l.Resume()
		}
		if l.Running() {
			return nil
		}
		if err := f.s.topo.Restart(ctx, l); err != nil {
			return err
		}
		f.s.j.add(JournalEntry{Kind: jProcess, What: "mariadbd " + l.Name, Pid: l.Pid(), Cmdline: cmdlineOf(l.Pid())})
		return nil
	case f.proc != nil:
		if f.kind == "pause" {
			return f.proc.signal(syscall.SIGCONT)
		}
		if f.proc.running() {
			return nil
		}
		if err := f.proc.start(); err != nil {
			return err
		}
		if f.proc.name == "proxy" {
			return f.s.waitProxy(ctx, 60*time.Second)
		}
		return waitDialable(ctx, f.proc.addr, 30*time.Second)
	case f.pid != 0:
		if f.kind == "pause" {
			return syscall.Kill(f.pid, syscall.SIGCONT)
		}
		if dialable(f.addr) {
			return nil
		}
		if _, err := restartDetached(f.cmdline, f.cwd); err != nil {
			return err
		}
		if err := waitDialable(ctx, f.addr, 60*time.Second); err != nil {
			return err
		}
		resumeReplication(ctx, f.cmdline, f.addr)
		return nil
	}
	return nil
}

// idNode picks an ID service node by role (leader, follower) or ID. Just
// after an election there may be no leader yet: it asks for a while.
func (s *stack) idNode(ctx context.Context, which string) (int, error) {
	if s.idg == nil {
		return -1, errors.New("chaos: no ID service nodes known (target.external.idserver_http)")
	}
	if which != "leader" && which != "follower" {
		for i, n := range s.idg.Nodes {
			if n.ID == which {
				return i, nil
			}
		}
		return -1, fmt.Errorf("chaos: no ID service node %q", which)
	}
	leader, err := s.idLeader(ctx)
	for deadline := time.Now().Add(15 * time.Second); err != nil && time.Now().Before(deadline) && ctx.Err() == nil; {
		sleepCtx(ctx, 200*time.Millisecond)
		leader, err = s.idLeader(ctx)
	}
	if which == "follower" {
		if err != nil {
			return -1, err
		}
		for i := range s.idHTTP {
			if i != leader {
				return i, nil
			}
		}
		return -1, errors.New("chaos: the ID service has no follower")
	}
	return leader, err
}

// txNode picks a coordinator node by role (leader, follower) or ID, as
// idNode does for the ID service.
func (s *stack) txNode(ctx context.Context, which string) (int, error) {
	if s.txg == nil {
		return -1, errors.New("chaos: no coordinator group")
	}
	if which != "leader" && which != "follower" {
		for i, n := range s.txg.Nodes {
			if n.ID == which {
				return i, nil
			}
		}
		return -1, fmt.Errorf("chaos: no coordinator node %q", which)
	}
	leader, err := s.txLeader(ctx)
	for deadline := time.Now().Add(15 * time.Second); err != nil && time.Now().Before(deadline) && ctx.Err() == nil; {
		sleepCtx(ctx, 200*time.Millisecond)
		leader, err = s.txLeader(ctx)
	}
	if err != nil || which == "leader" {
		return leader, err
	}
	for i := range s.txHTTP {
		if i != leader {
			return i, nil
		}
	}
	return -1, errors.New("chaos: the coordinator group has no follower")
}

// networkFault adds a Toxiproxy toxic to the links in front of its target
// (both directions where the toxic has a meaning there).
type networkFault struct {
	s     *stack
	spec  FaultSpec
	name  string
	added []*toxiproxy.Proxy
}

func (f *networkFault) Name() string { return f.name }

func (f *networkFault) links(ctx context.Context) ([]*toxiproxy.Proxy, error) {
	if f.spec.Target == "proxy" {
		return []*toxiproxy.Proxy{f.s.links["proxy"]}, nil
	}
	svs, err := f.s.resolveServers(ctx, f.spec.Target)
	if err != nil {
		return nil, err
	}
	var out []*toxiproxy.Proxy
	for _, sv := range svs {
		if l := f.s.links["mariadb:"+sv.Name]; l != nil {
			out = append(out, l)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("chaos: %s: no link", f.spec.Target)
	}
	return out, nil
}

func (f *networkFault) toxicJSON(stream string) string {
	p := f.spec.Params
	var attrs string
	switch f.spec.Kind {
	case "latency":
		attrs = fmt.Sprintf(`{"latency": %d, "jitter": %d}`, pDuration(p, "latency", 200*time.Millisecond).Milliseconds(), pDuration(p, "jitter", 0).Milliseconds())
	case "timeout":
		attrs = fmt.Sprintf(`{"timeout": %d}`, pDuration(p, "timeout", 0).Milliseconds())
	case "reset_peer":
		attrs = fmt.Sprintf(`{"timeout": %d}`, pDuration(p, "timeout", 0).Milliseconds())
	case "bandwidth":
		attrs = fmt.Sprintf(`{"rate": %d}`, pInt(p, "rate", 10))
	}
	return fmt.Sprintf(`{"name": "chaos_%s_%s", "type": %q, "stream": %q, "toxicity": 1, "attributes": %s}`, f.spec.Kind, stream, f.spec.Kind, stream, attrs)
}

func (f *networkFault) Inject(ctx context.Context) error {
	ls, err := f.links(ctx)
	if err != nil {
		return err
	}
	for _, l := range ls {
		for _, stream := range []string{"upstream", "downstream"} {
			if _, err := l.Toxics.AddToxicJson(strings.NewReader(f.toxicJSON(stream))); err != nil {
				return fmt.Errorf("chaos: %s: %w", l.Name, err)
			}
		}
		f.added = append(f.added, l)
	}
	return nil
}

func (f *networkFault) Recover(ctx context.Context) error {
	var errs []error
	for _, l := range f.added {
		for _, stream := range []string{"upstream", "downstream"} {
			name := fmt.Sprintf("chaos_%s_%s", f.spec.Kind, stream)
			if err := l.Toxics.RemoveToxic(ctx, name); err != nil && !strings.Contains(err.Error(), "not found") {
				errs = append(errs, err)
			}
		}
	}
	f.added = nil
	return errors.Join(errs...)
}

// lagFault gives a replica a MASTER_DELAY.
type lagFault struct {
	s      *stack
	target string
	delay  time.Duration
	name   string
	addr   string
	entry  int
}

func (f *lagFault) Name() string { return f.name }

func (f *lagFault) Inject(ctx context.Context) error {
	svs, err := f.s.resolveServers(ctx, f.target)
	if err != nil {
		return err
	}
	f.addr = svs[0].Addr
	f.name = fmt.Sprintf("lag(%s=%s, %v)", f.target, svs[0].Name, f.delay)
	f.entry = f.s.j.add(JournalEntry{Kind: jDelay, What: svs[0].Name, Addr: f.addr})
	return setDelay(ctx, f.addr, f.delay)
}

func (f *lagFault) Recover(ctx context.Context) error {
	if f.addr == "" {
		return nil
	}
	if err := setDelay(ctx, f.addr, 0); err != nil {
		return err
	}
	f.s.j.done(f.entry)
	return nil
}

// switchoverFault runs a planned switchover through the proxy's admin
// statement, as an operator would. It is not undone: the shard keeps its
// new primary.
type switchoverFault struct {
	s         *stack
	shard, to string
	name      string
}

func (f *switchoverFault) Name() string { return f.name }

func (f *switchoverFault) Inject(ctx context.Context) error {
	db, err := f.s.openProxy("")
	if err != nil {
		return err
	}
	defer db.Close()
	q := "STRATA SWITCHOVER SHARD " + f.shard
	if f.to != "" {
		q += " TO " + f.to
	}
	// A switchover the proxy could not finish in time (statements still
	// draining on a loaded machine) is undone by the proxy; an operator
	// would try again, and so does the drill, twice.
	var last error
	for try := 0; try < 3 && ctx.Err() == nil; try++ {
		c, cancel := context.WithTimeout(ctx, 60*time.Second)
		rows, err := db.QueryContext(c, q)
		if err == nil {
			err = rows.Close()
		}
		cancel()
		if err == nil {
			return nil
		}
		last = err
		sleepCtx(ctx, time.Second)
	}
	return fmt.Errorf("chaos: %s: %w", q, last)
}

func (f *switchoverFault) Recover(context.Context) error { return nil }

// clockFault moves an ID service node's clock by an offset (forward or
// back) through its /debug/chaos/clock endpoint (the node runs with
// --chaos-clock); Recover sets it back to the OS clock, which is itself a
// jump the other way.
type clockFault struct {
	s      *stack
	which  string
	offset time.Duration
	name   string
	addr   string
	entry  int
}

func (f *clockFault) Name() string { return f.name }

func (f *clockFault) Inject(ctx context.Context) error {
	i, err := f.s.idNode(ctx, f.which)
	if err != nil {
		return err
	}
	n := f.s.idg.Nodes[i]
	f.addr = n.HTTP
	f.name = fmt.Sprintf("clock_skew(idserver:%s=%s, %+v)", f.which, n.ID, f.offset)
	f.entry = f.s.j.add(JournalEntry{Kind: jClock, What: n.ID, Addr: n.HTTP})
	return setClockOffset(ctx, n.HTTP, f.offset)
}

func (f *clockFault) Recover(ctx context.Context) error {
	if f.addr == "" {
		return nil
	}
	// A node killed meanwhile came back with the OS clock.
	if err := setClockOffset(ctx, f.addr, 0); err != nil && dialable(f.addr) {
		return err
	}
	f.s.j.done(f.entry)
	return nil
}

// setClockOffset sets the clock offset of the ID service node whose HTTP
// API is at addr.
func setClockOffset(ctx context.Context, addr string, d time.Duration) error {
	c, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(c, http.MethodPut, "http://"+addr+"/debug/chaos/clock?offset="+url.QueryEscape(d.String()), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("chaos: clock of %s: %w", addr, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return fmt.Errorf("chaos: clock of %s: the node does not run with --chaos-clock", addr)
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("chaos: clock of %s: %s: %s", addr, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}
