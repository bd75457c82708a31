package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strata-db/strata/idserver/client"
)

// idsBench measures a one-node ID service (`strata idserver`, started in
// the scratch directory) through its public APIs: one ID per HTTP GET on
// the Leaf endpoint (http_concurrency callers, 64), gRPC Next with batches
// of batch IDs (grpc_concurrency callers, 16; batch 1000), and the Go
// client's buffered Next from one goroutine. Params as named.
type idsBench struct{}

func (idsBench) Setup(ctx context.Context, e *Env) (vs []Variant, stop func(), err error) {
	// grpc= and http= measure a running service instead of starting one.
	httpAddr, grpcAddr := e.Params["http"], e.Params["grpc"]
	stopServer := func() {}
	if grpcAddr == "" {
		httpAddr, _ = freeAddr()
		grpcAddr, _ = freeAddr()
		raftAddr, _ := freeAddr()
		p, err := startProc(e.Dir, "idserver", nil, e.Binary, "idserver", "--log-level", "warn", "--bootstrap", "--id", "bench",
			"--data", filepath.Join(e.Dir, "idserver"), "--raft-addr", raftAddr, "--http-addr", httpAddr, "--grpc-addr", grpcAddr)
		if err != nil {
			return nil, func() {}, err
		}
		stopServer = p.stop
	}
	cfg := client.DefaultConfig()
	cfg.Addrs = []string{grpcAddr}
	cl, err := client.New(cfg)
	if err != nil {
		stopServer()
		return nil, func() {}, err
	}
	stop = func() { cl.Close(); stopServer() }
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		if _, err = cl.Fetch(wctx, "bench", 1); err == nil || wctx.Err() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		stop()
		return nil, func() {}, fmt.Errorf("the ID service does not answer: %w", err)
	}
	httpConc, grpcConc, batch := param(e, "http_concurrency", 64), param(e, "grpc_concurrency", 16), uint64(param(e, "batch", 1000))
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: httpConc, DisableCompression: true}}
	url := "http://" + httpAddr + "/api/segment/get/bench"
	vs = []Variant{
		{Name: fmt.Sprintf("HTTP, 1 ID per GET, %d callers", httpConc), Reference: true, Run: func(ctx context.Context, d time.Duration) (Round, error) {
			return load(ctx, httpConc, d, func(ctx context.Context) (uint64, error) {
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
			}), nil
		}},
		{Name: fmt.Sprintf("gRPC, batches of %d, %d callers", batch, grpcConc), Run: func(ctx context.Context, d time.Duration) (Round, error) {
			return load(ctx, grpcConc, d, func(ctx context.Context) (uint64, error) {
				rs, err := cl.Fetch(ctx, "bench", batch)
				var n uint64
				for _, r := range rs {
					n += r.Count
				}
				return n, err
			}), nil
		}},
		{Name: "Go client, buffered Next, 1 goroutine", Run: func(ctx context.Context, d time.Duration) (Round, error) {
			seq := cl.Sequence("bench")
			return load(ctx, 1, d, func(ctx context.Context) (uint64, error) {
				for range 1000 {
					if _, err := seq.Next(ctx); err != nil {
						return 0, err
					}
				}
				return 1000, nil
			}), nil
		}},
	}
	if httpAddr == "" {
		vs = vs[1:] // a running service named by its gRPC address only
	}
	return vs, stop, nil
}

// load runs conc goroutines calling call until d is up; each call returns
// how many IDs it got.
func load(ctx context.Context, conc int, d time.Duration, call func(ctx context.Context) (uint64, error)) Round {
	var ids, errs atomic.Uint64
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	start := time.Now()
	secs := int(d/time.Second) + 1
	perSec := make([]atomic.Uint64, secs)
	var mu sync.Mutex
	var lat []time.Duration
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
					errs.Add(1)
					continue
				}
				if len(mine) < 200000 {
					mine = append(mine, time.Since(t))
				}
				ids.Add(n)
				if i := int(time.Since(start) / time.Second); i < secs {
					perSec[i].Add(n)
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	r := Round{Unit: "IDs/s", Rate: float64(ids.Load()) / el, Errors: float64(errs.Load()) / el}
	for i := 0; i < secs-1; i++ {
		r.PerSecond = append(r.PerSecond, float64(perSec[i].Load()))
	}
	if len(lat) > 0 {
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		var sum time.Duration
		for _, l := range lat {
			sum += l
		}
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		r.AvgMs, r.P50Ms, r.P95Ms, r.P99Ms = ms(sum/time.Duration(len(lat))), ms(lat[len(lat)/2]), ms(lat[len(lat)*95/100]), ms(lat[len(lat)*99/100])
	}
	return r
}
