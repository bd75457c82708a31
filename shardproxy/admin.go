package shardproxy

import (
	"fmt"
	"net/http"
	"net/http/pprof"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// adminMux serves /metrics, /healthz and /debug/pprof/ on the admin port.
func (s *Server) adminMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", s.healthz)
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// healthz is 200 when every shard's primary answers, 503 (with the servers
// that do not) otherwise.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	var bad []string
	for _, name := range s.cluster.ShardNames() {
		p := s.cluster.Shard(name).Primary
		if !p.Healthy() {
			bad = append(bad, fmt.Sprintf("%s: %s", p, p.LastError()))
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if len(bad) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		for _, b := range bad {
			fmt.Fprintln(w, b)
		}
		return
	}
	fmt.Fprintln(w, "ok")
}
