package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/strata-db/strata/idserver"
	"github.com/strata-db/strata/idserver/client"
	"github.com/strata-db/strata/raftstore"
)

// benchIDsOptions are `strata bench ids`'s flags.
type benchIDsOptions struct {
	grpc     []string
	http     string
	modes    []string
	duration time.Duration
	httpConc int
	grpcConc int
	batch    uint64
	tag      string
}

func newBenchIDsCmd(e *env) *cobra.Command {
	o := benchIDsOptions{}
	cmd := &cobra.Command{
		Use:   "ids",
		Short: "Measure the ID service: buffered Go client, gRPC batches, HTTP single IDs",
		Long: `ids measures the ID service through its public APIs and prints IDs/s and
latency percentiles per mode:

  client  the Go client's buffered Next, one goroutine
  grpc    gRPC Next with --batch IDs per call, --grpc-concurrency callers
  http    one ID per HTTP GET on the Leaf endpoint, --http-concurrency callers
          (Go's HTTP client costs more CPU than wrk; scripts/bench-ids.sh runs wrk)

Without --grpc/--http it starts a one-node service of its own (in a
temporary directory) and measures that, load and server sharing the cores.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBenchIDs(cmd.Context(), e, o)
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&o.grpc, "grpc", nil, "gRPC addresses of the service (default: start one)")
	f.StringVar(&o.http, "http", "", "HTTP address of the service (default: the one started, or none)")
	f.StringSliceVar(&o.modes, "modes", []string{"client", "grpc", "http"}, "what to measure: client, grpc, http")
	f.DurationVar(&o.duration, "duration", 5*time.Second, "how long each mode runs")
	f.IntVar(&o.httpConc, "http-concurrency", 64, "concurrent HTTP callers")
	f.IntVar(&o.grpcConc, "grpc-concurrency", 16, "concurrent gRPC callers")
	f.Uint64Var(&o.batch, "batch", 1000, "IDs per gRPC call")
	f.StringVar(&o.tag, "tag", "bench", "segment tag to draw from")
	return cmd
}

// benchResult is one mode's figures.
type benchResult struct {
	mode     string
	ids      uint64
	calls    uint64
	elapsed  time.Duration
	p50, p99 time.Duration
	errors   uint64
}

func runBenchIDs(ctx context.Context, e *env, o benchIDsOptions) error {
	if o.duration <= 0 || o.httpConc < 1 || o.grpcConc < 1 || o.batch < 1 {
		return fmt.Errorf("--duration, --http-concurrency, --grpc-concurrency and --batch must be positive")
	}
	if len(o.grpc) == 0 {
		dir, err := os.MkdirTemp("", "strata-bench-ids-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
		rc := raftstore.DefaultConfig()
		rc.NodeID, rc.DataDir, rc.BindAddr, rc.Bootstrap, rc.Logger = "bench", dir, "127.0.0.1:0", true, quiet
		cfg := idserver.DefaultConfig()
		cfg.Logger = quiet
		n, err := idserver.StartNode(idserver.NodeConfig{Service: cfg, Raft: rc, HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0"})
		if err != nil {
			return err
		}
		defer n.Close()
		o.grpc = []string{n.GRPCAddr}
		if o.http == "" {
			o.http = n.HTTPAddr
		}
		fmt.Fprintf(e.stdout, "started a one-node ID service in %s (HTTP %s, gRPC %s)\n", dir, n.HTTPAddr, n.GRPCAddr)
	}
	ccfg := client.DefaultConfig()
	ccfg.Addrs = o.grpc
	cl, err := client.New(ccfg)
	if err != nil {
		return err
	}
	defer cl.Close()
	// Wait for the service to answer (a fresh node elects itself first).
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	_, err = cl.Fetch(wctx, o.tag, 1)
	cancel()
	if err != nil {
		return fmt.Errorf("the ID service does not answer: %w", err)
	}

	var results []benchResult
	for _, m := range o.modes {
		if ctx.Err() != nil {
			break
		}
		var r benchResult
		switch m {
		case "client":
			r = benchClient(ctx, cl, o)
		case "grpc":
			r = benchGRPC(ctx, cl, o)
		case "http":
			if o.http == "" {
				return fmt.Errorf("mode http needs --http")
			}
			r = benchHTTP(ctx, o)
		default:
			return fmt.Errorf("--modes: unknown mode %q (client, grpc, http)", m)
		}
		results = append(results, r)
	}
	w := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "mode\tIDs/s\tcalls/s\tp50\tp99\terrors\t")
	for _, r := range results {
		s := r.elapsed.Seconds()
		fmt.Fprintf(w, "%s\t%.0f\t%.0f\t%v\t%v\t%d\t\n", r.mode, float64(r.ids)/s, float64(r.calls)/s, r.p50, r.p99, r.errors)
	}
	return w.Flush()
}

func benchClient(ctx context.Context, cl *client.Client, o benchIDsOptions) benchResult {
	seq := cl.Sequence(o.tag)
	var n, errs uint64
	start := time.Now()
	deadline := start.Add(o.duration)
	for ctx.Err() == nil {
		for range 10000 {
			if _, err := seq.Next(ctx); err != nil {
				errs++
			}
		}
		n += 10000
		if time.Now().After(deadline) {
			break
		}
	}
	return benchResult{mode: "client (buffered, 1 goroutine)", ids: n - errs, calls: n, elapsed: time.Since(start), errors: errs}
}

// latencies collects samples from many goroutines.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d []time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d...)
	l.mu.Unlock()
}

func (l *latencies) percentiles() (p50, p99 time.Duration) {
	if len(l.d) == 0 {
		return 0, 0
	}
	sort.Slice(l.d, func(i, j int) bool { return l.d[i] < l.d[j] })
	return l.d[len(l.d)/2].Round(time.Microsecond), l.d[len(l.d)*99/100].Round(time.Microsecond)
}

// load runs conc goroutines calling call until the duration is up.
func load(ctx context.Context, conc int, d time.Duration, call func(ctx context.Context) (uint64, error)) (ids, calls, errs uint64, el time.Duration, lat *latencies) {
	var nIDs, nCalls, nErrs atomic.Uint64
	lat = &latencies{}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for ctx.Err() == nil {
				t := time.Now()
				n, err := call(ctx)
				if ctx.Err() != nil {
					break
				}
				if err != nil {
					nErrs.Add(1)
					continue
				}
				mine = append(mine, time.Since(t))
				nIDs.Add(n)
				nCalls.Add(1)
			}
			lat.add(mine)
		}()
	}
	wg.Wait()
	return nIDs.Load(), nCalls.Load(), nErrs.Load(), time.Since(start), lat
}

func benchGRPC(ctx context.Context, cl *client.Client, o benchIDsOptions) benchResult {
	ids, calls, errs, el, lat := load(ctx, o.grpcConc, o.duration, func(ctx context.Context) (uint64, error) {
		rs, err := cl.Fetch(ctx, o.tag, o.batch)
		var n uint64
		for _, r := range rs {
			n += r.Count
		}
		return n, err
	})
	p50, p99 := lat.percentiles()
	return benchResult{mode: fmt.Sprintf("grpc (batch %d, %d callers)", o.batch, o.grpcConc), ids: ids, calls: calls, elapsed: el, p50: p50, p99: p99, errors: errs}
}

func benchHTTP(ctx context.Context, o benchIDsOptions) benchResult {
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: o.httpConc, DisableCompression: true}}
	defer hc.CloseIdleConnections()
	url := "http://" + o.http + "/api/segment/get/" + o.tag
	ids, calls, errs, el, lat := load(ctx, o.httpConc, o.duration, func(ctx context.Context) (uint64, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return 0, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, err
		}
		var buf [32]byte
		k, _ := io.ReadFull(resp.Body, buf[:])
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		if _, err := strconv.ParseUint(string(buf[:k]), 10, 64); err != nil {
			return 0, err
		}
		return 1, nil
	})
	p50, p99 := lat.percentiles()
	return benchResult{mode: fmt.Sprintf("http leaf (1 ID, %d callers)", o.httpConc), ids: ids, calls: calls, elapsed: el, p50: p50, p99: p99, errors: errs}
}
