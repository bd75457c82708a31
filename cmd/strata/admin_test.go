package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestAdmin runs `strata up` with read/write splitting on (1 shard, a
// primary and 2 replicas) and drives it with `strata admin`: servers lists
// all three, switchover moves the primary to the named replica, and bad
// input gets a clear error.
func TestAdmin(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "proxy.yaml")
	cfg := `listen: 127.0.0.1:0
admin_listen: "off"
backend: {user: strata}
shards: [{name: s0, primary: "127.0.0.1:1"}]
databases: {app: {shard: s0}}
read_write: {enabled: true}
`
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _ := startUp(t, "--data", filepath.Join(dir, "data"), "--mariadb-port", "0", "--innodb-buffer-pool", "32M",
		"--shards", "1", "--replicas", "2", "--config", cfgFile)
	m := proxyLine.FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no proxy banner in:\n%s", out)
	}
	admin := func(args ...string) (string, error) {
		var o, e syncBuffer
		err := RunWithOutput(context.Background(), append([]string{"admin", "--addr", m[1]}, args...), &o, &e)
		return o.String() + e.String(), err
	}
	got, err := admin("servers")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("strata admin servers:\n%s", got)
	for _, want := range []string{`(?m)^shard\s+server\s+addr\s+role\s+health`, `(?m)^s0\s+s0-0\s+\S+\s+primary\s+up`, `(?m)^s0\s+s0-2\s+\S+\s+replica\s+up`} {
		if !regexp.MustCompile(want).MatchString(got) {
			t.Errorf("servers output lacks %s", want)
		}
	}
	got, err = admin("switchover", "s0", "--to", "s0-2")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("strata admin switchover:\n%s", got)
	if !regexp.MustCompile(`(?m)^s0\s+s0-0\s+s0-2\s`).MatchString(got) {
		t.Errorf("switchover output: %s", got)
	}
	got, _ = admin("servers")
	if !regexp.MustCompile(`(?m)^s0\s+s0-2\s+\S+\s+primary\s+up`).MatchString(got) || !regexp.MustCompile(`(?m)^s0\s+s0-0\s+\S+\s+replica`).MatchString(got) {
		t.Errorf("after switchover:\n%s", got)
	}
	if _, err := admin("switchover", "s9"); err == nil || !strings.Contains(err.Error(), "shard s9") {
		t.Errorf("unknown shard: %v", err)
	}
	if _, err := admin("switchover", "s0", "--to", "s0-2"); err == nil || !strings.Contains(err.Error(), "already the primary") {
		t.Errorf("switchover to the primary: %v", err)
	}
}
