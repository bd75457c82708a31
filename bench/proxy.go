package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/strata-db/strata/localdb"
)

// proxyBench: sysbench oltp_point_select against one MariaDB server
// direct, through HAProxy (mode tcp, one thread) and through the Strata
// proxy (GOMAXPROCS=proxy_procs, default 1, as HAProxy's one thread).
// Params: tables (4), table_size (10000), proxy_procs (1), ps_mode (auto
// or disable; as a number: 1 = disable), profile (a file: the proxy's CPU
// profile over its variant's runs, from its /debug/pprof), compare (another
// strata binary, measured as one more variant: old and new in one run),
// pipelines and pipeline_depth (the proxies' backend.pipelines and
// backend.pipeline_depth; unset: the proxy's defaults).
type proxyBench struct{}

func (proxyBench) Setup(ctx context.Context, e *Env) (vs []Variant, stop func(), err error) {
	var stops []func()
	stop = func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	defer func() {
		if err != nil {
			stop()
		}
	}()
	cfg := localdb.DefaultConfig()
	cfg.Root, cfg.Shards, cfg.Replicas, cfg.BufferPoolSize, cfg.Logger = filepath.Join(e.Dir, "mariadb"), 1, 0, "256M", e.Logger
	topo, err := localdb.Start(ctx, cfg)
	if err != nil {
		return nil, stop, err
	}
	stops = append(stops, func() { _ = topo.Stop() })
	s0 := topo.Shards()[0].Primary()
	if err := s0.Exec(ctx, "CREATE DATABASE IF NOT EXISTS sbtest"); err != nil {
		return nil, stop, err
	}
	tables, size := param(e, "tables", 4), param(e, "table_size", 10000)
	psMode := "auto"
	if param(e, "ps_disable", 0) == 1 {
		psMode = "disable"
	}
	direct := sysbench{test: "oltp_point_select", addr: s0.Addr(), user: localdb.AppUser, db: "sbtest", tables: tables, size: size, extra: []string{"--db-ps-mode=" + psMode}}
	if err := direct.prepare(ctx); err != nil {
		return nil, stop, err
	}

	procs := param(e, "proxy_procs", 1)
	var env []string
	if procs > 0 {
		env = append(env, "GOMAXPROCS="+strconv.Itoa(procs))
	}
	profile := e.Params["profile"]
	pipes := ""
	if n := param(e, "pipelines", -1); n >= 0 {
		pipes = fmt.Sprintf(", pipelines: %d", n)
	}
	if n := param(e, "pipeline_depth", 0); n > 0 {
		pipes += fmt.Sprintf(", pipeline_depth: %d", n)
	}
	// startStrata starts a proxy from binary bin (name: its log's and
	// config's); admin is its admin address, "off" unless profiling.
	startStrata := func(name, bin string, withAdmin bool) (listen, admin string, p *proc, err error) {
		listen, _ = freeAddr()
		admin = "off"
		if withAdmin {
			admin, _ = freeAddr()
		}
		conf := filepath.Join(e.Dir, name+".yaml")
		yml := fmt.Sprintf("listen: %s\nadmin_listen: %s\nslow_query_threshold: 0s\nusers: [{name: root, password: \"\"}]\nbackend: {user: %s, password: \"\"%s}\nshards:\n  - {name: s0, primary: %q}\ndatabases:\n  sbtest: {sharded: true, tables: {\"sbtest{1..32}\": {kind: sharded, column: id}}}\n",
			listen, admin, localdb.AppUser, pipes, s0.Addr())
		if err := os.WriteFile(conf, []byte(yml), 0o644); err != nil {
			return "", "", nil, err
		}
		p, err = startProc(e.Dir, name, env, bin, "proxy", "--log-level", "warn", "--config", conf)
		if err != nil {
			return "", "", nil, err
		}
		stops = append(stops, p.stop)
		if err := waitDialable(ctx, listen, 30*time.Second); err != nil {
			return "", "", nil, fmt.Errorf("strata proxy (%s): %w", bin, err)
		}
		return listen, admin, p, nil
	}
	listen, admin, sp, err := startStrata("proxy", e.Binary, profile != "")
	if err != nil {
		return nil, stop, err
	}
	var cmpListen string
	var cp *proc
	if bin := e.Params["compare"]; bin != "" {
		if cmpListen, _, cp, err = startStrata("proxy-compare", bin, false); err != nil {
			return nil, stop, err
		}
	}

	haBin, err := exec.LookPath("haproxy")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/haproxy"); serr != nil {
			return nil, stop, fmt.Errorf("haproxy not found (make bench-deps)")
		}
		haBin = "/usr/sbin/haproxy"
	}
	haAddr, _ := freeAddr()
	haConf := filepath.Join(e.Dir, "haproxy.cfg")
	hcfg := fmt.Sprintf("global\n    nbthread 1\n    maxconn 4096\ndefaults\n    mode tcp\n    timeout connect 5s\n    timeout client 1h\n    timeout server 1h\nlisten mysql\n    bind %s\n    server s0 %s\n", haAddr, s0.Addr())
	if err := os.WriteFile(haConf, []byte(hcfg), 0o644); err != nil {
		return nil, stop, err
	}
	hp, err := startProc(e.Dir, "haproxy", nil, haBin, "-f", haConf, "-db")
	if err != nil {
		return nil, stop, err
	}
	stops = append(stops, hp.stop)
	if err := waitDialable(ctx, haAddr, 10*time.Second); err != nil {
		return nil, stop, fmt.Errorf("haproxy: %w", err)
	}

	viaHA := direct
	viaHA.addr = haAddr
	viaStrata := direct
	viaStrata.addr, viaStrata.user = listen, "root"
	// Warm the buffer pool before the first round.
	if _, err := direct.run(ctx, 2*time.Second, e.Threads, 0); err != nil {
		return nil, stop, err
	}
	th := e.Threads
	vs = []Variant{
		{Name: "MariaDB direct", Run: func(ctx context.Context, d time.Duration) (Round, error) { return direct.run(ctx, d, th, 0) }},
		{Name: "HAProxy (tcp, 1 thread)", Reference: true, Run: func(ctx context.Context, d time.Duration) (Round, error) { return viaHA.run(ctx, d, th, hp.pid()) }},
		{Name: fmt.Sprintf("Strata proxy (GOMAXPROCS=%d)", procs), Run: func(ctx context.Context, d time.Duration) (Round, error) {
			if profile == "" {
				return viaStrata.run(ctx, d, th, sp.pid())
			}
			prof := make(chan error, 1)
			go func() { prof <- fetchProfile(ctx, admin, d, profile) }()
			r, err := viaStrata.run(ctx, d, th, sp.pid())
			if perr := <-prof; err == nil && perr != nil {
				err = fmt.Errorf("profile: %w", perr)
			}
			return r, err
		}},
	}
	if cp != nil {
		viaCmp := direct
		viaCmp.addr, viaCmp.user = cmpListen, "root"
		vs = append(vs, Variant{Name: fmt.Sprintf("Strata proxy, compare binary (GOMAXPROCS=%d)", procs), Run: func(ctx context.Context, d time.Duration) (Round, error) {
			return viaCmp.run(ctx, d, th, cp.pid())
		}})
	}
	return vs, stop, nil
}

// fetchProfile writes the CPU profile of the proxy whose admin address is
// admin over the next d to file (a later round's replaces an earlier one's).
func fetchProfile(ctx context.Context, admin string, d time.Duration, file string) error {
	secs := max(1, int((d-500*time.Millisecond)/time.Second))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", admin, secs), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", req.URL, resp.Status)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	return os.WriteFile(file, b, 0o644)
}
