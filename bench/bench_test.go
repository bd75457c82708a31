package bench

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-db/strata/chaos/plot"
	"github.com/strata-db/strata/internal/testbin"
	"github.com/strata-db/strata/localdb"
)

var strataBin string

func TestMain(m *testing.M) { testbin.Main(m, &strataBin) }

func TestRegistry(t *testing.T) {
	for _, n := range []string{"proxy", "rwsplit", "ids", "cache", "txn", "hotrow", "edge"} {
		if _, err := Lookup(n); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
	if _, err := Lookup("nope"); err == nil || !strings.Contains(err.Error(), "known: proxy, rwsplit, ids, cache, txn, hotrow, edge") {
		t.Errorf("unknown: %v", err)
	}
	c := DefaultConfig()
	c.Name = "ids"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "binary") {
		t.Errorf("validate: %v", err)
	}
}

// TestIDs runs the ids benchmark briefly, checks its figures and looks at
// its report in headless Chromium.
func TestIDs(t *testing.T) {
	c := DefaultConfig()
	c.Name, c.Binary, c.Rounds, c.Duration, c.Logger = "ids", strataBin, 2, time.Second, localdb.TestLogger(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := Run(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	PrintTable(&sb, res)
	t.Log(sb.String())
	if len(res.Variants) != 3 {
		t.Fatalf("variants: %+v", res.Variants)
	}
	for _, v := range res.Variants {
		if len(v.Rounds) != 2 || v.Median <= 0 || v.Unit != "IDs/s" {
			t.Errorf("%s: %+v", v.Name, v)
		}
		if !v.Reference && v.Ratio <= 1 {
			t.Errorf("%s: ratio %.2f to single HTTP IDs, want > 1", v.Name, v.Ratio)
		}
	}
	dir := t.TempDir()
	_, h, err := WriteReport(dir, res)
	if err != nil {
		t.Fatal(err)
	}
	out := dir
	if d := os.Getenv("STRATA_SCREENSHOTS"); d != "" {
		out = d
	}
	png := filepath.Join(out, "bench-ids.png")
	if err := plot.Screenshot(ctx, h, png, 1000, 1300); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the bench report: %s", png)
}

// TestRWSplit runs the rwsplit benchmark in miniature: sysbench through two
// proxies over a primary and a replica, its output parsed.
func TestRWSplit(t *testing.T) {
	c := DefaultConfig()
	c.Name, c.Binary, c.Rounds, c.Duration, c.Threads, c.Logger = "rwsplit", strataBin, 1, 2*time.Second, 2, localdb.TestLogger(t)
	c.Params = map[string]string{"shards": "1", "tables": "1", "table_size": "1000"}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := Run(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	PrintTable(&sb, res)
	t.Log(sb.String())
	for _, v := range res.Variants {
		r := v.Rounds[0]
		if r.Rate <= 0 || r.AvgMs <= 0 || r.P95Ms <= 0 || r.CPUus <= 0 || len(r.PerSecond) == 0 {
			t.Errorf("%s: %+v", v.Name, r)
		}
	}
}

// TestShortForms runs cache, txn, hotrow and edge in miniature (one round
// of a second per variant, small tables, one coordinator node): each
// starts what it needs, every variant measures something without errors,
// and the ratios come out.
func TestShortForms(t *testing.T) {
	for _, tc := range []struct {
		name, bench string
		params      map[string]string
	}{
		{"cache", "cache", map[string]string{"rows": "2000"}},
		{"cache-go", "cache", map[string]string{"rows": "2000", "client": "go"}},
		{"txn", "txn", map[string]string{"coordinators": "1", "accounts": "200", "sessions": "4"}},
		{"hotrow", "hotrow", map[string]string{"sessions": "16"}},
		{"edge", "edge", map[string]string{"concurrency": "8"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := DefaultConfig()
			c.Name, c.Binary, c.Rounds, c.Duration, c.Threads, c.Params, c.Logger = tc.bench, strataBin, 1, time.Second, 2, tc.params, localdb.TestLogger(t)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			res, err := Run(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			var sb strings.Builder
			PrintTable(&sb, res)
			t.Log(sb.String())
			if len(res.Variants) < 2 {
				t.Fatalf("%d variants", len(res.Variants))
			}
			for _, v := range res.Variants {
				r := v.Rounds[0]
				if r.Rate <= 0 || r.Errors > r.Rate/10 || (r.P50Ms <= 0 && r.AvgMs <= 0) {
					t.Errorf("%s: %+v", v.Name, r)
				}
				if !v.Reference && v.Ratio <= 0 {
					t.Errorf("%s: no ratio", v.Name)
				}
				if tc.name == "txn" && r.CPUus <= 0 {
					t.Errorf("%s: no CPU per transfer", v.Name)
				}
			}
			if tc.bench == "cache" && (len(res.Notes) != 1 || !strings.Contains(res.Notes[0], "hit ratio") || strings.Contains(res.Notes[0], "RSS 0.0 MiB")) {
				t.Errorf("cache notes: %q, want one round's hit ratio and RSS", res.Notes)
			}
		})
	}
}
