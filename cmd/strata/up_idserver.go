package main

import (
	"fmt"
	"io"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"

	"github.com/strata-db/strata/idserver"
	"github.com/strata-db/strata/raftstore"
)

// upIDServerOptions are the ID service's flags of `strata up`.
type upIDServerOptions struct {
	raft, http, grpc string
	svc              idServiceFlags
}

func addUpIDServerFlags(f *pflag.FlagSet, o *upIDServerOptions) {
	f.StringVar(&o.raft, "idserver-raft", "", "ID service Raft address (default 127.0.0.1:7100; a free port with --mariadb-port 0)")
	f.StringVar(&o.http, "idserver-http", "", "ID service HTTP address (default 127.0.0.1:8081; a free port with --mariadb-port 0)")
	f.StringVar(&o.grpc, "idserver-grpc", "", "ID service gRPC address (default 127.0.0.1:9090; a free port with --mariadb-port 0)")
	addIDServiceFlags(f, &o.svc)
}

// startUpIDServer starts `strata up`'s single-node ID service, its data in
// DATA/idserver.
func startUpIDServer(e *env, o upOptions) (*idserver.Node, error) {
	def := func(v, port string) string {
		switch {
		case v != "":
			return v
		case o.dbPort == 0:
			return "127.0.0.1:0"
		default:
			return "127.0.0.1:" + port
		}
	}
	svc, err := o.ids.svc.config()
	if err != nil {
		return nil, err
	}
	log := e.logger()
	reg := prometheus.NewRegistry()
	svc.Registerer, svc.Gatherer, svc.Logger = reg, reg, log
	rc := raftstore.DefaultConfig()
	rc.NodeID, rc.DataDir, rc.BindAddr = "id1", filepath.Join(o.data, "idserver"), def(o.ids.raft, "7100")
	rc.Bootstrap, rc.Logger = true, log
	n, err := idserver.StartNode(idserver.NodeConfig{Service: svc, Raft: rc, HTTPAddr: def(o.ids.http, "8081"), GRPCAddr: def(o.ids.grpc, "9090")})
	if err != nil {
		return nil, fmt.Errorf("up: ID service: %w", err)
	}
	return n, nil
}

func printUpIDServer(w io.Writer, n *idserver.Node) {
	fmt.Fprintf(w, "\nID service (one node):\n  HTTP %s   curl http://%s/api/segment/get/orders   curl 'http://%s/v1/ids/orders?count=3'\n  gRPC %s   strata bench ids --grpc %s\n",
		n.HTTPAddr, n.HTTPAddr, n.HTTPAddr, n.GRPCAddr, n.GRPCAddr)
}
