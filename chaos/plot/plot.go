// Package plot renders the charts of drill and benchmark reports as inline
// SVG, written by the program itself: a report opens offline, with no
// JavaScript and nothing fetched at view time. It owns only drawing; it
// imports nothing of Strata.
package plot

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// Palette is the colors series take in order.
var Palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"}

// Series is one line (or set of bars) of a chart.
type Series struct {
	Name  string
	Color string // empty: from Palette
	X, Y  []float64
	Bars  bool // draw as bars (e.g. errors per second)
}

// Band is a shaded stretch of the x axis (a fault window).
type Band struct {
	From, To float64
	Label    string
}

// Chart is an x/y chart.
type Chart struct {
	Title, XLabel, YLabel string
	Width, Height         int // default 900 × 220
	Series                []Series
	Bands                 []Band
}

const (
	padL, padR, padT, padB = 60.0, 20.0, 40.0, 34.0
)

func (c Chart) size() (float64, float64) {
	w, h := c.Width, c.Height
	if w == 0 {
		w = 900
	}
	if h == 0 {
		h = 220
	}
	return float64(w), float64(h)
}

// niceMax rounds up to 1, 2 or 5 times a power of ten.
func niceMax(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func fmtNum(v float64) string {
	switch {
	case v == 0:
		return "0"
	case math.Abs(v) >= 1e6:
		return fmt.Sprintf("%.3gM", v/1e6)
	case math.Abs(v) >= 1e4:
		return fmt.Sprintf("%.3gk", v/1e3)
	case math.Abs(v) >= 10:
		return fmt.Sprintf("%.0f", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}

// scale maps values to [0, 1] of the plot's height: linear from 0, or
// logarithmic when the values span more than two orders of magnitude (an
// HTTP call beside a batched client would otherwise be a flat line).
type scale struct {
	log    bool
	lo, hi float64 // linear: 0..hi; log: log10 bounds
}

func newScale(vals []float64) scale {
	maxv, minPos := 0.0, math.Inf(1)
	for _, v := range vals {
		if math.IsNaN(v) {
			continue
		}
		maxv = math.Max(maxv, v)
		if v > 0 {
			minPos = math.Min(minPos, v)
		}
	}
	if maxv > 0 && maxv/minPos > 200 {
		return scale{log: true, lo: math.Floor(math.Log10(minPos)), hi: math.Ceil(math.Log10(maxv))}
	}
	return scale{hi: niceMax(maxv)}
}

// frac is v's place in [0, 1]; values at or below the bottom of a log
// scale sit on the axis.
func (s scale) frac(v float64) float64 {
	if !s.log {
		return v / s.hi
	}
	if v <= 0 {
		return 0
	}
	return math.Max(0, (math.Log10(v)-s.lo)/(s.hi-s.lo))
}

// ticks are the gridline values.
func (s scale) ticks() []float64 {
	var t []float64
	if s.log {
		for e := s.lo; e <= s.hi; e++ {
			t = append(t, math.Pow(10, e))
		}
		return t
	}
	for i := 0; i <= 4; i++ {
		t = append(t, s.hi*float64(i)/4)
	}
	return t
}

// legend draws the series' keys from the right edge leftwards, each as
// wide as its name.
func legend(b *strings.Builder, right float64, names, colors []string) {
	x := right
	for i := len(names) - 1; i >= 0; i-- {
		w := 18 + 6.2*float64(len([]rune(names[i])))
		x -= w
		fmt.Fprintf(b, `<rect x="%.1f" y="22" width="10" height="10" fill="%s"/><text x="%.1f" y="31">%s</text>`, x, colors[i], x+13, html.EscapeString(names[i]))
	}
}

// SVG renders the chart.
func (c Chart) SVG() string {
	W, H := c.size()
	xmin, xmax := math.Inf(1), 0.0
	var ys []float64
	for _, s := range c.Series {
		for i := range s.X {
			xmax = math.Max(xmax, s.X[i])
			xmin = math.Min(xmin, s.X[i])
			if i < len(s.Y) {
				ys = append(ys, s.Y[i])
			}
		}
	}
	for _, b := range c.Bands {
		xmax = math.Max(xmax, b.To)
		xmin = math.Min(xmin, b.From)
	}
	if math.IsInf(xmin, 1) || xmin < 1 {
		xmin = 0
	}
	if xmax <= xmin {
		xmax = xmin + 1
	}
	ys0 := append(ys, 0)
	sc := newScale(ys0)
	pw, ph := W-padL-padR, H-padT-padB
	x := func(v float64) float64 { return padL + (v-xmin)/(xmax-xmin)*pw }
	y := func(v float64) float64 { return padT + ph - sc.frac(v)*ph }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="11">`, W, H, W, H)
	fmt.Fprintf(&b, `<rect width="%.0f" height="%.0f" fill="#fff"/>`, W, H)
	title := c.Title
	if sc.log {
		title += " (log scale)"
	}
	fmt.Fprintf(&b, `<text x="%.0f" y="16" font-size="13" font-weight="bold">%s</text>`, padL, html.EscapeString(title))
	for _, bd := range c.Bands {
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#f5a623" fill-opacity="0.18"><title>%s</title></rect>`,
			x(bd.From), padT, math.Max(1, x(bd.To)-x(bd.From)), ph, html.EscapeString(bd.Label))
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" fill="#a0660a" font-size="10">%s</text>`, x(bd.From)+2, padT+10, html.EscapeString(bd.Label))
	}
	for _, v := range sc.ticks() {
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#ddd"/>`, padL, padL+pw, y(v), y(v))
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`, padL-4, y(v)+4, fmtNum(v))
	}
	xstep := niceMax((xmax - xmin) / 8)
	for v := math.Ceil(xmin/xstep) * xstep; v <= xmax+1e-9; v += xstep {
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`, x(v), padT+ph+14, fmtNum(v))
	}
	fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#333"/>`, padL, padL+pw, padT+ph, padT+ph)
	fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#333"/>`, padL, padL, padT, padT+ph)
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`, padL+pw/2, H-4, html.EscapeString(c.XLabel))
	fmt.Fprintf(&b, `<text transform="translate(12,%.1f) rotate(-90)" text-anchor="middle">%s</text>`, padT+ph/2, html.EscapeString(c.YLabel))
	var names, colors []string
	for i, s := range c.Series {
		col := s.Color
		if col == "" {
			col = Palette[i%len(Palette)]
		}
		names, colors = append(names, s.Name), append(colors, col)
		if s.Bars {
			bw := math.Max(1, pw/(xmax-xmin)*0.8)
			for k := range s.X {
				if k >= len(s.Y) || s.Y[k] <= 0 {
					continue
				}
				fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s: %s at %s</title></rect>`,
					x(s.X[k])-bw/2, y(s.Y[k]), bw, padT+ph-y(s.Y[k]), col, html.EscapeString(s.Name), fmtNum(s.Y[k]), fmtNum(s.X[k]))
			}
			continue
		}
		var pts []string
		for k := range s.X {
			if k < len(s.Y) && !math.IsNaN(s.Y[k]) {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(s.X[k]), y(s.Y[k])))
			}
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.6" points="%s"/>`, col, strings.Join(pts, " "))
		if len(pts) <= 12 {
			for _, p := range pts {
				xy := strings.Split(p, ",")
				fmt.Fprintf(&b, `<circle cx="%s" cy="%s" r="2.5" fill="%s"/>`, xy[0], xy[1], col)
			}
		}
	}
	legend(&b, padL+pw, names, colors)
	b.WriteString(`</svg>`)
	return b.String()
}

// Bar is one bar of a bar chart, with its spread (Lo..Hi, e.g. min and max
// over rounds).
type Bar struct {
	Label         string
	Value, Lo, Hi float64
}

// BarChart renders horizontal bars with spread whiskers (log scale when
// the values span more than two orders of magnitude).
func BarChart(title, unit string, bars []Bar) string {
	W := 900.0
	rowH := 26.0
	H := padT + rowH*float64(len(bars)) + 30
	lw := 260.0
	var vals []float64
	for _, br := range bars {
		vals = append(vals, br.Value, br.Hi)
		if br.Lo > 0 {
			vals = append(vals, br.Lo)
		}
	}
	sc := newScale(vals)
	if sc.log {
		title += " (log scale)"
	}
	pw := W - lw - 90
	x := func(v float64) float64 { return lw + sc.frac(v)*pw }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="11">`, W, H, W, H)
	fmt.Fprintf(&b, `<rect width="%.0f" height="%.0f" fill="#fff"/>`, W, H)
	fmt.Fprintf(&b, `<text x="10" y="16" font-size="13" font-weight="bold">%s</text>`, html.EscapeString(title))
	for _, v := range sc.ticks() {
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#eee"/>`, x(v), x(v), padT, H-24)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="#666">%s</text>`, x(v), H-10, fmtNum(v))
	}
	for i, br := range bars {
		y0 := padT + rowH*float64(i)
		col := Palette[i%len(Palette)]
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`, lw-6, y0+15, html.EscapeString(br.Label))
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="16" fill="%s" fill-opacity="0.85"/>`, lw, y0+3, math.Max(1, x(br.Value)-lw), col)
		if br.Hi > br.Lo {
			fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#000"/>`, x(br.Lo), x(br.Hi), y0+11, y0+11)
			fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#000"/>`, x(br.Lo), x(br.Lo), y0+6, y0+16)
			fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#000"/>`, x(br.Hi), x(br.Hi), y0+6, y0+16)
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f">%s %s</text>`, math.Max(x(br.Value), x(br.Hi))+6, y0+15, fmtNum(br.Value), html.EscapeString(unit))
	}
	b.WriteString(`</svg>`)
	return b.String()
}

// Page wraps sections of HTML (charts, tables) in a self-contained page.
func Page(title string, body string) string {
	return `<!doctype html><html><head><meta charset="utf-8"><title>` + html.EscapeString(title) + `</title><style>
body{font-family:sans-serif;margin:24px;color:#222;max-width:1000px}
h1{font-size:20px} h2{font-size:16px;margin-top:28px}
table{border-collapse:collapse;font-size:13px} td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
.pass{color:#1a7f37;font-weight:bold} .fail{color:#c0392b;font-weight:bold}
.ops{font-family:monospace;font-size:12px;color:#444}
</style></head><body>` + body + `</body></html>`
}
