package edge

import (
	"io"
	"net/http"
	"slices"
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
// ratio (edge/direct). The load generator, the edge and the ID service
// share the machine; run it on a quiet one:
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

	run := func(url string, sign bool, d time.Duration) float64 {
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
						signer.Sign(req, nil)
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
