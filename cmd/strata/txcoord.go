package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/strata-db/strata/raftstore"
	"github.com/strata-db/strata/txcoord"
	"github.com/strata-db/strata/txcoord/seata"
)

// txcoordOptions are `strata txcoord`'s flags.
type txcoordOptions struct {
	id, data           string
	raftAddr, grpcAddr string
	httpAddr           string
	bootstrap          bool
	peers, join        []string
	svc                txServiceFlags
}

// txServiceFlags are the coordinator settings shared by `strata txcoord`
// and `strata up`.
type txServiceFlags struct {
	retention time.Duration
	proposers int
	seataAddr string // Seata RPC for seata-go clients; "" is the default, "off" none
}

func addTxServiceFlags(f *pflag.FlagSet, o *txServiceFlags) {
	d := txcoord.DefaultXAConfig()
	f.DurationVar(&o.retention, "txcoord-retention", d.Retention, "how long a completed commit decision is remembered (recovery of late branch copies)")
	f.IntVar(&o.proposers, "txcoord-proposers", d.Proposers, "Raft entries of XA decisions a node keeps in flight at once (fewer: larger batches, fewer appends, a longer wait)")
	f.StringVar(&o.seataAddr, "seata-addr", "", `Seata RPC address of this node's TC for seata-go clients (default 127.0.0.1:8091; "off": none)`)
}

// txcoordModules makes a coordinator node's modules. Every node of a group
// must run the same ones.
func txcoordModules(o txServiceFlags, reg prometheus.Registerer, log *slog.Logger) ([]txcoord.Module, error) {
	xc := txcoord.DefaultXAConfig()
	xc.Retention, xc.Registerer, xc.Logger = o.retention, reg, log
	if o.proposers != 0 {
		xc.Proposers = o.proposers
	}
	xa, err := txcoord.NewXA(xc)
	if err != nil {
		return nil, err
	}
	mods := []txcoord.Module{xa}
	if o.seataAddr != "off" {
		sc := seata.DefaultConfig()
		if o.seataAddr != "" {
			sc.Addr = o.seataAddr
		}
		sc.Logger = log
		tc, err := seata.New(sc, reg)
		if err != nil {
			return nil, err
		}
		log.Info("txcoord: Seata TC listening", "addr", tc.Addr())
		mods = append(mods, tc)
	}
	return mods, nil
}

// closeSeata releases the Seata TC's listener when its node failed to
// start (a running node closes it itself).
func closeSeata(mods []txcoord.Module) {
	for _, m := range mods {
		if tc, ok := m.(*seata.TC); ok {
			tc.Close()
		}
	}
}

func newTxcoordCmd(e *env) *cobra.Command {
	o := txcoordOptions{}
	cmd := &cobra.Command{
		Use:   "txcoord",
		Short: "Run one node of the transaction coordinator (a Raft group of 1, 3 or 5)",
		Long: `txcoord runs one node of Strata's transaction coordinator: the Raft group
that records the outcome of the proxies' cross-shard (XA) transactions. Every
node serves the gRPC API; writes reach the leader whichever node takes them.

A single node:      strata txcoord --bootstrap
Three nodes:        strata txcoord --id tx1 --raft-addr 127.0.0.1:7111 --grpc-addr 127.0.0.1:9191 \
                        --data t1 --bootstrap --peers tx1=127.0.0.1:7111,tx2=127.0.0.1:7112,tx3=127.0.0.1:7113
                    (the same --peers on tx2 and tx3, each with its own addresses and data)
A node joining:     strata txcoord --id tx4 ... --join 127.0.0.1:7111
Proxies list every node's gRPC address in transactions.coordinator.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runTxcoord(cmd.Context(), e, o)
		},
	}
	f := cmd.Flags()
	d := txcoord.DefaultConfig()
	f.StringVar(&o.id, "id", d.NodeID, "node ID, unique in the group and stable across restarts")
	f.StringVar(&o.data, "data", d.DataDir, "data directory (Raft log, snapshots)")
	f.StringVar(&o.raftAddr, "raft-addr", d.RaftAddr, "Raft address (keep it on a private network)")
	f.StringVar(&o.grpcAddr, "grpc-addr", d.GRPCAddr, "gRPC address for proxies and the other nodes")
	f.StringVar(&o.httpAddr, "http-addr", "", "HTTP address for /metrics, /healthz, /debug/pprof and the admin views /transactions and /seata/transactions (empty: off)")
	f.BoolVar(&o.bootstrap, "bootstrap", false, "form a new group (of this node, or of --peers) if the data directory is empty")
	f.StringSliceVar(&o.peers, "peers", nil, "initial voters as id=raftaddr, this node included (with --bootstrap)")
	f.StringSliceVar(&o.join, "join", nil, "Raft addresses of existing members to ask to add this node")
	addTxServiceFlags(f, &o.svc)
	return cmd
}

func runTxcoord(ctx context.Context, e *env, o txcoordOptions) error {
	log := e.logger()
	cfg := txcoord.DefaultConfig()
	cfg.NodeID, cfg.DataDir, cfg.RaftAddr, cfg.GRPCAddr = o.id, o.data, o.raftAddr, o.grpcAddr
	cfg.Bootstrap, cfg.Join, cfg.Logger = o.bootstrap, o.join, log
	for _, p := range o.peers {
		id, addr, ok := strings.Cut(p, "=")
		if !ok || id == "" || addr == "" {
			return fmt.Errorf("--peers: %q is not id=raftaddr", p)
		}
		cfg.Peers = append(cfg.Peers, raftstore.Peer{ID: id, Addr: addr})
	}
	if !o.bootstrap && len(o.join) == 0 {
		if _, err := os.Stat(filepath.Join(o.data, "raft.db")); errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s holds no Raft state: on the first start pass --bootstrap (form a group) or --join (join one)", o.data)
		}
	}
	reg := prometheus.NewRegistry()
	mods, err := txcoordModules(o.svc, reg, log)
	if err != nil {
		return err
	}
	cfg.Modules, cfg.Registerer = mods, reg
	n, err := txcoord.Start(cfg)
	if err != nil {
		closeSeata(mods)
		return err
	}
	var hs *http.Server
	if o.httpAddr != "" {
		if hs, err = serveTxcoordHTTP(o.httpAddr, reg, n, o.id, mods); err != nil {
			n.Close()
			return err
		}
	}
	fmt.Fprintf(e.stdout, "txcoord %s: gRPC %s, Raft %s, data %s\n", o.id, n.GRPCAddr, n.Raft.Addr(), o.data)
	if hs != nil {
		fmt.Fprintf(e.stdout, "  metrics http://%s/metrics\n", hs.Addr)
	}
	<-ctx.Done()
	log.Info("txcoord: stopping")
	if hs != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = hs.Shutdown(sctx)
		cancel()
	}
	return n.Close()
}

// serveTxcoordHTTP serves /metrics; /debug/pprof; /healthz (200 once a leader is known,
// with this node's role as JSON: {"node", "leader", "leader_id"}); and the
// admin views the console's panels read, as JSON: /transactions (the XA
// decisions whose branches may be unfinished) and /seata/transactions (the
// Seata TC's open global transactions), from this node's replica.
func serveTxcoordHTTP(addr string, g prometheus.Gatherer, n *txcoord.Node, id string, mods []txcoord.Module) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("txcoord: listen HTTP on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	// Profiles, as the proxy's admin port serves them: the coordinator is
	// on every cross-shard commit's path.
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		leader, _ := n.Raft.Leader()
		w.Header().Set("Content-Type", "application/json")
		if leader == "" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"node": id, "leader": n.IsLeader(), "leader_id": leader})
	})
	for _, m := range mods {
		switch m := m.(type) {
		case *txcoord.XA:
			mux.HandleFunc("/transactions", func(w http.ResponseWriter, _ *http.Request) {
				recs, next := m.List(false, 1000)
				type rec struct {
					ID       uint64    `json:"id"`
					Decision string    `json:"decision"`
					Shards   []string  `json:"shards"`
					Owner    string    `json:"owner"`
					Decided  time.Time `json:"decided"`
				}
				out := struct {
					NextTxID   uint64 `json:"next_txid"`
					Unfinished []rec  `json:"unfinished"`
				}{NextTxID: next, Unfinished: []rec{}}
				for _, r := range recs {
					out.Unfinished = append(out.Unfinished, rec{ID: r.TxID, Decision: strings.ToLower(r.Decision.String()), Shards: r.Shards, Owner: r.Owner, Decided: time.UnixMilli(r.DecidedMs).UTC()})
				}
				w.Header().Set("Content-Type", "application/json")
				_ = json.NewEncoder(w).Encode(out)
			})
		case *seata.TC:
			mux.Handle("/seata/transactions", m.ListHandler())
		}
	}
	hs := &http.Server{Addr: ln.Addr().String(), Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	return hs, nil
}

// upTxcoordOptions are the coordinator's flags of `strata up`.
type upTxcoordOptions struct {
	raft, grpc, http string
	svc              txServiceFlags
}

func addUpTxcoordFlags(f *pflag.FlagSet, o *upTxcoordOptions) {
	f.StringVar(&o.raft, "txcoord-raft", "", "coordinator Raft address (default 127.0.0.1:7110; a free port with --mariadb-port 0)")
	f.StringVar(&o.grpc, "txcoord-grpc", "", "coordinator gRPC address (default 127.0.0.1:9091; a free port with --mariadb-port 0)")
	f.StringVar(&o.http, "txcoord-http", "", `coordinator HTTP address: /metrics, /healthz, /transactions, /seata/transactions (default 127.0.0.1:8092; a free port with --mariadb-port 0; "off": none)`)
	addTxServiceFlags(f, &o.svc)
}

// upTxcoord is `strata up`'s coordinator node and its HTTP server (nil
// with --txcoord-http off).
type upTxcoord struct {
	*txcoord.Node
	http *http.Server
}

// Close stops the HTTP server, then the node.
func (u *upTxcoord) Close() error {
	if u.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = u.http.Shutdown(ctx)
		cancel()
	}
	return u.Node.Close()
}

// HTTPURL is the base URL of its HTTP server ("" without one).
func (u *upTxcoord) HTTPURL() string {
	if u.http == nil {
		return ""
	}
	return "http://" + u.http.Addr
}

// startUpTxcoord starts `strata up`'s single-node coordinator, its data in
// DATA/txcoord.
func startUpTxcoord(e *env, o upOptions) (*upTxcoord, error) {
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
	log := e.logger()
	reg := prometheus.NewRegistry()
	if o.tx.svc.seataAddr != "off" {
		o.tx.svc.seataAddr = def(o.tx.svc.seataAddr, "8091")
	}
	mods, err := txcoordModules(o.tx.svc, reg, log)
	if err != nil {
		return nil, err
	}
	cfg := txcoord.DefaultConfig()
	cfg.DataDir = filepath.Join(o.data, "txcoord")
	cfg.RaftAddr, cfg.GRPCAddr = def(o.tx.raft, "7110"), def(o.tx.grpc, "9091")
	cfg.Modules, cfg.Registerer, cfg.Logger = mods, reg, log
	n, err := txcoord.Start(cfg)
	if err != nil {
		closeSeata(mods)
		return nil, fmt.Errorf("up: transaction coordinator: %w", err)
	}
	u := &upTxcoord{Node: n}
	if o.tx.http != "off" {
		if u.http, err = serveTxcoordHTTP(def(o.tx.http, "8092"), reg, n, cfg.NodeID, mods); err != nil {
			n.Close()
			return nil, fmt.Errorf("up: transaction coordinator: %w", err)
		}
	}
	return u, nil
}
