package edge

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigErrors: a bad config fails naming the file, the line, the
// field and the problem, and never prints a secret.
func TestConfigErrors(t *testing.T) {
	cases := []struct{ yaml, want string }{
		{"listen: nowhere\n", "edge.yaml:1: listen: \"nowhere\" is not host:port"},
		{"apps:\n  - name: shop\n    secret: short-but-secret\n  - name: shop\n    secret: another-long-secret\n", "edge.yaml:4: apps[1].name: \"shop\" appears twice"},
		{"apps:\n  - name: shop\n    secret: tiny\n", "edge.yaml:3: apps[0].secret: shorter than 16 bytes"},
		{"apps:\n  - name: shop\n    secret_env: STRATA_EDGE_TEST_UNSET\n", "apps[0].secret_env: environment variable STRATA_EDGE_TEST_UNSET is empty"},
		{"limits:\n  app:\n    rate: 10\n", "edge.yaml:3: limits.app.burst: must be at least 1 when rate is set"},
		{"limits:\n  routes:\n    idz:\n      app: {rate: 1, burst: 1}\n", "edge.yaml:4: limits.routes.idz: unknown route"},
		{"limits:\n  fleet:\n    lease_from: http://127.0.0.1:8080\n", "limits.fleet.key: a fleet member needs an admin key"},
		{"gray:\n  - route: ids\n    share: 1.5\n    canary: http://127.0.0.1:9\n", "edge.yaml:3: gray[0].share: 1.5 is not between 0 and 1"},
		{"gray:\n  - route: ids\n    share: 0.5\n    by: cookie\n    canary: http://127.0.0.1:9\n", "gray[0].by: \"cookie\" is not app, ip or header:NAME"},
		{"gray:\n  - route: ids\n    canary: ftp://x\n", "gray[0].canary: \"ftp://x\" is not an http(s) URL"},
		{"console:\n  sources:\n    weather: http://127.0.0.1:1/\n", "console.sources.weather: unknown panel"},
		{"idserver:\n  timeout: soon\n", "edge.yaml"},
		{"listen: 127.0.0.1:8080\nlisten_typo: 1\n", "edge.yaml:2"},
		{"proxy:\n  keys:\n    demo: id\n", "proxy.keys.demo: \"demo\" is not db.table"},
	}
	dir := t.TempDir()
	for _, c := range cases {
		p := filepath.Join(dir, "edge.yaml")
		if err := os.WriteFile(p, []byte(c.yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Load(p)
		if err == nil {
			t.Errorf("%q: accepted", c.yaml)
			continue
		}
		msg := strings.ReplaceAll(err.Error(), dir+string(filepath.Separator), "")
		if !strings.Contains(msg, c.want) {
			t.Errorf("%q:\n got %s\nwant %s", c.yaml, msg, c.want)
		}
		for _, secret := range []string{"short-but-secret", "another-long-secret", "tiny"} {
			if strings.Contains(msg, secret) {
				t.Errorf("the error shows a secret: %s", msg)
			}
		}
	}
	good := "listen: 127.0.0.1:0\napps:\n  - name: shop\n    secret: shop-secret-0123456789\n    limit: {rate: 100, burst: 10}\nlimits:\n  ip: {rate: 1000, burst: 100}\n  routes:\n    ids: {app: {rate: 50, burst: 5}}\n"
	p := filepath.Join(dir, "good.yaml")
	os.WriteFile(p, []byte(good), 0o600)
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.Apps[0].Limit.Rate != 100 || c.Limits.Routes["ids"].App.Burst != 5 || c.Window.Minutes() != 5 {
		t.Fatalf("loaded %+v", c)
	}
}
