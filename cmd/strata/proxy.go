package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/strata-db/strata/internal/gctune"
	"github.com/strata-db/strata/shardproxy"
	"github.com/strata-db/strata/shardproxy/config"
)

// proxyOptions are `strata proxy`'s flags.
type proxyOptions struct {
	config string
	listen string
	admin  string
}

func newProxyCmd(e *env) *cobra.Command {
	o := proxyOptions{}
	cmd := &cobra.Command{
		Use:   "proxy --config FILE",
		Short: "Run the shard proxy: one MySQL endpoint over the shards the config names",
		Long: `proxy serves the MySQL protocol (default 127.0.0.1:3307) in front of the
shards of its config file, routing each statement to the shards that hold its
rows. The config is YAML; it is validated at start and every problem is
reported as file:line: field: reason. See examples/sysbench.yaml and the
README's "Shard proxy" section for the format.

Metrics are on the admin port (default 127.0.0.1:15000): /metrics, /healthz,
/debug/pprof/.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(o.config)
			if err != nil {
				return err
			}
			if o.listen != "" {
				cfg.Listen = o.listen
			}
			if o.admin != "" {
				cfg.AdminListen = o.admin
			}
			certs, err := prepareTLS(cfg)
			if err != nil {
				return fmt.Errorf("%s: %w", o.config, err)
			}
			if err := cfg.Validate(); err != nil {
				return fmt.Errorf("%s: %w", o.config, err)
			}
			gogc := tuneGC()
			ctx := cmd.Context()
			// The runtime's and the process's own figures (memory, goroutines,
			// descriptors) beside the proxy's.
			reg := prometheus.NewRegistry()
			reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
			srv, err := shardproxy.New(ctx, shardproxy.Options{Config: cfg, Logger: e.logger(), Registry: reg})
			if err != nil {
				return err
			}
			if rc := srv.RowCache(); gogc && rc != nil {
				// The cache's bytes stay in the live heap: they must not
				// let the heap grow by GOGC×budget more before the next
				// collection (the budget would not bound the RSS).
				go gctune.Run(ctx, gctune.DefaultConfig(), rc.Bytes)
			}
			printProxyBanner(e.stdout, srv, cfg)
			printTLS(e.stdout, cfg, certs)
			return srv.Serve(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.config, "config", "", "proxy config file (YAML), required")
	f.StringVar(&o.listen, "listen", "", "MySQL address, overriding the config's listen")
	f.StringVar(&o.admin, "admin", "", "admin HTTP address, overriding the config's admin_listen (\"off\" disables)")
	_ = cmd.MarkFlagRequired("config")
	return cmd
}

// tuneGC lets the heap grow to five times the live data between
// collections (GOGC=400) unless GOGC is set: the proxy's live heap is small
// and its garbage short-lived, so the default collects several times a
// second under load for no memory worth saving. It reports whether it set
// it (a row cache then lowers it as the cache fills: see gctune).
func tuneGC() bool {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gctune.DefaultConfig().Base)
		return true
	}
	return false
}

// printProxyBanner says how to connect.
func printProxyBanner(w io.Writer, srv *shardproxy.Server, cfg *config.Config) {
	host, port, _ := net.SplitHostPort(srv.Addr())
	user := cfg.Users[0].Name
	fmt.Fprintf(w, "Shard proxy on %s (%s):\n  mariadb -h%s -P%s -u%s", srv.Addr(), srv.Version(), host, port, user)
	if cfg.Users[0].Password != "" {
		fmt.Fprint(w, " -p")
	}
	fmt.Fprintln(w)
	names := make([]string, 0, len(cfg.Databases))
	for n := range cfg.Databases {
		names = append(names, n)
	}
	sortStrings(names)
	for _, n := range names {
		d := cfg.Databases[n]
		if d.Sharded {
			fmt.Fprintf(w, "  database %-10s sharded over %v\n", n, cfg.ShardNames())
		} else {
			fmt.Fprintf(w, "  database %-10s unsharded, on %s\n", n, d.Shard)
		}
	}
	if cfg.IDService.Enabled() {
		fmt.Fprintf(w, "  keys     left out of an INSERT come from the ID service at %v\n", cfg.IDService.Addrs)
	}
	if cfg.Transactions.Enabled() {
		fmt.Fprintf(w, "  txns     across shards atomic (two-phase commit; coordinator %v); SHOW STRATA TRANSACTIONS lists them\n", cfg.Transactions.Coordinator)
	}
	if cfg.ReadWrite.Enabled {
		fmt.Fprintf(w, "  reads    on replicas, consistency %s (SHOW STRATA SERVERS lists them)\n", cfg.ReadWrite.Consistency)
	}
	if a := srv.AdminAddr(); a != "" {
		fmt.Fprintf(w, "  metrics  http://%s/metrics   health http://%s/healthz\n", a, a)
	}
}
