package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/strata-db/strata/idserver"
	"github.com/strata-db/strata/raftstore"
)

// idserverOptions are `strata idserver`'s flags.
type idserverOptions struct {
	id, data                     string
	raftAddr, httpAddr, grpcAddr string
	bootstrap, chaosClock        bool
	peers, join                  []string
	svc                          idServiceFlags
}

// idServiceFlags are the service settings shared by `strata idserver` and
// `strata up`.
type idServiceFlags struct {
	epoch                  string
	timeBits, workerBits   int
	seqBits                int
	defaultStep, maxStep   uint64
	maxTags                int
	lease, workerTTL       time.Duration
	reserve, backwardWait  time.Duration
	maxHTTPCount, maxGRPCC uint64
}

func addIDServiceFlags(f *pflag.FlagSet, o *idServiceFlags) {
	d := idserver.DefaultConfig()
	f.StringVar(&o.epoch, "snowflake-epoch", time.UnixMilli(d.Snowflake.Layout.EpochMs).UTC().Format(time.RFC3339), "snowflake epoch (RFC 3339); the same on every node")
	f.IntVar(&o.timeBits, "snowflake-time-bits", d.Snowflake.Layout.TimeBits, "snowflake bits of milliseconds since the epoch")
	f.IntVar(&o.workerBits, "snowflake-worker-bits", d.Snowflake.Layout.WorkerBits, "snowflake bits of worker ID")
	f.IntVar(&o.seqBits, "snowflake-sequence-bits", d.Snowflake.Layout.SequenceBits, "snowflake bits of sequence (time+worker+sequence = 63)")
	f.DurationVar(&o.workerTTL, "snowflake-worker-ttl", d.Snowflake.WorkerTTL, "snowflake worker lease TTL")
	f.DurationVar(&o.reserve, "snowflake-reserve", d.Snowflake.Reserve, "how far ahead of the clock a node commits the timestamps it may use")
	f.DurationVar(&o.backwardWait, "snowflake-max-backward-wait", d.Snowflake.MaxBackwardWait, "clock steps back up to this are waited out; further back, requests fail")
	f.Uint64Var(&o.defaultStep, "default-step", d.DefaultStep, "step of a segment tag created on first use")
	f.Uint64Var(&o.maxStep, "max-step", d.MaxStep, "largest dynamic step")
	f.IntVar(&o.maxTags, "max-tags", d.MaxTags, "most segment tags the cluster holds")
	f.Uint64Var(&o.maxHTTPCount, "max-http-count", d.MaxHTTPCount, "largest count of one HTTP request")
	f.Uint64Var(&o.maxGRPCC, "max-grpc-count", d.MaxGRPCCount, "largest count of one gRPC request")
	f.DurationVar(&o.lease, "lease", d.Lease, fmt.Sprintf("leader lease for serving cached ranges; at most half the Raft heartbeat timeout (%v)", raftstore.DefaultConfig().HeartbeatTimeout))
}

func (o idServiceFlags) config() (idserver.Config, error) {
	cfg := idserver.DefaultConfig()
	epoch, err := time.Parse(time.RFC3339, o.epoch)
	if err != nil {
		return cfg, fmt.Errorf("--snowflake-epoch %q: %w", o.epoch, err)
	}
	cfg.Snowflake.Layout = idserver.Layout{EpochMs: epoch.UnixMilli(), TimeBits: o.timeBits, WorkerBits: o.workerBits, SequenceBits: o.seqBits}
	cfg.Snowflake.WorkerTTL, cfg.Snowflake.Reserve, cfg.Snowflake.MaxBackwardWait = o.workerTTL, o.reserve, o.backwardWait
	cfg.DefaultStep, cfg.MaxStep, cfg.MaxTags = o.defaultStep, o.maxStep, o.maxTags
	cfg.MaxHTTPCount, cfg.MaxGRPCCount, cfg.Lease = o.maxHTTPCount, o.maxGRPCC, o.lease
	return cfg, cfg.Validate()
}

func newIDServerCmd(e *env) *cobra.Command {
	o := idserverOptions{}
	cmd := &cobra.Command{
		Use:   "idserver",
		Short: "Run one node of the global ID service (a Raft group of 1, 3 or 5)",
		Long: `idserver runs one node of Strata's ID service: segment IDs per tag and
snowflake IDs, over HTTP (JSON, Leaf-compatible) and gRPC, replicated with
Raft. Every node answers; followers forward segment requests to the leader.

A single node:      strata idserver --bootstrap
Three nodes:        strata idserver --id n1 --raft-addr 127.0.0.1:7101 --http-addr 127.0.0.1:8181 --grpc-addr 127.0.0.1:9191 \
                        --data d1 --bootstrap --peers n1=127.0.0.1:7101,n2=127.0.0.1:7102,n3=127.0.0.1:7103
                    (the same --peers on n2 and n3, each with its own addresses and data)
A node joining:     strata idserver --id n4 ... --join 127.0.0.1:7101`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runIDServer(cmd.Context(), e, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.id, "id", "id1", "node ID, unique in the cluster and stable across restarts")
	f.StringVar(&o.data, "data", filepath.Join(".strata", "idserver"), "data directory (Raft log, snapshots)")
	f.StringVar(&o.raftAddr, "raft-addr", "127.0.0.1:7100", "Raft address (keep it on a private network)")
	f.StringVar(&o.httpAddr, "http-addr", "127.0.0.1:8081", "HTTP API address (JSON, Leaf-compatible, /metrics, /healthz)")
	f.StringVar(&o.grpcAddr, "grpc-addr", "127.0.0.1:9090", "gRPC API address")
	f.BoolVar(&o.bootstrap, "bootstrap", false, "form a new cluster (of this node, or of --peers) if the data directory is empty")
	f.StringSliceVar(&o.peers, "peers", nil, "initial voters as id=raftaddr, this node included (with --bootstrap)")
	f.StringSliceVar(&o.join, "join", nil, "Raft addresses of existing members to ask to add this node")
	f.BoolVar(&o.chaosClock, "chaos-clock", false, "for chaos drills only: read a clock that PUT /debug/chaos/clock?offset=D on the HTTP API moves (clock_skew faults); off by default")
	addIDServiceFlags(f, &o.svc)
	return cmd
}

func runIDServer(ctx context.Context, e *env, o idserverOptions) error {
	log := e.logger()
	svc, err := o.svc.config()
	if err != nil {
		return err
	}
	rc := raftstore.DefaultConfig()
	rc.NodeID, rc.DataDir, rc.BindAddr = o.id, o.data, o.raftAddr
	rc.Bootstrap, rc.Join, rc.Logger = o.bootstrap, o.join, log
	for _, p := range o.peers {
		id, addr, ok := strings.Cut(p, "=")
		if !ok || id == "" || addr == "" {
			return fmt.Errorf("--peers: %q is not id=raftaddr", p)
		}
		rc.Peers = append(rc.Peers, raftstore.Peer{ID: id, Addr: addr})
	}
	if !o.bootstrap && len(o.join) == 0 {
		if _, err := os.Stat(filepath.Join(o.data, "raft.db")); errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s holds no Raft state: on the first start pass --bootstrap (form a cluster) or --join (join one)", o.data)
		}
	}
	reg := prometheus.NewRegistry()
	svc.Registerer, svc.Gatherer, svc.Logger = reg, reg, log
	if o.chaosClock {
		svc.ChaosClock = &idserver.ChaosClock{}
		log.Warn("idserver: --chaos-clock: the clock can be moved through PUT /debug/chaos/clock (for drills, never in production)")
	}
	n, err := idserver.StartNode(idserver.NodeConfig{Service: svc, Raft: rc, HTTPAddr: o.httpAddr, GRPCAddr: o.grpcAddr})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "idserver %s: HTTP %s, gRPC %s, Raft %s, data %s\n", o.id, n.HTTPAddr, n.GRPCAddr, n.Raft.Addr(), o.data)
	fmt.Fprintf(e.stdout, "  curl http://%s/api/segment/get/orders\n", n.HTTPAddr)
	<-ctx.Done()
	log.Info("idserver: stopping")
	return n.Close()
}
