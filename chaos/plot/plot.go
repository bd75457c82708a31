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
	padL, padR, padT, padB = 60.0, 20.0, 28.0, 34.0
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

// SVG renders the chart.
func (c Chart) SVG() string {
	W, H := c.size()
	xmax, ymax := 0.0, 0.0
	for _, s := range c.Series {
		for i := range s.X {
			xmax = math.Max(xmax, s.X[i])
			if i < len(s.Y) && !math.IsNaN(s.Y[i]) {
				ymax = math.Max(ymax, s.Y[i])
			}
		}
	}
	for _, b := range c.Bands {
		xmax = math.Max(xmax, b.To)
	}
	if xmax == 0 {
		xmax = 1
	}
	ymax = niceMax(ymax)
	pw, ph := W-padL-padR, H-padT-padB
	x := func(v float64) float64 { return padL + v/xmax*pw }
	y := func(v float64) float64 { return padT + ph - v/ymax*ph }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="11">`, W, H, W, H)
	fmt.Fprintf(&b, `<rect width="%.0f" height="%.0f" fill="#fff"/>`, W, H)
	fmt.Fprintf(&b, `<text x="%.0f" y="16" font-size="13" font-weight="bold">%s</text>`, padL, html.EscapeString(c.Title))
	for _, bd := range c.Bands {
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#f5a623" fill-opacity="0.18"><title>%s</title></rect>`,
			x(bd.From), padT, math.Max(1, x(bd.To)-x(bd.From)), ph, html.EscapeString(bd.Label))
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" fill="#a0660a" font-size="10">%s</text>`, x(bd.From)+2, padT+10, html.EscapeString(bd.Label))
	}
	// Axes and grid.
	for i := 0; i <= 4; i++ {
		v := ymax * float64(i) / 4
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#ddd"/>`, padL, padL+pw, y(v), y(v))
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`, padL-4, y(v)+4, fmtNum(v))
	}
	xstep := niceMax(xmax / 8)
	for v := 0.0; v <= xmax+1e-9; v += xstep {
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`, x(v), padT+ph+14, fmtNum(v))
	}
	fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#333"/>`, padL, padL+pw, padT+ph, padT+ph)
	fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#333"/>`, padL, padL, padT, padT+ph)
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`, padL+pw/2, H-4, html.EscapeString(c.XLabel))
	fmt.Fprintf(&b, `<text transform="translate(12,%.1f) rotate(-90)" text-anchor="middle">%s</text>`, padT+ph/2, html.EscapeString(c.YLabel))
	for i, s := range c.Series {
		col := s.Color
		if col == "" {
			col = Palette[i%len(Palette)]
		}
		if s.Bars {
			bw := math.Max(1, pw/xmax*0.8)
			for k := range s.X {
				if k >= len(s.Y) || s.Y[k] <= 0 {
					continue
				}
				fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s: %s at %s</title></rect>`,
					x(s.X[k]), y(s.Y[k]), bw, padT+ph-y(s.Y[k]), col, html.EscapeString(s.Name), fmtNum(s.Y[k]), fmtNum(s.X[k]))
			}
		} else {
			var pts []string
			for k := range s.X {
				if k < len(s.Y) && !math.IsNaN(s.Y[k]) {
					pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(s.X[k]), y(s.Y[k])))
				}
			}
			fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.6" points="%s"/>`, col, strings.Join(pts, " "))
		}
		// Legend.
		lx := padL + pw - 150*float64(len(c.Series)-i)
		fmt.Fprintf(&b, `<rect x="%.1f" y="8" width="10" height="10" fill="%s"/><text x="%.1f" y="17">%s</text>`, lx, col, lx+14, html.EscapeString(s.Name))
	}
	b.WriteString(`</svg>`)
	return b.String()
}

// Bar is one bar of a bar chart, with its spread (Lo..Hi, e.g. min and max
// over rounds).
type Bar struct {
	Label         string
	Value, Lo, Hi float64
}

// BarChart renders horizontal bars with spread whiskers.
func BarChart(title, unit string, bars []Bar) string {
	W := 900.0
	rowH := 26.0
	H := padT + rowH*float64(len(bars)) + 30
	lw := 260.0
	maxv := 0.0
	for _, br := range bars {
		maxv = math.Max(maxv, math.Max(br.Value, br.Hi))
	}
	maxv = niceMax(maxv)
	pw := W - lw - 80
	x := func(v float64) float64 { return lw + v/maxv*pw }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="11">`, W, H, W, H)
	fmt.Fprintf(&b, `<rect width="%.0f" height="%.0f" fill="#fff"/>`, W, H)
	fmt.Fprintf(&b, `<text x="10" y="16" font-size="13" font-weight="bold">%s</text>`, html.EscapeString(title))
	for i, br := range bars {
		y0 := padT + rowH*float64(i)
		col := Palette[i%len(Palette)]
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`, lw-6, y0+15, html.EscapeString(br.Label))
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="16" fill="%s" fill-opacity="0.85"/>`, lw, y0+3, math.Max(0, x(br.Value)-lw), col)
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
