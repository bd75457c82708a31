package chaos

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/strata-db/strata/chaos/plot"
)

// WriteReport writes report.json and report.html into dir and returns
// their paths.
func WriteReport(dir string, r *Report) (jsonPath, htmlPath string, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", "", err
	}
	jsonPath = filepath.Join(dir, "report.json")
	if err := os.WriteFile(jsonPath, b, 0o644); err != nil {
		return "", "", err
	}
	htmlPath = filepath.Join(dir, "report.html")
	return jsonPath, htmlPath, os.WriteFile(htmlPath, []byte(HTML(r)), 0o644)
}

// HTML renders the report as one self-contained page.
func HTML(r *Report) string {
	var b strings.Builder
	verdict := `<span class="pass">PASSED</span>`
	if !r.Passed {
		verdict = `<span class="fail">FAILED</span>`
	}
	fmt.Fprintf(&b, "<h1>Drill %s: %s</h1>", html.EscapeString(r.Drill), verdict)
	if r.Description != "" {
		fmt.Fprintf(&b, "<p>%s</p>", html.EscapeString(r.Description))
	}
	form := "full"
	if r.Short {
		form = "short"
	}
	fmt.Fprintf(&b, "<p>Target: %s. Started %s, ran %.1fs (%s form). %d operations acknowledged, %d failed.</p>",
		html.EscapeString(r.Target), r.Started.Format("2006-01-02 15:04:05 UTC"), r.Seconds, form, r.Ops, r.Errors)
	if r.Error != "" {
		fmt.Fprintf(&b, `<p class="fail">%s</p>`, html.EscapeString(r.Error))
	}
	var bands []plot.Band
	for _, f := range r.Faults {
		if f.Start >= 0 {
			bands = append(bands, plot.Band{From: f.Start, To: f.End, Label: f.Name})
		}
	}
	n := len(r.Timeline)
	xs := make([]float64, n)
	ops, errs, p50, p99 := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
	for i, s := range r.Timeline {
		xs[i] = float64(s.T) + 0.5
		ops[i], errs[i] = float64(s.Ops), float64(s.Errors)
		p50[i], p99[i] = s.P50ms, s.P99ms
		if s.Ops == 0 {
			p50[i], p99[i] = math.NaN(), math.NaN()
		}
	}
	b.WriteString("<h2>Timeline (fault windows shaded)</h2>")
	b.WriteString(plot.Chart{Title: "Throughput", XLabel: "seconds", YLabel: "ops/s", Bands: bands,
		Series: []plot.Series{{Name: "acknowledged ops/s", X: xs, Y: ops}}}.SVG())
	b.WriteString(plot.Chart{Title: "Latency of acknowledged operations", XLabel: "seconds", YLabel: "ms", Bands: bands,
		Series: []plot.Series{{Name: "p50", X: xs, Y: p50}, {Name: "p99", X: xs, Y: p99}}}.SVG())
	b.WriteString(plot.Chart{Title: "Errors", XLabel: "seconds", YLabel: "errors/s", Bands: bands,
		Series: []plot.Series{{Name: "failed ops/s", Color: "#c0392b", X: xs, Y: errs, Bars: true}}}.SVG())

	b.WriteString("<h2>Faults</h2><table><tr><th>fault</th><th>from</th><th>to</th><th>problems</th></tr>")
	for _, f := range r.Faults {
		fmt.Fprintf(&b, "<tr><td>%s</td><td>%.1fs</td><td>%.1fs</td><td>%s</td></tr>", html.EscapeString(f.Name), f.Start, f.End,
			html.EscapeString(strings.TrimSpace(f.InjectErr+" "+f.RecoverErr)))
	}
	b.WriteString("</table><h2>Checks</h2><table><tr><th>checker</th><th>verdict</th><th>summary and anomalies</th></tr>")
	for _, c := range r.Checks {
		v := `<span class="pass">passed</span>`
		if !c.Passed {
			v = `<span class="fail">failed</span>`
		}
		fmt.Fprintf(&b, "<tr><td>%s</td><td>%s</td><td>%s", html.EscapeString(c.Name), v, html.EscapeString(c.Summary))
		for _, a := range c.Anomalies {
			fmt.Fprintf(&b, "<p><b>%s</b>: %s", html.EscapeString(a.Kind), html.EscapeString(a.Detail))
			for _, o := range a.Ops {
				fmt.Fprintf(&b, `<br><span class="ops">%s</span>`, html.EscapeString(o))
			}
			b.WriteString("</p>")
		}
		b.WriteString("</td></tr>")
	}
	b.WriteString("</table>")
	return plot.Page("Drill "+r.Drill, b.String())
}

// PrintSummary writes the verdict, the checks and their anomalies to w.
func PrintSummary(w io.Writer, r *Report) {
	v := "PASSED"
	if !r.Passed {
		v = "FAILED"
	}
	fmt.Fprintf(w, "drill %s: %s (%.1fs, %d ops acknowledged, %d failed)\n", r.Drill, v, r.Seconds, r.Ops, r.Errors)
	for _, f := range r.Faults {
		fmt.Fprintf(w, "  fault %-40s %6.1fs – %6.1fs", f.Name, f.Start, f.End)
		if f.InjectErr != "" || f.RecoverErr != "" {
			fmt.Fprintf(w, "  problem: %s", strings.TrimSpace(f.InjectErr+" "+f.RecoverErr))
		}
		fmt.Fprintln(w)
	}
	for _, c := range r.Checks {
		cv := "passed"
		if !c.Passed {
			cv = "FAILED"
		}
		fmt.Fprintf(w, "  check %-9s %s: %s\n", c.Name, cv, c.Summary)
		for _, a := range c.Anomalies {
			fmt.Fprintf(w, "    %s: %s\n", a.Kind, a.Detail)
			for _, o := range a.Ops {
				fmt.Fprintf(w, "      %s\n", o)
			}
		}
	}
	if r.Error != "" {
		fmt.Fprintf(w, "  error: %s\n", r.Error)
	}
}
