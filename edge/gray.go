package edge

import (
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
)

// Variants of a request.
const (
	variantStable = "stable"
	variantCanary = "canary"
)

// grayRule is a GrayRule at run time: its share (in basis points) can be
// changed while requests flow.
type grayRule struct {
	GrayRule
	bp     atomic.Uint32 // share × 10000
	header string        // by header:NAME
	by     string        // app, ip, header
	proxy  *httputil.ReverseProxy
}

// parseBy reads GrayRule.By.
func parseBy(by string) (kind, header string, err error) {
	switch {
	case by == "" || by == "app":
		return "app", "", nil
	case by == "ip":
		return "ip", "", nil
	case strings.HasPrefix(by, "header:") && len(by) > len("header:"):
		return "header", http.CanonicalHeaderKey(by[len("header:"):]), nil
	}
	return "", "", fmt.Errorf("%q is not app, ip or header:NAME", by)
}

func newGrayRule(g GrayRule) (*grayRule, error) {
	kind, header, err := parseBy(g.By)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(g.Canary)
	if err != nil {
		return nil, err
	}
	r := &grayRule{GrayRule: g, by: kind, header: header}
	r.bp.Store(uint32(g.Share*10000 + 0.5))
	r.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.SetXForwarded()
			pr.Out.Header.Set("X-Strata-Variant", variantCanary)
		},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			writeError(w, http.StatusBadGateway, "canary_error", "canary backend: "+err.Error())
		},
	}
	return r, nil
}

// canary says whether this request of app goes to the canary: a stable
// hash of the rule's subject in [0, 10000) below the share. A header rule
// without the header on the request hashes the app key instead.
func (g *grayRule) canary(app, ip string, r *http.Request) bool {
	bp := g.bp.Load()
	if bp == 0 {
		return false
	}
	subject := app
	switch g.by {
	case "ip":
		subject = ip
	case "header":
		if v := r.Header.Get(g.header); v != "" {
			subject = v
		}
	}
	return grayBucket(g.Route, app, subject) < bp
}

// grayBucket places a subject in [0, 10000), the same for the same
// route, app and subject on every edge and every run.
func grayBucket(route, app, subject string) uint32 {
	h := fnv.New64a()
	h.Write([]byte(route))
	h.Write([]byte{0})
	h.Write([]byte(app))
	h.Write([]byte{0})
	h.Write([]byte(subject))
	// Mix the FNV output (its low bits are weak for similar inputs).
	x := h.Sum64()
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	return uint32(x % 10000)
}

// grayRules are the rules in config order; the first rule for the route
// and app (or for every app) decides.
type grayRules []*grayRule

func (gs grayRules) find(route, app string) *grayRule {
	for _, g := range gs {
		if g.Route == route && (g.App == "" || g.App == app) {
			return g
		}
	}
	return nil
}

// GrayUpdate changes a rule's share at run time (PUT /v1/admin/gray).
type GrayUpdate struct {
	Route string  `json:"route"`
	App   string  `json:"app"`
	Share float64 `json:"share"`
}

// GrayStatus is a rule as GET /v1/admin/gray shows it.
type GrayStatus struct {
	Route  string  `json:"route"`
	App    string  `json:"app"`
	By     string  `json:"by"`
	Share  float64 `json:"share"`
	Canary string  `json:"canary"`
}

var errNoRule = errors.New("no gray rule for that route and app")

func (gs grayRules) set(u GrayUpdate) error {
	if u.Share < 0 || u.Share > 1 {
		return fmt.Errorf("share %v is not between 0 and 1", u.Share)
	}
	for _, g := range gs {
		if g.Route == u.Route && g.App == u.App {
			g.bp.Store(uint32(u.Share*10000 + 0.5))
			return nil
		}
	}
	return errNoRule
}

func (gs grayRules) status() []GrayStatus {
	out := make([]GrayStatus, 0, len(gs))
	for _, g := range gs {
		by := g.By
		if by == "" {
			by = "app"
		}
		out = append(out, GrayStatus{Route: g.Route, App: g.App, By: by, Share: float64(g.bp.Load()) / 10000, Canary: g.Canary})
	}
	return out
}

// clientIP is the request's peer address, or X-Forwarded-For's last entry
// when the edge is told to trust it.
func clientIP(r *http.Request, trustXFF bool) string {
	if trustXFF {
		if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
			if i := strings.LastIndexByte(xff, ','); i >= 0 {
				xff = xff[i+1:]
			}
			if ip := net.ParseIP(strings.TrimSpace(xff)); ip != nil {
				return ip.String()
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
