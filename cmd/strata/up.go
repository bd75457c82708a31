package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/strata-db/strata/edge"
	"github.com/strata-db/strata/localdb"
)

// upOptions are `strata up`'s flags.
type upOptions struct {
	data      string
	config    string
	dbPort    int // first MariaDB port; 0 picks free ports (tests)
	shards    int
	replicas  int
	bufferMem string
	proxy     upProxyOptions
	ids       upIDServerOptions
	tx        upTxcoordOptions
	edge      upEdgeOptions
}

func newUpCmd(e *env) *cobra.Command {
	o := upOptions{}
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Bring up the whole stack on this machine; Ctrl-C stops it",
		Long: `up starts, on this machine, a local MariaDB topology (two shards, each a
primary with one replica, replicating with GTIDs) and the Strata services in
front of it, prints how to connect, and runs until Ctrl-C or SIGTERM, when it
stops everything it started. The data directory is kept for the next start.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runUp(cmd.Context(), e, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.data, "data", ".strata", "data directory (kept between runs)")
	f.StringVar(&o.config, "config", "", "proxy config file (default: the built-in local config)")
	f.IntVar(&o.dbPort, "mariadb-port", 23306, "port of the first MariaDB server; the others follow it (0: free ports)")
	f.IntVar(&o.shards, "shards", 2, "number of shards")
	f.IntVar(&o.replicas, "replicas", 1, "replicas per shard")
	f.StringVar(&o.bufferMem, "innodb-buffer-pool", "128M", "InnoDB buffer pool per MariaDB server")
	addUpProxyFlags(f, &o.proxy)
	addUpIDServerFlags(f, &o.ids)
	addUpTxcoordFlags(f, &o.tx)
	addUpEdgeFlags(f, &o.edge)
	return cmd
}

func runUp(ctx context.Context, e *env, o upOptions) error {
	log := e.logger()
	cfg := localdb.DefaultConfig()
	cfg.Root = filepath.Join(o.data, "mariadb")
	cfg.Shards, cfg.Replicas = o.shards, o.replicas
	cfg.BasePort = o.dbPort
	cfg.BufferPoolSize = o.bufferMem
	cfg.Logger = log

	start := time.Now()
	topo, err := localdb.Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() {
		log.Info("up: stopping")
		if err := topo.Stop(); err != nil {
			log.Error("up: stop mariadb", "err", err)
		}
	}()
	log.Info("up: mariadb topology ready", "servers", len(topo.Servers()), "took", time.Since(start).Round(time.Millisecond))
	// The ID service first: the proxy generates shard keys from it.
	ids, err := startUpIDServer(e, o)
	if err != nil {
		return err
	}
	defer ids.Close()
	tx, err := startUpTxcoord(e, o)
	if err != nil {
		return err
	}
	defer tx.Close()
	proxy, err := startUpProxy(ctx, e, o, topo, ids.GRPCAddr, tx.GRPCAddr)
	if err != nil {
		return err
	}
	defer proxy.stop()
	edgeSrv, edgeSecret, err := startUpEdge(e, o, ids.GRPCAddr, proxy.srv.Addr(), proxy.srv.AdminAddr(), proxy.cfg.Users[0].Name, proxy.cfg.Users[0].Password)
	if err != nil {
		return err
	}
	defer edgeSrv.Close()
	// The console's transaction panels: the proxy's view (in flight, in
	// doubt, decided but unfinished) and the Seata TC's global transactions.
	edgeSrv.SetPanel("transactions", edgeSrv.ProxyPanel("SHOW STRATA TRANSACTIONS"))
	// The cache's panels: its hit ratio, entries and invalidations, and
	// the hottest keys read and written, as the proxy's SHOW statements
	// give them.
	edgeSrv.SetPanel("cache", edgeSrv.ProxyPanel("SHOW STRATA CACHE"))
	edgeSrv.SetPanel("hot_keys", edgeSrv.ProxyPanel("SHOW STRATA HOTKEYS"))
	if u := tx.HTTPURL(); u != "" && o.tx.svc.seataAddr != "off" {
		edgeSrv.SetPanel("seata", edge.URLPanel(u+"/seata/transactions"))
	}

	w := e.stdout
	fmt.Fprintf(w, "Strata is up (data in %s).\n\nMariaDB servers:\n", o.data)
	for _, sh := range topo.Shards() {
		for _, s := range sh.Servers() {
			fmt.Fprintf(w, "  %-4s %-8s %-6s %-16s mariadb -h127.0.0.1 -P%d -u%s   dsn %s\n",
				sh.Name, s.Role(), s.Name, s.Addr(), s.Port, localdb.AppUser, s.DSN(""))
		}
	}
	proxy.banner(w)
	printUpIDServer(w, ids)
	fmt.Fprintf(w, "\nTransaction coordinator (one node): gRPC %s, Raft %s\n", tx.GRPCAddr, tx.Raft.Addr())
	if u := tx.HTTPURL(); u != "" {
		fmt.Fprintf(w, "  admin    %s/transactions (XA decisions not finished), %s/seata/transactions, %s/metrics\n", u, u, u)
	}
	printUpEdge(w, edgeSrv, edgeSecret)
	fmt.Fprintf(w, "\nCtrl-C stops everything; the data directory is kept.\n")
	<-ctx.Done()
	return nil
}
