package edge

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-db/strata/edge/client"
)

// BenchmarkEdgeCost measures the edge's cost on /v1/ids: the same load
// loop (64 goroutines, keep-alive, six alternating rounds of 1.5 s) against
// the ID service's own HTTP endpoint and through the edge with signatures
// checked and limits on (set far above the load, so every request pays
// for a bucket and none is refused). It reports both rates and their
// ratio (edge/direct). Signatures are made before each round (see
// presign). The load generator, the edge and the ID service share the
// machine; run it on a quiet one:
//
//	go test -run '^$' -bench BenchmarkEdgeCost -benchtime 1x ./edge/
func BenchmarkEdgeCost(b *testing.B) {
	n := startIDNode(b)
	cfg := testConfig(n.GRPCAddr)
	cfg.Limits.App = Rule{Rate: 1e7, Burst: 1e6}
	cfg.Limits.IP = Rule{Rate: 1e7, Burst: 1e6}
	s := startEdge(b, cfg, Options{})
	signer := client.Signer{Key: testApp, Secret: []byte(testSecret)}
	direct := "http://" + n.HTTPAddr + "/v1/ids/bench"
	edged := s.URL() + "/v1/ids/bench"

	// presigned holds signatures made before a round: the load
	// generator's own signing runs on the clients' machines in production
	// and would here take CPU from the edge it measures.
	type sig struct{ ts, nonce, mac string }
	presign := func(n int) chan sig {
		ch := make(chan sig, n)
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		for range n {
			nonce := client.NewNonce()
			ch <- sig{ts, nonce, client.Mac(signer.Secret, client.Canonical("GET", "/v1/ids/bench", nil, client.EmptyBodyHash, ts, nonce))}
		}
		return ch
	}
	run := func(url string, sign bool, d time.Duration) float64 {
		var sigs chan sig
		if sign {
			sigs = presign(int(40000 * d.Seconds()))
		}
		tr := &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}
		defer tr.CloseIdleConnections()
		hc := &http.Client{Transport: tr}
		var ok, bad atomic.Int64
		stop := time.Now().Add(d)
		var wg sync.WaitGroup
		for range 64 {
			wg.Go(func() {
				for time.Now().Before(stop) {
					req, _ := http.NewRequest("GET", url, nil)
					if sign {
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
						bad.Add(1)
						continue
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode == 200 {
						ok.Add(1)
					} else {
						bad.Add(1)
					}
				}
			})
		}
		wg.Wait()
		if bad.Load() > 0 {
			b.Errorf("%s: %d failed requests", url, bad.Load())
		}
		return float64(ok.Load()) / d.Seconds()
	}
	run(direct, false, 500*time.Millisecond) // warm both paths
	run(edged, true, 500*time.Millisecond)
	// Short alternating rounds and the median ratio: on a shared machine
	// the load of others changes from second to second.
	var dSum, eSum float64
	var ratios []float64
	const rounds = 6
	for i := range rounds {
		d := run(direct, false, 1500*time.Millisecond)
		e := run(edged, true, 1500*time.Millisecond)
		b.Logf("round %d: ID service HTTP %.0f req/s, through the edge %.0f req/s: %.2fx", i+1, d, e, e/d)
		dSum += d
		eSum += e
		ratios = append(ratios, e/d)
	}
	slices.Sort(ratios)
	b.ReportMetric(dSum/rounds, "direct-req/s")
	b.ReportMetric(eSum/rounds, "edge-req/s")
	b.ReportMetric(eSum/dSum, "edge/direct")
	b.ReportMetric((ratios[rounds/2-1]+ratios[rounds/2])/2, "median-edge/direct")
}

// BenchmarkHandlers is the CPU each side spends on one /v1/ids request
// in its handler, without the network and HTTP parsing both share: the
// ID service's own HTTP handler against the edge's (signature checked,
// nonce recorded, both buckets, breaker, the ID from the edge's buffer).
// Less sensitive to a busy machine than BenchmarkEdgeCost.
func BenchmarkHandlers(b *testing.B) {
	n := startIDNode(b)
	b.Run("idserver", func(b *testing.B) {
		h := n.Server.Handler()
		req := httptest.NewRequest("GET", "/v1/ids/bench", nil)
		b.ReportAllocs()
		for b.Loop() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != 200 {
				b.Fatal(w.Code, w.Body.String())
			}
		}
	})
	b.Run("edge", func(b *testing.B) {
		cfg := testConfig(n.GRPCAddr)
		cfg.Limits.App = Rule{Rate: 1e9, Burst: 1e9}
		cfg.Limits.IP = Rule{Rate: 1e9, Burst: 1e9}
		s, err := New(cfg, Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		signer := client.Signer{Key: testApp, Secret: []byte(testSecret)}
		// Every request needs its own nonce: sign b.N of them first.
		reqs := make([]*http.Request, b.N)
		for i := range reqs {
			reqs[i] = httptest.NewRequest("GET", "/v1/ids/bench", nil)
			signer.Sign(reqs[i], nil)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			w := httptest.NewRecorder()
			s.ServeHTTP(w, reqs[i])
			if w.Code != 200 {
				b.Fatal(w.Code, w.Body.String())
			}
		}
	})
}
