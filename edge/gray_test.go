package edge

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/strata-db/strata/edge/client"
)

// TestGrayRelease: over 10,000 users the canary gets its configured share
// within 2 points, each user always lands on the same variant, the share
// changes at run time, and the metrics count each variant.
func TestGrayRelease(t *testing.T) {
	stable, canary := startIDNode(t), startIDNode(t)
	cfg := testConfig(stable.GRPCAddr)
	cfg.Gray = []GrayRule{{Route: "ids", App: testApp, Share: 0.2, By: "header:X-User-Id", Canary: "http://" + canary.HTTPAddr}}
	reg := prometheus.NewRegistry()
	s := startEdge(t, cfg, Options{Registerer: reg, Gatherer: reg})
	signer := client.Signer{Key: testApp, Secret: []byte(testSecret)}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32}}

	// variants sends one request per user and returns each user's variant.
	variants := func(users []string) map[string]string {
		out := make(map[string]string, len(users))
		var mu sync.Mutex
		work := make(chan string)
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				for u := range work {
					req, _ := http.NewRequest("GET", s.URL()+"/v1/ids/gray", nil)
					req.Header.Set("X-User-Id", u)
					signer.Sign(req, nil)
					resp, err := hc.Do(req)
					if err != nil {
						t.Error(err)
						continue
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					v := resp.Header.Get("X-Strata-Variant")
					if resp.StatusCode != 200 || !strings.Contains(string(b), `"ids":[`) || (v != variantStable && v != variantCanary) {
						t.Errorf("user %s: %d %q %s", u, resp.StatusCode, v, b)
					}
					mu.Lock()
					out[u] = v
					mu.Unlock()
				}
			})
		}
		for _, u := range users {
			work <- u
		}
		close(work)
		wg.Wait()
		return out
	}
	share := func(m map[string]string) float64 {
		n := 0
		for _, v := range m {
			if v == variantCanary {
				n++
			}
		}
		return float64(n) / float64(len(m))
	}

	users := make([]string, 10000)
	for i := range users {
		users[i] = fmt.Sprintf("user-%d", i)
	}
	first := variants(users)
	if got := share(first); math.Abs(got-0.2) > 0.02 {
		t.Fatalf("canary share over 10,000 users: %.4f, want 0.2 ± 0.02", got)
	} else {
		t.Logf("canary share over 10,000 users: %.4f (configured 0.2)", got)
	}
	again := variants(users[:1000])
	for _, u := range users[:1000] {
		if again[u] != first[u] {
			t.Fatalf("user %s went to %s, then to %s", u, first[u], again[u])
		}
	}
	canaryN := testutil.ToFloat64(s.m.requests.WithLabelValues("ids", testApp, "200", variantCanary))
	stableN := testutil.ToFloat64(s.m.requests.WithLabelValues("ids", testApp, "200", variantStable))
	if int(canaryN+stableN) != 11000 || math.Abs(canaryN/(canaryN+stableN)-share(first)) > 0.01 {
		t.Fatalf("metrics: canary %v, stable %v, want 11000 in all at the measured share", canaryN, stableN)
	}

	// The share changes at run time; users already on the canary stay.
	if _, err := adminClient(s).Do(ctxT(t, 10*time.Second), "PUT", "/v1/admin/gray", []byte(`{"route":"ids","app":"shop","share":0.5}`)); err != nil {
		t.Fatal(err)
	}
	wider := variants(users[:3000])
	if got := share(wider); math.Abs(got-0.5) > 0.02 {
		t.Fatalf("canary share of 3,000 users after the change to 0.5: %.4f", got)
	}
	for _, u := range users[:3000] {
		if first[u] == variantCanary && wider[u] != variantCanary {
			t.Fatalf("user %s left the canary when its share grew", u)
		}
	}
	out, err := adminClient(s).Do(ctxT(t, 10*time.Second), "GET", "/v1/admin/gray", nil)
	if err != nil || !strings.Contains(string(out), `"share":0.5`) {
		t.Fatalf("gray status: %s %v", out, err)
	}
}

// TestGrayBucketsSpread: the hash spreads similar subjects evenly (a
// property of grayBucket alone, checked over many more subjects than the
// HTTP test sends).
func TestGrayBucketsSpread(t *testing.T) {
	const n = 200000
	below := 0
	for i := range n {
		if grayBucket("ids", "shop", fmt.Sprint(i)) < 1000 {
			below++
		}
	}
	if got := float64(below) / n; math.Abs(got-0.1) > 0.005 {
		t.Fatalf("10%% share: %.4f", got)
	}
}
