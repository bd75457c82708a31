package shardproxy_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/strata-db/strata/localdb"
	"github.com/strata-db/strata/shardproxy/config"
	"github.com/strata-db/strata/shardproxy/proxytest"
)

// TestPrimaryAfterSwitchover: what the proxy sends a shard's primary itself
// (CREATE DATABASE for create_databases at start, SELECT VERSION()) and what
// /healthz reports follow the primary the read/write router routes writes
// to, not the configured one. After STRATA SWITCHOVER, /healthz names the new
// primary, and a proxy started from the configuration written before it
// (old primary first) creates its databases on the new primary, where
// CREATE DATABASE through it goes too.
func TestPrimaryAfterSwitchover(t *testing.T) {
	topo := localdb.StartForTest(t, localdb.TestConfig(1, 1))
	sh := topo.Shards()[0]
	oldPrimary, target := sh.Primary(), sh.Replicas()[0]
	staleConfig := func(dbs ...string) func(*config.Config) {
		return func(c *config.Config) {
			c.ReadWrite.Enabled = true
			c.Shards = []config.Shard{{Name: sh.Name, Primary: oldPrimary.Addr(), Replicas: []string{target.Addr()}}}
			for _, d := range dbs {
				c.Databases[d] = &config.Database{Shard: sh.Name}
			}
		}
	}
	a := proxytest.Start(t, topo, staleConfig())
	waitFleetHealthy(t, a)
	if code, body := httpGet(t, "http://"+a.Server.AdminAddr()+"/healthz"); code != 200 || !strings.Contains(body, oldPrimary.Addr()) {
		t.Fatalf("healthz before the switchover: %d %s", code, body)
	}
	db := a.Open(t, a.Test, "readTimeout=30s")
	var shard, from, to, pos, repointed, not string
	var held, took int
	if err := db.QueryRow("STRATA SWITCHOVER SHARD "+sh.Name+" TO "+target.Name).Scan(&shard, &from, &to, &pos, &held, &took, &repointed, &not); err != nil {
		t.Fatal(err)
	}
	t.Logf("switchover %s -> %s", from, to)
	// The fleet takes the new primary at once; its health in the next check.
	waitFor(t, 10*time.Second, func() bool {
		code, body := httpGet(t, "http://"+a.Server.AdminAddr()+"/healthz")
		return code == 200 && strings.Contains(body, target.Addr()) && !strings.Contains(body, oldPrimary.Addr())
	})

	b := proxytest.Start(t, topo, staleConfig("after_switchover"))
	waitFleetHealthy(t, b)
	if code, body := httpGet(t, "http://"+b.Server.AdminAddr()+"/healthz"); code != 200 || !strings.Contains(body, target.Addr()) || strings.Contains(body, oldPrimary.Addr()) {
		t.Errorf("healthz of a proxy started after the switchover: %d %s", code, body)
	}
	hasDB := func(s *localdb.Server) bool {
		v, err := s.QueryString(context.Background(), "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = 'after_switchover'")
		if err != nil {
			t.Fatal(err)
		}
		return v == "1"
	}
	if !hasDB(target) {
		t.Errorf("create_databases did not create after_switchover on the new primary %s", target.Name)
	}
	bdb := b.Open(t, b.Test, "readTimeout=30s")
	proxytest.MustExec(t, bdb, "DROP DATABASE after_switchover")
	if hasDB(target) {
		t.Fatal("DROP DATABASE through the proxy left the database on the new primary")
	}
	proxytest.MustExec(t, bdb, "CREATE DATABASE after_switchover")
	if !hasDB(target) {
		t.Error("CREATE DATABASE through the proxy did not reach the new primary")
	}
	if v, err := target.QueryString(context.Background(), "SELECT VERSION()"); err != nil || b.Server.Version() != v {
		t.Errorf("announced version %q, the primary's %q (%v)", b.Server.Version(), v, err)
	}
}

// waitFleetHealthy waits until the read/write router sees every server
// healthy.
func waitFleetHealthy(t *testing.T, p *proxytest.Proxy) {
	t.Helper()
	waitFor(t, 10*time.Second, func() bool {
		for _, s := range p.Server.ReadWrite().Fleet().Status() {
			if !s.Healthy {
				return false
			}
		}
		return true
	})
}
