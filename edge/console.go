package edge

import (
	"context"
	"embed"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"strings"
	"sync"
	"time"
)

//go:embed console/*
var consoleFiles embed.FS

// serveConsolePage serves the console's static files (no key needed: they
// hold no data; the page calls /console/api/* with a key or in local mode).
func (s *Server) serveConsolePage(w http.ResponseWriter, r *http.Request, c *reqCtx) {
	if r.URL.Path == "/console" {
		http.Redirect(w, r, "/console/", http.StatusFound)
		return
	}
	sub, _ := fs.Sub(consoleFiles, "console")
	name := strings.TrimPrefix(c.rest, "/")
	if name == "" {
		name = "index.html"
	}
	b, err := fs.ReadFile(sub, name)
	if err != nil {
		writeError(w, http.StatusNotFound, "not_found", "no console file "+name)
		return
	}
	switch {
	case strings.HasSuffix(name, ".html"):
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
	case strings.HasSuffix(name, ".js"):
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	case strings.HasSuffix(name, ".css"):
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
	}
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'")
	w.Write(b)
}

// ConsoleState is what the console polls (GET /console/api/state).
type ConsoleState struct {
	Time        time.Time             `json:"time"`
	Local       bool                  `json:"local"`
	Topology    panelState            `json:"topology"`
	ProxyHealth panelState            `json:"proxy_health"`
	IDs         []TagCount            `json:"ids"`
	Breakers    map[string]string     `json:"breakers"`
	Gray        []GrayStatus          `json:"gray"`
	Panels      map[string]panelState `json:"panels"`
}

func (s *Server) serveConsoleAPI(w http.ResponseWriter, r *http.Request, c *reqCtx) {
	switch c.rest {
	case "state":
		if r.Method != http.MethodGet {
			methodNotAllowed(w, http.MethodGet)
			return
		}
		writeJSON(w, http.StatusOK, s.consoleState(r.Context(), s.consoleLocal(r)))
	case "switchover":
		if r.Method != http.MethodPost {
			methodNotAllowed(w, http.MethodPost)
			return
		}
		var req struct {
			Shard string `json:"shard"`
			To    string `json:"to"`
		}
		if err := json.Unmarshal(c.body, &req); err != nil || !nameRE.MatchString(req.Shard) || (req.To != "" && !nameRE.MatchString(req.To)) {
			writeError(w, http.StatusBadRequest, "bad_shard", "body must be {\"shard\": NAME, \"to\": NAME or \"\"}")
			return
		}
		q := "STRATA SWITCHOVER SHARD " + req.Shard
		if req.To != "" {
			q += " TO " + req.To
		}
		s.log.Info("edge: console switchover", "statement", q, "app", c.app, "request", c.id)
		s.adminQuery(w, r, c, q)
	default:
		writeError(w, http.StatusNotFound, "not_found", "no console API "+c.rest)
	}
}

// consoleState gathers every panel at once, each bounded in time, so one
// slow source does not hold the page.
func (s *Server) consoleState(ctx context.Context, local bool) ConsoleState {
	st := ConsoleState{
		Time:     s.now().UTC(),
		Local:    local,
		IDs:      s.tags.snapshot(),
		Breakers: map[string]string{"idserver": s.idsG.state(), "proxy": s.proxyG.state()},
		Gray:     s.gray.status(),
		Panels:   map[string]panelState{},
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	wg.Go(func() { st.Topology = s.topology(ctx) })
	wg.Go(func() { st.ProxyHealth = s.proxyHealth(ctx) })
	s.panelMu.RLock()
	names := make([]string, 0, len(s.panels))
	for name := range s.panels {
		names = append(names, name)
	}
	s.panelMu.RUnlock()
	for _, name := range names {
		wg.Go(func() {
			p := s.panel(ctx, name)
			mu.Lock()
			st.Panels[name] = p
			mu.Unlock()
		})
	}
	wg.Wait()
	return st
}

func (s *Server) topology(ctx context.Context) panelState {
	if s.rows == nil {
		return panelState{Reason: "no proxy configured"}
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var out []map[string]any
	err := s.proxyG.do(ctx, func(ctx context.Context) error {
		var err error
		out, err = s.rows.Query(ctx, "SHOW STRATA SERVERS")
		return err
	})
	if err != nil {
		return panelState{Reason: err.Error()}
	}
	return panelState{Available: true, Data: out}
}

func (s *Server) proxyHealth(ctx context.Context) panelState {
	if s.cfg.Proxy.AdminURL == "" {
		return panelState{Reason: "no proxy admin URL configured"}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(s.cfg.Proxy.AdminURL, "/")+"/healthz", nil)
	if err != nil {
		return panelState{Reason: err.Error()}
	}
	resp, err := s.healthHC.Do(req)
	if err != nil {
		return panelState{Reason: err.Error()}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return panelState{Available: true, Data: map[string]any{"ok": resp.StatusCode == http.StatusOK, "text": string(b)}}
}
