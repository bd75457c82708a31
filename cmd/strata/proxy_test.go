package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/strata-db/strata/localdb"
)

// TestProxyConfigError: a bad config stops `strata proxy` before anything
// starts, with the file, line, field and reason.
func TestProxyConfigError(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "bad.yaml")
	src := "listen: 127.0.0.1:0\nshards:\n  - name: s0\n    primary: nohost\ndatabases:\n  test: {shard: s0}\n"
	if err := os.WriteFile(cfg, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut syncBuffer
	err := RunWithOutput(context.Background(), []string{"proxy", "--config", cfg}, &out, &errOut)
	want := cfg + `:4: shards[0].primary: "nohost" is not host:port`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want %q", err, want)
	}
	err = RunWithOutput(context.Background(), []string{"proxy"}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "config") {
		t.Fatalf("no --config: %v", err)
	}
}

// TestProxyCommand runs `strata proxy --config FILE` over a real shard and
// queries through it.
func TestProxyCommand(t *testing.T) {
	topo := localdb.StartForTest(t, localdb.TestConfig(1, 0))
	cfg := filepath.Join(t.TempDir(), "proxy.yaml")
	src := fmt.Sprintf(`listen: 127.0.0.1:0
admin_listen: "off"
backend: {user: %s}
shards:
  - {name: s0, primary: %s}
databases:
  test: {shard: s0}
`, localdb.AppUser, topo.Shards()[0].Primary().Addr())
	if err := os.WriteFile(cfg, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut syncBuffer
	done := make(chan error, 1)
	go func() { done <- RunWithOutput(ctx, []string{"proxy", "--config", cfg}, &out, &errOut) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("proxy returned %v", err)
		}
	}()
	banner := regexp.MustCompile(`mariadb -h127\.0\.0\.1 -P(\d+) -uroot`)
	var m []string
	for deadline := time.Now().Add(30 * time.Second); m == nil; m = banner.FindStringSubmatch(out.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("no banner:\n%s\n%s", out.String(), errOut.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	db, err := sql.Open("mysql", "root@tcp(127.0.0.1:"+m[1]+")/test")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v int
	if err := db.QueryRow("SELECT 40 + 2").Scan(&v); err != nil || v != 42 {
		t.Fatalf("query through the proxy: %d %v", v, err)
	}
}
