package edge

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-db/strata/edge/client"
)

// writeDrillReports writes two drill reports in the shape of package
// chaos's report.json (replica-kill passed, then partition failed) under
// a temporary directory and returns it.
func writeDrillReports(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for i, r := range []struct {
		name   string
		passed bool
	}{{"replica-kill", true}, {"partition", false}} {
		var tl []map[string]any
		for s := range 12 {
			errs := 0
			if !r.passed && s >= 4 && s < 7 {
				errs = 30
			}
			tl = append(tl, map[string]any{"t": s, "ops": 200 - errs, "errors": errs})
		}
		doc := map[string]any{
			"drill": r.name, "target": "strata up", "started": time.Now().UTC().Add(time.Duration(i-2) * time.Minute),
			"seconds": 12.0, "passed": r.passed, "ops": 2400, "errors": 0,
			"faults":   []map[string]any{{"name": "kill " + r.name, "start_s": 4.0, "end_s": 7.0}},
			"checks":   []map[string]any{{"name": "no lost writes", "passed": r.passed, "summary": "2400 writes checked"}},
			"timeline": tl,
		}
		dir := filepath.Join(root, r.name)
		os.MkdirAll(dir, 0o755)
		b, _ := json.Marshal(doc)
		p := filepath.Join(dir, "report.json")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		mt := time.Now().Add(time.Duration(i-2) * time.Minute)
		os.Chtimes(p, mt, mt)
	}
	return root
}

// TestPanels: the admin routes of the console's panels say "not
// available" (503) until a source is wired; a file:// source serves drill
// reports, newest first; SetPanel wires one at run time.
func TestPanels(t *testing.T) {
	n := startIDNode(t)
	cfg := testConfig(n.GRPCAddr)
	cfg.Console.Sources = map[string]string{"drills": "file://" + writeDrillReports(t) + "/*/report.json"}
	s := startEdge(t, cfg, Options{})
	admin := adminClient(s)
	ctx := ctxT(t, 20*time.Second)
	_, err := admin.Do(ctx, "GET", "/v1/admin/transactions", nil)
	if e, ok := err.(*client.Error); !ok || e.Status != 503 || e.Reason != "not_available" {
		t.Fatalf("transactions without a source: %v", err)
	}
	b, err := admin.Do(ctx, "GET", "/v1/admin/drills", nil)
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Available bool
		Data      []struct {
			Path string
			Doc  struct{ Drill string }
		}
	}
	if err := json.Unmarshal(b, &st); err != nil || !st.Available || len(st.Data) != 2 || st.Data[0].Doc.Drill != "partition" {
		t.Fatalf("drills: %s %v", b, err)
	}
	s.SetPanel("transactions", PanelFunc(func(ctxx context.Context) (any, error) { return map[string]int{"in_doubt": 0}, nil }))
	if b, err := admin.Do(ctx, "GET", "/v1/admin/transactions", nil); err != nil || !strings.Contains(string(b), `"in_doubt":0`) {
		t.Fatalf("transactions after SetPanel: %s %v", b, err)
	}
	bad := cfg
	bad.Console.Sources = map[string]string{"drills": "file://relative/*.json"}
	if _, err := New(bad, Options{}); err == nil || !strings.Contains(fmt.Sprint(err), "absolute") {
		t.Fatalf("a relative file source: %v", err)
	}
}
