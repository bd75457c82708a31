package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/strata-db/strata/edge/client"
)

// edgeBench: GET /v1/ids/bench (one segment ID, JSON) from concurrency
// callers (default 64) directly on the ID service's HTTP API (the
// reference) and through `strata edge` in front of the same service
// (signature checked, rate limits of 10^7/s so none refuses, gRPC to the
// service), as edge BenchmarkEdgeCost runs them. Signatures are made
// before each round: the callers' signing runs on their own machines in
// production and would here take CPU from the edge being measured.
// Params: concurrency.
type edgeBench struct{}

const (
	benchApp    = "bench"
	benchSecret = "bench-secret-0123456789abcdef0123"
)

func (edgeBench) Setup(ctx context.Context, e *Env) (vs []Variant, stop func(), err error) {
	s := &stack{}
	defer func() {
		if err != nil {
			s.stop()
		}
	}()
	httpAddr, _ := freeAddr()
	grpcAddr, _ := freeAddr()
	raftAddr, _ := freeAddr()
	ids, err := startProc(e.Dir, "idserver", nil, e.Binary, "idserver", "--log-level", "warn", "--bootstrap", "--id", "bench",
		"--data", filepath.Join(e.Dir, "idserver"), "--raft-addr", raftAddr, "--http-addr", httpAddr, "--grpc-addr", grpcAddr)
	if err != nil {
		return nil, s.stop, err
	}
	s.add(ids.stop)
	edgeAddr, _ := freeAddr()
	conf := filepath.Join(e.Dir, "edge.yaml")
	yml := fmt.Sprintf("listen: %s\napps:\n  - {name: %s, secret: %q}\nidserver: {addrs: [%q]}\nproxy: {addr: \"\", admin_url: \"\"}\nlimits:\n  app: {rate: 10000000, burst: 1000000}\n  ip: {rate: 10000000, burst: 1000000}\n",
		edgeAddr, benchApp, benchSecret, grpcAddr)
	if err := os.WriteFile(conf, []byte(yml), 0o644); err != nil {
		return nil, s.stop, err
	}
	ep, err := startProc(e.Dir, "edge", nil, e.Binary, "edge", "--log-level", "warn", "--access-log", "", "--config", conf)
	if err != nil {
		return nil, s.stop, err
	}
	s.add(ep.stop)
	conc := param(e, "concurrency", 64)
	tr := &http.Transport{MaxIdleConnsPerHost: conc, DisableCompression: true}
	s.add(tr.CloseIdleConnections)
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	signer := client.Signer{Key: benchApp, Secret: []byte(benchSecret)}
	type sig struct{ ts, nonce, mac string }
	get := func(ctx context.Context, url string, sigs chan sig) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if sigs != nil {
			select {
			case sg := <-sigs:
				req.Header[client.HeaderKey] = []string{signer.Key}
				req.Header[client.HeaderTimestamp] = []string{sg.ts}
				req.Header[client.HeaderNonce] = []string{sg.nonce}
				req.Header[client.HeaderSignature] = []string{sg.mac}
			default:
				signer.Sign(req, nil)
			}
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: HTTP %d", url, resp.StatusCode)
		}
		return nil
	}
	direct := "http://" + httpAddr + "/v1/ids/bench"
	edged := "http://" + edgeAddr + "/v1/ids/bench"
	// Ready when both answer.
	var last error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && ctx.Err() == nil; time.Sleep(100 * time.Millisecond) {
		if last = get(ctx, direct, nil); last == nil {
			if last = get(ctx, edged, make(chan sig)); last == nil {
				break
			}
		}
	}
	if last != nil {
		return nil, s.stop, fmt.Errorf("the ID service or the edge does not answer: %w", last)
	}
	presign := func(n int) chan sig {
		ch := make(chan sig, n)
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		for range n {
			nonce := client.NewNonce()
			ch <- sig{ts, nonce, client.Mac(signer.Secret, client.Canonical(http.MethodGet, "/v1/ids/bench", nil, client.EmptyBodyHash, ts, nonce))}
		}
		return ch
	}
	return []Variant{
		{Name: fmt.Sprintf("ID service HTTP direct, %d callers", conc), Reference: true, Run: func(ctx context.Context, d time.Duration) (Round, error) {
			return perOp(ctx, conc, d, "requests/s", func(ctx context.Context) error { return get(ctx, direct, nil) }), nil
		}},
		{Name: fmt.Sprintf("through strata edge (signed), %d callers", conc), Run: func(ctx context.Context, d time.Duration) (Round, error) {
			sigs := presign(int(40000 * d.Seconds()))
			return perOp(ctx, conc, d, "requests/s", func(ctx context.Context) error { return get(ctx, edged, sigs) }), nil
		}},
	}, s.stop, nil
}
