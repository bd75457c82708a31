package chaos

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-db/strata/localdb"
)

// TestExternalNetworkFaults: a drill naming a running stack by its
// addresses (a localdb topology and a `strata proxy` the test started)
// puts its own Toxiproxy link between the workloads and the proxy, so that
// latency, black hole, reset_peer and bandwidth work there; each shows in
// the timeline, every fault is undone, and the set checker passes.
func TestExternalNetworkFaults(t *testing.T) {
	t.Parallel()
	topo := localdb.StartForTest(t, localdb.TestConfig(1, 0))
	proxy := startTestProxy(t, topo)
	yml := fmt.Sprintf(`name: external-network
target:
  external: {proxy: %q, database: chaos}
duration: 12s
settle: 1s
workloads:
  - {kind: set, clients: 2}
faults:
  - {kind: latency, target: proxy, at: 1s, for: 3s, params: {latency: 300ms}}
  - {kind: timeout, target: proxy, at: 5s, for: 2s}
  - {kind: reset_peer, target: proxy, at: 8s, for: 1s}
  - {kind: bandwidth, target: proxy, at: 10s, for: 1s, params: {rate: 1}}
`, proxy)
	path := filepath.Join(t.TempDir(), "drill.yaml")
	if err := os.WriteFile(path, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := Run(ctx, d, Options{StateDir: t.TempDir(), Logger: localdb.TestLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	PrintSummary(&sb, rep)
	t.Log(sb.String())
	if !rep.Passed {
		t.Fatal("drill failed")
	}
	for _, f := range rep.Faults {
		if f.InjectErr != "" || f.RecoverErr != "" || f.End <= f.Start {
			t.Errorf("fault %s: %+v", f.Name, f)
		}
	}
	// Latency both ways: each insert (a round trip or two) takes at least
	// 600ms in the seconds wholly inside the window.
	slow, errs := 0, 0
	for _, s := range rep.Timeline {
		if s.T >= 2 && s.T <= 3 && s.Ops > 0 {
			if s.P50ms < 500 {
				t.Errorf("second %d inside the latency window: p50 %.0fms", s.T, s.P50ms)
			}
			slow++
		}
		if s.T >= 5 && s.T <= 12 {
			errs += s.Errors
		}
	}
	if slow == 0 {
		t.Errorf("no operation completed inside the latency window: %+v", rep.Timeline)
	}
	if errs == 0 {
		t.Errorf("the black hole and the resets caused no error: %+v", rep.Timeline)
	}
	// Undone: the proxy answers promptly through the drill's path again
	// (checked by the set checker's final read) and directly.
	if !dialable(proxy) {
		t.Errorf("proxy %s not reachable after the drill", proxy)
	}
}
