package edge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Panel is a source of one console panel's data (and of the matching
// admin route): hot_keys, cache, transactions, seata, drills. Fetch
// returns JSON-encodable data, or an error the console shows as "not
// available".
type Panel interface {
	Fetch(ctx context.Context) (any, error)
}

// PanelFunc is a Panel.
type PanelFunc func(ctx context.Context) (any, error)

// Fetch calls f.
func (f PanelFunc) Fetch(ctx context.Context) (any, error) { return f(ctx) }

// errNotAvailable marks a panel whose component does not expose its data.
var errNotAvailable = errors.New("not available")

func unavailable(why string) Panel {
	return PanelFunc(func(context.Context) (any, error) { return nil, fmt.Errorf("%w: %s", errNotAvailable, why) })
}

// URLPanel fetches a JSON document from u (a component's HTTP endpoint).
func URLPanel(u string) Panel {
	hc := &http.Client{Timeout: 2 * time.Second}
	return PanelFunc(func(ctx context.Context) (any, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errNotAvailable, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
		if err != nil {
			return nil, err
		}
		if resp.StatusCode/100 != 2 {
			return nil, fmt.Errorf("%w: %s answered %d", errNotAvailable, u, resp.StatusCode)
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			return nil, fmt.Errorf("%s: not JSON: %w", u, err)
		}
		return v, nil
	})
}

// FilesPanel reads the JSON documents matching a glob, newest first (at
// most 20): drill reports that `strata chaos run --report DIR` writes as
// DIR/report.json, for example. Configured as a file:// source
// (console.sources.drills: file:///var/lib/strata/drills/*/report.json).
func FilesPanel(glob string) Panel {
	return PanelFunc(func(context.Context) (any, error) {
		paths, err := filepath.Glob(glob)
		if err != nil {
			return nil, err
		}
		type file struct {
			Path     string    `json:"path"`
			Modified time.Time `json:"modified"`
			Doc      any       `json:"doc"`
		}
		var out []file
		for _, p := range paths {
			st, err := os.Stat(p)
			if err != nil || st.IsDir() {
				continue
			}
			out = append(out, file{Path: p, Modified: st.ModTime().UTC()})
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("%w: nothing matches %s yet", errNotAvailable, glob)
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Modified.After(out[j].Modified) })
		out = out[:min(len(out), 20)]
		for i := range out {
			b, err := os.ReadFile(out[i].Path)
			if err == nil {
				err = json.Unmarshal(b, &out[i].Doc)
			}
			if err != nil {
				out[i].Doc = map[string]string{"error": err.Error()}
			}
		}
		return out, nil
	})
}

// sourcePanel is the Panel of a console.sources entry: http(s) URLs are
// fetched, file:// globs read.
func sourcePanel(src string) Panel {
	if glob, ok := strings.CutPrefix(src, "file://"); ok {
		return FilesPanel(glob)
	}
	return URLPanel(src)
}

// ProxyPanel is a Panel of the rows a statement returns through the proxy
// (this edge's connection, behind its circuit breaker): SHOW STRATA
// TRANSACTIONS for the transactions panel, for example.
func (s *Server) ProxyPanel(q string) Panel {
	return PanelFunc(func(ctx context.Context) (any, error) {
		if s.rows == nil {
			return nil, fmt.Errorf("%w: no proxy configured", errNotAvailable)
		}
		var out []map[string]any
		err := s.proxyG.do(ctx, func(ctx context.Context) error {
			var err error
			out, err = s.rows.Query(ctx, q)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", errNotAvailable, q, err)
		}
		if out == nil {
			out = []map[string]any{} // none: an empty list, not "no data"
		}
		return out, nil
	})
}

// panelState is a panel as the console and the admin API show it.
type panelState struct {
	Available bool   `json:"available"`
	Reason    string `json:"reason,omitempty"`
	Data      any    `json:"data,omitempty"`
}

func (s *Server) panel(ctx context.Context, name string) panelState {
	s.panelMu.RLock()
	p := s.panels[name]
	s.panelMu.RUnlock()
	if p == nil {
		return panelState{Reason: "unknown panel"}
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	v, err := p.Fetch(ctx)
	if err != nil {
		return panelState{Reason: strings.TrimPrefix(err.Error(), errNotAvailable.Error()+": ")}
	}
	return panelState{Available: true, Data: v}
}

// adminRoutes lists the admin API (also checked against openapi.json).
//
//	GET    servers                      SHOW STRATA SERVERS through the proxy
//	POST   switchover/{shard}[?to=S]    STRATA SWITCHOVER SHARD
//	POST   failover/{shard}[?to=S]      STRATA FAILOVER SHARD
//	GET    transactions|seata|drills|hot_keys|cache   the panels' sources
//	GET    keys                         key names
//	PUT    keys/{app}                   add or rotate a key (KeyUpdate)
//	DELETE keys/{app}
//	GET    gray                         gray-release rules and shares
//	PUT    gray                         change a share (GrayUpdate)
func (s *Server) serveAdmin(w http.ResponseWriter, r *http.Request, c *reqCtx) {
	head, arg, _ := strings.Cut(c.rest, "/")
	switch head {
	case "servers":
		if r.Method != http.MethodGet {
			methodNotAllowed(w, http.MethodGet)
			return
		}
		s.adminQuery(w, r, c, "SHOW STRATA SERVERS")
	case "switchover", "failover":
		if r.Method != http.MethodPost {
			methodNotAllowed(w, http.MethodPost)
			return
		}
		to := r.URL.Query().Get("to")
		if !nameRE.MatchString(arg) || (to != "" && !nameRE.MatchString(to)) {
			writeError(w, http.StatusBadRequest, "bad_shard", "shard and server names are 1-64 of A-Z a-z 0-9 _ . -")
			return
		}
		q := "STRATA " + strings.ToUpper(head) + " SHARD " + arg
		if to != "" {
			q += " TO " + to
		}
		s.log.Info("edge: admin", "statement", q, "app", c.app, "request", c.id)
		s.adminQuery(w, r, c, q)
	case "transactions", "seata", "drills", "hot_keys", "cache":
		if r.Method != http.MethodGet {
			methodNotAllowed(w, http.MethodGet)
			return
		}
		st := s.panel(r.Context(), head)
		code := http.StatusOK
		if !st.Available {
			code = http.StatusServiceUnavailable
			w.Header().Set("X-Strata-Reason", "not_available")
		}
		writeJSON(w, code, st)
	case "keys":
		s.adminKeys(w, r, c, arg)
	case "gray":
		switch r.Method {
		case http.MethodGet:
			writeJSON(w, http.StatusOK, s.gray.status())
		case http.MethodPut:
			var u GrayUpdate
			if err := json.Unmarshal(c.body, &u); err != nil {
				writeError(w, http.StatusBadRequest, "bad_request", "body must be {\"route\", \"app\", \"share\"}")
				return
			}
			if err := s.gray.set(u); err != nil {
				code := http.StatusBadRequest
				if errors.Is(err, errNoRule) {
					code = http.StatusNotFound
				}
				writeError(w, code, "bad_request", err.Error())
				return
			}
			s.log.Info("edge: gray share changed", "route", u.Route, "app", u.App, "share", u.Share, "by", c.app)
			writeJSON(w, http.StatusOK, s.gray.status())
		default:
			methodNotAllowed(w, "GET, PUT")
		}
	default:
		writeError(w, http.StatusNotFound, "not_found", "no admin route "+head)
	}
}

func (s *Server) adminQuery(w http.ResponseWriter, r *http.Request, c *reqCtx, q string) {
	if s.rows == nil {
		writeError(w, http.StatusServiceUnavailable, "no_backend", "no proxy configured")
		return
	}
	var out []map[string]any
	err := s.proxyG.do(r.Context(), func(ctx context.Context) error {
		var err error
		out, err = s.rows.Query(ctx, q)
		return err
	})
	if err != nil {
		s.backendError(w, c, "proxy", err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) adminKeys(w http.ResponseWriter, r *http.Request, c *reqCtx, name string) {
	switch {
	case name == "" && r.Method == http.MethodGet:
		n := s.keys.names()
		sort.Strings(n)
		writeJSON(w, http.StatusOK, map[string][]string{"keys": n})
	case name != "" && r.Method == http.MethodPut:
		var u KeyUpdate
		if err := json.Unmarshal(c.body, &u); err != nil {
			writeError(w, http.StatusBadRequest, "bad_request", "body must be {\"secret\", \"admin\", \"limit\", \"grace\"}")
			return
		}
		if err := s.keys.set(name, u, s.now()); err != nil {
			writeError(w, http.StatusBadRequest, "bad_request", err.Error())
			return
		}
		s.log.Info("edge: key set", "key", name, "admin", u.Admin, "by", c.app, "request", c.id)
		writeJSON(w, http.StatusOK, map[string]any{"key": name, "admin": u.Admin})
	case name != "" && r.Method == http.MethodDelete:
		ok, err := s.keys.remove(name)
		switch {
		case err != nil:
			writeError(w, http.StatusInternalServerError, "state_file", err.Error())
		case !ok:
			writeError(w, http.StatusNotFound, "not_found", "no key "+name)
		default:
			s.log.Info("edge: key removed", "key", name, "by", c.app, "request", c.id)
			writeJSON(w, http.StatusOK, map[string]any{"key": name, "removed": true})
		}
	default:
		methodNotAllowed(w, "GET keys, PUT or DELETE keys/{app}")
	}
}
