package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/spf13/pflag"

	"github.com/strata-db/strata/localdb"
	"github.com/strata-db/strata/shardproxy"
	"github.com/strata-db/strata/shardproxy/config"
	"github.com/strata-db/strata/shardproxy/tlscert"
)

// upProxyOptions are the proxy's flags of `strata up`.
type upProxyOptions struct {
	listen, admin string
}

func addUpProxyFlags(f *pflag.FlagSet, o *upProxyOptions) {
	f.StringVar(&o.listen, "proxy-listen", "", "shard proxy MySQL address (default 127.0.0.1:3307, or the config's; a free port with --mariadb-port 0)")
	f.StringVar(&o.admin, "proxy-admin", "", "shard proxy admin HTTP address (default 127.0.0.1:15000, or the config's; a free port with --mariadb-port 0)")
}

// upProxy is the proxy `strata up` runs in front of its topology.
type upProxy struct {
	srv    *shardproxy.Server
	cfg    *config.Config
	tls    *tlscert.Files
	cancel context.CancelFunc
	done   chan error
}

// defaultUpConfig is `strata up`'s proxy config: database demo sharded over
// every shard (customers by id, orders by customer_id, countries a reference
// table) and database test unsharded on the first shard, where tools that
// create their own tables (sysbench, driver test suites) work unchanged.
func defaultUpConfig() *config.Config {
	c := config.DefaultConfig()
	c.Databases = map[string]*config.Database{
		"demo": {Sharded: true, Tables: map[string]*config.Table{
			"customers": {Kind: "sharded", Column: "id", Function: "hash"},
			"orders":    {Kind: "sharded", Column: "customer_id", Function: "hash"},
			"countries": {Kind: "reference"},
		}},
	}
	return c
}

// demoSchema creates demo's sample tables (each statement goes to every
// shard) and fills the reference table.
var demoSchema = []string{
	"CREATE TABLE IF NOT EXISTS customers (id BIGINT PRIMARY KEY, name VARCHAR(100) NOT NULL, country CHAR(2))",
	"CREATE TABLE IF NOT EXISTS orders (id BIGINT NOT NULL, customer_id BIGINT NOT NULL, amount DECIMAL(10,2) NOT NULL, created DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP, PRIMARY KEY (customer_id, id))",
	"CREATE TABLE IF NOT EXISTS countries (code CHAR(2) PRIMARY KEY, name VARCHAR(100) NOT NULL)",
	"INSERT IGNORE INTO countries (code, name) VALUES ('DE', 'Germany'), ('FR', 'France'), ('JP', 'Japan'), ('US', 'United States')",
}

// startUpProxy starts the shard proxy over topo with the built-in config
// (or --config, whose shards, when their names match the topology's, get
// the topology's addresses). Shard keys left out of an INSERT come from the
// ID service at idAddr (gRPC), and cross-shard transactions are recorded by
// the coordinator at txAddr (gRPC), unless --config names others.
func startUpProxy(ctx context.Context, e *env, o upOptions, topo *localdb.Topology, idAddr, txAddr string) (*upProxy, error) {
	cfg := defaultUpConfig()
	if o.config != "" {
		var err error
		if cfg, err = config.Load(o.config, upTLSDir(o.data)); err != nil {
			return nil, err
		}
	} else {
		upTLSDir(o.data)(cfg)
	}
	var shards []config.Shard
	for _, sh := range topo.Shards() {
		s := config.Shard{Name: sh.Name, Primary: sh.Primary().Addr()}
		for _, r := range sh.Replicas() {
			s.Replicas = append(s.Replicas, r.Addr())
		}
		shards = append(shards, s)
	}
	if o.config == "" || sameShardNames(cfg.Shards, shards) {
		cfg.Shards = shards
	}
	if o.config == "" {
		cfg.Databases["test"] = &config.Database{Shard: shards[0].Name}
		// Reads go to the replicas, with read-your-writes per session (the
		// default consistency), whenever there are replicas to read from.
		cfg.ReadWrite.Enabled = len(shards[0].Replicas) > 0
	}
	cfg.Backend.User = localdb.AppUser
	if !cfg.IDService.Enabled() && idAddr != "" {
		cfg.IDService.Addrs = []string{idAddr}
	}
	if !cfg.Transactions.Enabled() && txAddr != "" {
		cfg.Transactions.Coordinator = []string{txAddr}
	}
	if o.dbPort == 0 {
		cfg.Listen, cfg.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
	}
	if o.proxy.listen != "" {
		cfg.Listen = o.proxy.listen
	}
	if o.proxy.admin != "" {
		cfg.AdminListen = o.proxy.admin
	}
	certs, err := prepareTLS(cfg)
	if err != nil {
		return nil, fmt.Errorf("proxy config: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("proxy config: %w", err)
	}
	srv, err := shardproxy.New(ctx, shardproxy.Options{Config: cfg, Logger: e.logger()})
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithCancel(context.Background())
	p := &upProxy{srv: srv, cfg: cfg, tls: certs, cancel: cancel, done: make(chan error, 1)}
	go func() { p.done <- srv.Serve(pctx) }()
	if o.config == "" {
		if err := p.createDemo(ctx); err != nil {
			p.stop()
			return nil, fmt.Errorf("proxy: demo tables: %w", err)
		}
	}
	return p, nil
}

func sameShardNames(a, b []config.Shard) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name {
			return false
		}
	}
	return true
}

// createDemo creates the demo tables through the proxy, as a client would.
func (p *upProxy) createDemo(ctx context.Context) error {
	mc := mysql.NewConfig()
	mc.User, mc.Net, mc.Addr, mc.DBName = p.cfg.Users[0].Name, "tcp", p.srv.Addr(), "demo"
	mc.Passwd = p.cfg.Users[0].Password
	mc.Timeout = 5 * time.Second
	conn, err := mysql.NewConnector(mc)
	if err != nil {
		return err
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	for _, q := range demoSchema {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}

func (p *upProxy) stop() {
	p.cancel()
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
	}
}

// banner prints how to connect to the proxy.
func (p *upProxy) banner(w io.Writer) {
	fmt.Fprintln(w)
	printProxyBanner(w, p.srv, p.cfg)
	printTLS(w, p.cfg, p.tls)
}

func sortStrings(s []string) { sort.Strings(s) }
