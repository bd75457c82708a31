package main

import (
	"context"
	"crypto/tls"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/strata-db/strata/localdb"
	"github.com/strata-db/strata/shardproxy/tlscert"
)

// checkUpTLS uses the TLS that `strata up` offers: the CA and server
// certificate are in <data>/tls, go-sql-driver connects with
// tls=skip-verify and with the CA registered as a TLS config (verifying the
// server), the mariadb client with --ssl and with --ssl-ca and
// --ssl-verify-server-cert, and a plain client still connects.
func checkUpTLS(t *testing.T, out, data, addr string) {
	t.Helper()
	f := tlscert.Paths(filepath.Join(data, "tls"))
	if !strings.Contains(out, "TLS      offered; CA "+f.CA) {
		t.Errorf("the banner does not say TLS is offered with CA %s:\n%s", f.CA, out)
	}
	pool, err := tlscert.CAPool(f.CA)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.ReplaceAll(t.Name(), "/", "-") + "-ca"
	if err := mysql.RegisterTLSConfig(name, &tls.Config{RootCAs: pool}); err != nil {
		t.Fatal(err)
	}
	defer mysql.DeregisterTLSConfig(name)
	for _, mode := range []string{"skip-verify", name, "false"} {
		db, err := sql.Open("mysql", "root@tcp("+addr+")/test?tls="+mode)
		if err != nil {
			t.Fatal(err)
		}
		var v int
		err = db.QueryRow("SELECT 7").Scan(&v)
		db.Close()
		if err != nil || v != 7 {
			t.Errorf("go-sql-driver tls=%s: %d %v", mode, v, err)
		}
	}
	host, port := strings.Split(addr, ":")[0], strings.Split(addr, ":")[1]
	for _, args := range [][]string{
		{"--ssl"},
		{"--ssl", "--ssl-ca=" + f.CA, "--ssl-verify-server-cert"},
	} {
		cmd := exec.Command("mariadb", append([]string{"--no-defaults", "-h" + host, "-P" + port, "-uroot", "-e", "status"}, args...)...)
		got, err := cmd.CombinedOutput()
		if err != nil || !regexp.MustCompile(`SSL:\s+Cipher in use is \S+`).Match(got) {
			t.Errorf("mariadb %v: %v\n%s", args, err, got)
		}
	}
}

// TestProxyTLSRequire runs `strata proxy` with tls.dir and tls.require: the
// proxy makes its certificates in the directory, a client that does not
// upgrade gets 3159, one that does is served, and a second start reuses
// the same certificates.
func TestProxyTLSRequire(t *testing.T) {
	topo := localdb.StartForTest(t, localdb.TestConfig(1, 0))
	dir := t.TempDir()
	cfg := filepath.Join(dir, "proxy.yaml")
	certs := filepath.Join(dir, "certs")
	src := fmt.Sprintf(`listen: 127.0.0.1:0
admin_listen: "off"
backend: {user: %s}
tls: {dir: %s, require: true}
shards: [{name: s0, primary: %s}]
databases: {test: {shard: s0}}
`, localdb.AppUser, certs, topo.Shards()[0].Primary().Addr())
	if err := os.WriteFile(cfg, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	var first []byte
	for run := 0; run < 2; run++ {
		ctx, cancel := context.WithCancel(context.Background())
		var out, errOut syncBuffer
		done := make(chan error, 1)
		go func() { done <- RunWithOutput(ctx, []string{"proxy", "--config", cfg}, &out, &errOut) }()
		banner := regexp.MustCompile(`mariadb -h127\.0\.0\.1 -P(\d+) -uroot`)
		var m []string
		for deadline := time.Now().Add(30 * time.Second); m == nil || !strings.Contains(out.String(), "TLS "); m = banner.FindStringSubmatch(out.String()) {
			if time.Now().After(deadline) {
				cancel()
				t.Fatalf("no banner:\n%s\n%s", out.String(), errOut.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		if !strings.Contains(out.String(), "TLS      required; CA "+filepath.Join(certs, "ca.pem")) {
			t.Errorf("banner:\n%s", out.String())
		}
		addr := "127.0.0.1:" + m[1]
		plain, _ := sql.Open("mysql", "root@tcp("+addr+")/test")
		err := plain.Ping()
		plain.Close()
		var me *mysql.MySQLError
		if !errors.As(err, &me) || me.Number != 3159 {
			t.Errorf("plain client with tls.require: %v, want 3159", err)
		}
		enc, _ := sql.Open("mysql", "root@tcp("+addr+")/test?tls=skip-verify")
		var v int
		if err := enc.QueryRow("SELECT 5").Scan(&v); err != nil || v != 5 {
			t.Errorf("TLS client: %d %v", v, err)
		}
		enc.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("proxy returned %v", err)
		}
		cert, err := os.ReadFile(filepath.Join(certs, "server-cert.pem"))
		if err != nil {
			t.Fatal(err)
		}
		if run == 0 {
			first = cert
		} else if string(cert) != string(first) {
			t.Error("the second start made new certificates")
		}
	}
}
