package hottest

import (
	"net"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-db/strata/localdb"
	"github.com/strata-db/strata/shardproxy"
	"github.com/strata-db/strata/shardproxy/config"
	"github.com/strata-db/strata/shardproxy/proxytest"
)

// useTopo points cfg at the local servers of topo, on free ports.
func useTopo(cfg *config.Config, topo *localdb.Topology) {
	cfg.Listen, cfg.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Backend.User, cfg.Backend.Password = localdb.AppUser, ""
	cfg.Shards = nil
	for _, sh := range topo.Shards() {
		s := config.Shard{Name: sh.Name, Primary: sh.Primary().Addr()}
		for _, r := range sh.Replicas() {
			s.Replicas = append(s.Replicas, r.Addr())
		}
		cfg.Shards = append(cfg.Shards, s)
	}
	for _, d := range cfg.Databases {
		if !d.Sharded {
			d.Shard = topo.Shards()[0].Name
		}
	}
}

// proxy is a running proxy server.
type proxy struct {
	*proxytest.Proxy
	srv *shardproxy.Server
	reg *prometheus.Registry
}

// stop stops it and waits; safe to call twice.
func (p *proxy) stop() { p.Stop() }

// launch starts a proxy with cfg; it stops at the end of the test (or
// at stop).
func launch(t testing.TB, cfg *config.Config) *proxy {
	t.Helper()
	p := proxytest.StartConfig(t, cfg)
	return &proxy{Proxy: p, srv: p.Server, reg: p.Registry}
}

func splitAddr(t testing.TB, addr string) (string, string) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return h, p
}

// metricValue is the value of a counter or gauge the proxy registered.
func metricValue(t testing.TB, p *proxy, name string) float64 {
	t.Helper()
	mfs, err := p.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		total := 0.0
		for _, m := range mf.GetMetric() {
			total += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
		return total
	}
	return 0
}
