package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/strata-db/strata/chaos/plot"
)

// Benchmark is one named measurement: Setup starts what it needs and
// returns the variants to compare (the subject and its baselines) and a
// function that stops everything it started.
type Benchmark interface {
	Setup(ctx context.Context, env *Env) (variants []Variant, stop func(), err error)
}

// Variant is one thing measured in every round: a target and a load.
type Variant struct {
	Name string
	// Reference marks the variant the others' ratios are taken to.
	Reference bool
	// Run measures for d and returns the round's figures.
	Run func(ctx context.Context, d time.Duration) (Round, error)
}

// Round is one variant's figures over one run.
type Round struct {
	Rate   float64 // operations (queries, IDs) per second
	Unit   string  // "queries/s", "IDs/s"
	AvgMs  float64
	P50Ms  float64
	P95Ms  float64
	P99Ms  float64
	Errors float64
	// CPUus is the CPU the hop (proxy, HAProxy) spent per operation, in
	// µs, where the variant has one process to measure.
	CPUus float64
	// PerSecond is the rate second by second, for the timeline.
	PerSecond []float64
}

// Env is what a benchmark gets from the harness.
type Env struct {
	// Binary is the strata binary (the proxy, the ID service run from it).
	Binary string
	// Dir is a scratch directory, removed at the end.
	Dir     string
	Threads int
	Logger  *slog.Logger
	// Params are the benchmark's own settings (key=value from --param).
	Params map[string]string
	// Notes are figures a benchmark measures beside the rates (a hit
	// ratio, a process's memory), printed under the table.
	Notes []string
}

// Note records a figure for the report.
func (e *Env) Note(format string, args ...any) {
	e.Notes = append(e.Notes, fmt.Sprintf(format, args...))
}

// Entry is a name in the registry: a benchmark, or one not yet built.
type Entry struct {
	Name, Summary string
	// Params lists the benchmark's --param settings with their defaults.
	Params string
	New    func() Benchmark // nil: not yet built
	NotYet string           // why, when New is nil
}

// Registry lists every benchmark `strata bench` knows. Entries with no New
// are placeholders for components still being built; they say so rather
// than measure something else.
func Registry() []Entry {
	return []Entry{
		{Name: "proxy", Summary: "sysbench oltp_point_select: MariaDB direct vs HAProxy (mode tcp, 1 thread) vs the Strata proxy over the same server", Params: "tables (4), table_size (10000), proxy_procs (1), ps_disable (0), pipelines and pipeline_depth (the proxy's backend settings; default: its defaults, 1 and 32), compare (another strata binary), profile (a file)", New: func() Benchmark { return &proxyBench{} }},
		{Name: "rwsplit", Summary: "sysbench oltp_read_only through the proxy: reads on the replicas vs every read on the primaries", Params: "shards (2), replicas (1), tables (4), table_size (10000)", New: func() Benchmark { return &rwsplitBench{} }},
		{Name: "ids", Summary: "the ID service: HTTP single IDs, gRPC batches, the buffered Go client", Params: "http_concurrency (64), grpc_concurrency (16), batch (1000), grpc and http (addresses of a running service)", New: func() Benchmark { return &idsBench{} }},
		{Name: "cache", Summary: "Zipf s=1.01 point selects: the proxy's row cache vs the proxy without it vs MariaDB direct", Params: "rows (100000), memory_mb (16), ps_disable (0), client (sysbench; go: go-sql-driver in process, text), proxy_procs (1), proxy_gomemlimit", New: func() Benchmark { return &cacheBench{} }},
		{Name: "txn", Summary: "bank transfers through the proxy: cross-shard (XA, coordinator group) vs single-shard", Params: "coordinators (3), accounts (2000), sessions (2 × --threads), coord_procs (1) and proxy_procs (0) (GOMAXPROCS of each coordinator node and of the proxy; 0: Go's default), profile (a directory for CPU profiles), deadlock_check_ms (the proxy's deadlock check; 0: off)", New: func() Benchmark { return &txnBench{} }},
		{Name: "hotrow", Summary: "64 sessions incrementing one row: combine_writes vs plain updates", Params: "sessions (64)", New: func() Benchmark { return &hotrowBench{} }},
		{Name: "edge", Summary: "GET /v1/ids through strata edge (signed) vs the ID service's HTTP direct", Params: "concurrency (64)", New: func() Benchmark { return &edgeBench{} }},
	}
}

// Lookup finds a registry entry by name.
func Lookup(name string) (Entry, error) {
	var names []string
	for _, e := range Registry() {
		if e.Name == name {
			if e.New == nil {
				return e, fmt.Errorf("bench %s: %s", name, e.NotYet)
			}
			return e, nil
		}
		names = append(names, e.Name)
	}
	return Entry{}, fmt.Errorf("bench: unknown benchmark %q (known: %s)", name, strings.Join(names, ", "))
}

// Config is a harness run's settings.
type Config struct {
	Name     string
	Rounds   int
	Duration time.Duration // per variant per round
	Threads  int
	Binary   string
	Params   map[string]string
	Progress io.Writer
	Logger   *slog.Logger
}

// DefaultConfig is 3 rounds of 10 s per variant, 8 threads.
func DefaultConfig() Config {
	return Config{Rounds: 3, Duration: 10 * time.Second, Threads: 8}
}

// Validate names the first field that is wrong.
func (c Config) Validate() error {
	switch {
	case c.Rounds < 1:
		return errors.New("bench: rounds: need at least 1")
	case c.Duration < time.Second:
		return errors.New("bench: duration: at least 1s")
	case c.Threads < 1:
		return errors.New("bench: threads: need at least 1")
	case c.Binary == "":
		return errors.New("bench: the strata binary is required")
	}
	return nil
}

// VariantResult is one variant over every round.
type VariantResult struct {
	Name      string  `json:"name"`
	Reference bool    `json:"reference,omitempty"`
	Unit      string  `json:"unit"`
	Rounds    []Round `json:"rounds"`
	Median    float64 `json:"median"`
	Min       float64 `json:"min"`
	Max       float64 `json:"max"`
	// Ratio to the reference: median of the per-round ratios (each round's
	// variants ran back to back on the same machine), with their min and
	// max.
	Ratio    float64 `json:"ratio,omitempty"`
	RatioMin float64 `json:"ratio_min,omitempty"`
	RatioMax float64 `json:"ratio_max,omitempty"`
}

// Result is a harness run's outcome.
type Result struct {
	Name     string          `json:"name"`
	Started  time.Time       `json:"started"`
	Rounds   int             `json:"rounds"`
	Seconds  float64         `json:"seconds_per_run"`
	Threads  int             `json:"threads"`
	Machine  string          `json:"machine"`
	Variants []VariantResult `json:"variants"`
	Notes    []string        `json:"notes,omitempty"`
}

// Run sets the benchmark up, runs every variant in every round
// (interleaved: round 1 runs each variant once, then round 2, ...), stops
// what it started, and returns the figures.
func Run(ctx context.Context, c Config) (*Result, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	e, err := Lookup(c.Name)
	if err != nil {
		return nil, err
	}
	log := c.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	progress := c.Progress
	if progress == nil {
		progress = io.Discard
	}
	dir, err := os.MkdirTemp("", "strata-bench-"+c.Name+"-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	env := &Env{Binary: c.Binary, Dir: dir, Threads: c.Threads, Logger: log, Params: c.Params}
	fmt.Fprintf(progress, "bench %s: setting up (%s)\n", c.Name, e.Summary)
	variants, stop, err := e.New().Setup(ctx, env)
	if err != nil {
		return nil, fmt.Errorf("bench %s: setup: %w", c.Name, err)
	}
	defer stop()
	res := &Result{Name: c.Name, Started: time.Now().UTC(), Rounds: c.Rounds, Seconds: c.Duration.Seconds(), Threads: c.Threads, Machine: machine()}
	vr := make([]VariantResult, len(variants))
	for i, v := range variants {
		vr[i] = VariantResult{Name: v.Name, Reference: v.Reference}
	}
	total := c.Rounds * len(variants)
	n := 0
	for r := 1; r <= c.Rounds; r++ {
		for i, v := range variants {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			n++
			fmt.Fprintf(progress, "  [%d/%d] round %d/%d %-28s … ", n, total, r, c.Rounds, v.Name)
			rd, err := v.Run(ctx, c.Duration)
			if err != nil {
				fmt.Fprintln(progress, "error")
				return nil, fmt.Errorf("bench %s: %s, round %d: %w", c.Name, v.Name, r, err)
			}
			fmt.Fprintf(progress, "%.0f %s\n", rd.Rate, rd.Unit)
			vr[i].Rounds = append(vr[i].Rounds, rd)
			vr[i].Unit = rd.Unit
		}
	}
	ref := -1
	for i, v := range vr {
		if v.Reference {
			ref = i
		}
	}
	for i := range vr {
		rates := make([]float64, len(vr[i].Rounds))
		for k, rd := range vr[i].Rounds {
			rates[k] = rd.Rate
		}
		vr[i].Median, vr[i].Min, vr[i].Max = stats(rates)
		if ref >= 0 {
			ratios := make([]float64, len(rates))
			for k := range rates {
				if d := vr[ref].Rounds[k].Rate; d > 0 {
					ratios[k] = rates[k] / d
				}
			}
			vr[i].Ratio, vr[i].RatioMin, vr[i].RatioMax = stats(ratios)
		}
	}
	res.Variants = vr
	res.Notes = env.Notes
	return res, nil
}

func stats(v []float64) (median, lo, hi float64) {
	if len(v) == 0 {
		return 0, 0, 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2], s[0], s[len(s)-1]
}

func machine() string {
	load, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(load))
	la := ""
	if len(f) >= 3 {
		la = ", load average " + strings.Join(f[:3], " ")
	}
	return fmt.Sprintf("%d cores%s; load client, servers and hops share the cores", numCPU(), la)
}

// PrintTable writes the table of figures and ratios.
func PrintTable(w io.Writer, r *Result) {
	fmt.Fprintf(w, "\n%s: %d rounds × %.0fs per variant, %d threads; %s\n", r.Name, r.Rounds, r.Seconds, r.Threads, r.Machine)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "variant\tmedian\t(min–max)\tunit\t× ref\t(min–max)\tavg ms\tp95 ms\tp99 ms\tCPU µs/op\t")
	for _, v := range r.Variants {
		last := Round{}
		if len(v.Rounds) > 0 {
			last = medianRound(v.Rounds)
		}
		ratio := "-"
		spread := ""
		if v.Ratio > 0 {
			ratio = fmt.Sprintf("%.2f", v.Ratio)
			spread = fmt.Sprintf("(%.2f–%.2f)", v.RatioMin, v.RatioMax)
		}
		if v.Reference {
			ratio, spread = "1 (ref)", ""
		}
		fmt.Fprintf(tw, "%s\t%.0f\t(%.0f–%.0f)\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", v.Name, v.Median, v.Min, v.Max, v.Unit, ratio, spread,
			fmtMs(last.AvgMs), fmtMs(last.P95Ms), fmtMs(last.P99Ms), fmtMs(last.CPUus))
	}
	tw.Flush()
	for _, n := range r.Notes {
		fmt.Fprintf(w, "  %s\n", n)
	}
}

// medianRound is the round whose rate is the median, for the latency
// columns.
func medianRound(rs []Round) Round {
	s := append([]Round(nil), rs...)
	sort.Slice(s, func(i, j int) bool { return s[i].Rate < s[j].Rate })
	return s[len(s)/2]
}

func fmtMs(v float64) string {
	if v == 0 {
		return "-"
	}
	if v < 10 {
		return fmt.Sprintf("%.3f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

// WriteReport writes result.json and report.html into dir.
func WriteReport(dir string, r *Result) (jsonPath, htmlPath string, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", "", err
	}
	jsonPath = filepath.Join(dir, "result.json")
	if err := os.WriteFile(jsonPath, b, 0o644); err != nil {
		return "", "", err
	}
	htmlPath = filepath.Join(dir, "report.html")
	return jsonPath, htmlPath, os.WriteFile(htmlPath, []byte(HTML(r)), 0o644)
}

// HTML renders the result as one self-contained page.
func HTML(r *Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "<h1>Benchmark %s</h1><p>%s. %d rounds × %.0fs per variant, interleaved; %d threads. Started %s.</p>",
		html.EscapeString(r.Name), html.EscapeString(r.Machine), r.Rounds, r.Seconds, r.Threads, r.Started.Format("2006-01-02 15:04:05 UTC"))
	unit := ""
	var bars, ratios []plot.Bar
	for _, v := range r.Variants {
		unit = v.Unit
		bars = append(bars, plot.Bar{Label: v.Name, Value: v.Median, Lo: v.Min, Hi: v.Max})
		if v.Ratio > 0 {
			ratios = append(ratios, plot.Bar{Label: v.Name, Value: v.Ratio, Lo: v.RatioMin, Hi: v.RatioMax})
		}
	}
	b.WriteString("<h2>Throughput (median of the rounds; whiskers: min–max)</h2>")
	b.WriteString(plot.BarChart(r.Name+": "+unit, unit, bars))
	if len(ratios) > 0 {
		b.WriteString("<h2>Ratio to the reference (per-round ratios: median, min–max)</h2>")
		b.WriteString(plot.BarChart(r.Name+": × reference", "×", ratios))
	}
	// Rounds: one line per variant.
	var series []plot.Series
	var perSec []plot.Series
	for _, v := range r.Variants {
		s := plot.Series{Name: v.Name}
		var ps plot.Series
		ps.Name = v.Name
		off := 0.0
		for k, rd := range v.Rounds {
			s.X = append(s.X, float64(k+1))
			s.Y = append(s.Y, rd.Rate)
			for i, q := range rd.PerSecond {
				ps.X = append(ps.X, off+float64(i)+1)
				ps.Y = append(ps.Y, q)
			}
			off += float64(len(rd.PerSecond))
		}
		series = append(series, s)
		if len(ps.X) > 0 {
			perSec = append(perSec, ps)
		}
	}
	b.WriteString("<h2>Every round</h2>")
	b.WriteString(plot.Chart{Title: "Rate per round", XLabel: "round", YLabel: unit, Series: series}.SVG())
	if len(perSec) > 0 {
		b.WriteString(plot.Chart{Title: "Rate second by second (each variant's runs, end to end)", XLabel: "seconds of that variant's runs", YLabel: unit, Series: perSec}.SVG())
	}
	b.WriteString("<h2>Figures</h2><table><tr><th>variant</th><th>median</th><th>min–max</th><th>× reference</th><th>avg ms</th><th>p95 ms</th><th>p99 ms</th><th>CPU µs/op</th></tr>")
	for _, v := range r.Variants {
		m := Round{}
		if len(v.Rounds) > 0 {
			m = medianRound(v.Rounds)
		}
		ratio := "-"
		if v.Reference {
			ratio = "reference"
		} else if v.Ratio > 0 {
			ratio = fmt.Sprintf("%.2f (%.2f–%.2f)", v.Ratio, v.RatioMin, v.RatioMax)
		}
		fmt.Fprintf(&b, "<tr><td>%s</td><td>%.0f %s</td><td>%.0f–%.0f</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>",
			html.EscapeString(v.Name), v.Median, html.EscapeString(v.Unit), v.Min, v.Max, ratio, fmtMs(m.AvgMs), fmtMs(m.P95Ms), fmtMs(m.P99Ms), fmtMs(m.CPUus))
	}
	b.WriteString("</table>")
	for _, n := range r.Notes {
		b.WriteString("<p>" + html.EscapeString(n) + "</p>")
	}
	return plot.Page("Benchmark "+r.Name, b.String())
}
