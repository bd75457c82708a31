package shardproxy

import (
	"fmt"
	"net/http"
	"net/http/pprof"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/strata-db/strata/shardproxy/fleet"
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
// that do not) otherwise; the 200 names the primaries. With read/write
// splitting they are the fleet's primaries and its health checks: after a
// switchover the configured primary is a replica, and its health says
// nothing of the shard's writes.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	var good, bad []string
	if s.rw != nil {
		good, bad = s.fleetPrimaries()
	} else {
		for _, name := range s.cluster.ShardNames() {
			p := s.cluster.Shard(name).Primary
			if p.Healthy() {
				good = append(good, p.String())
			} else {
				bad = append(bad, fmt.Sprintf("%s: %s", p, p.LastError()))
			}
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
	for _, g := range good {
		fmt.Fprintln(w, g)
	}
}

// fleetPrimaries describes each shard's primary as the read/write router
// routes writes to it.
func (s *Server) fleetPrimaries() (good, bad []string) {
	primary := map[string]fleet.ServerStatus{}
	for _, st := range s.rw.Fleet().Status() {
		if st.Role == fleet.RolePrimary {
			primary[st.Shard] = st
		}
	}
	for _, name := range s.cluster.ShardNames() {
		st, ok := primary[name]
		switch {
		case !ok:
			bad = append(bad, name+": no primary")
		case !st.Healthy:
			bad = append(bad, fmt.Sprintf("%s: primary %s (%s): %s", name, st.Name, st.Addr, st.LastError))
		default:
			good = append(good, fmt.Sprintf("%s: primary %s (%s)", name, st.Name, st.Addr))
		}
	}
	return good, bad
}
