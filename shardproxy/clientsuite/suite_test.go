package clientsuite_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	_ "github.com/jmoiron/sqlx" // pins sqlx in go.mod: its suite runs here

	"github.com/strata-db/strata/localdb"
	"github.com/strata-db/strata/shardproxy"
	"github.com/strata-db/strata/shardproxy/clientsuite"
	"github.com/strata-db/strata/shardproxy/config"
	"github.com/strata-db/strata/shardproxy/tlscert"
)

// proxyOver starts a proxy over topo's first shard with the unsharded
// database test, as `strata up` has it (reads on the replicas in global
// consistency, TLS offered), and returns its address.
func proxyOver(t *testing.T, topo *localdb.Topology) string {
	t.Helper()
	c := config.DefaultConfig()
	c.Listen, c.AdminListen = "127.0.0.1:0", "off"
	c.Backend.User = localdb.AppUser
	sh := topo.Shards()[0]
	s := config.Shard{Name: sh.Name, Primary: sh.Primary().Addr()}
	for _, r := range sh.Replicas() {
		s.Replicas = append(s.Replicas, r.Addr())
	}
	c.Shards = []config.Shard{s}
	c.Databases = map[string]*config.Database{"test": {Shard: sh.Name}}
	c.ReadWrite.Enabled = len(s.Replicas) > 0
	c.ReadWrite.Consistency = "global"
	certs, err := tlscert.Ensure(t.TempDir(), []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	c.TLS.Cert, c.TLS.Key = certs.Cert, certs.Key
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := shardproxy.New(ctx, shardproxy.Options{Config: c, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return srv.Addr()
}

// suiteCase is one client suite with what it needs.
type suiteCase struct {
	suite clientsuite.Suite
	// env points the suite at addr as user, database test.
	env func(addr, user string) []string
	// knownGap: tests that pass directly and still fail through the proxy,
	// with why (issue 9). The test fails on any other such test.
	knownGap map[string]string
}

var suites = []suiteCase{
	{
		// go-sql-driver/mysql's own suite, skipping only
		// TestConnectorReturnsTimeout (it dials off this machine).
		suite: clientsuite.Suite{Module: "github.com/go-sql-driver/mysql", Package: ".", Skip: "^TestConnectorReturnsTimeout$"},
		env: func(addr, user string) []string {
			return []string{"MYSQL_TEST_ADDR=" + addr, "MYSQL_TEST_USER=" + user, "MYSQL_TEST_PASS=", "MYSQL_TEST_PROT=tcp", "MYSQL_TEST_DBNAME=test"}
		},
		knownGap: map[string]string{
			"TestLoadData": "LOAD DATA LOCAL INFILE: the proxy does not relay the client's file (4166)",
		},
	},
	{
		// jmoiron/sqlx's own suite on MySQL only (its sqlite and postgres
		// parts are skipped; sqlite's driver builds as a stub without cgo).
		suite: clientsuite.Suite{Module: "github.com/jmoiron/sqlx", Package: "."},
		env: func(addr, user string) []string {
			return []string{"SQLX_MYSQL_DSN=" + user + "@tcp(" + addr + ")/test?parseTime=true", "SQLX_POSTGRES_DSN=skip", "SQLX_SQLITE_DSN=skip"}
		},
		knownGap: map[string]string{},
	},
}

// TestClientSuites runs each client's own test suite directly against
// MariaDB and through the proxy's unsharded database test, prints both
// counts, and fails when a test that passes directly fails through the
// proxy and is not in the suite's known gap.
func TestClientSuites(t *testing.T) {
	if testing.Short() {
		t.Skip("runs clients' whole test suites twice")
	}
	ctx := context.Background()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	// Build while MariaDB starts.
	type built struct {
		b   *clientsuite.Built
		err error
		d   time.Duration
	}
	builds := make([]chan built, len(suites))
	for i, sc := range suites {
		builds[i] = make(chan built, 1)
		work := t.TempDir()
		go func() {
			start := time.Now()
			b, err := clientsuite.Build(ctx, sc.suite, wd, work)
			builds[i] <- built{b, err, time.Since(start)}
		}()
	}
	topo := localdb.StartForTest(t, localdb.TestConfig(1, 1))
	proxy := proxyOver(t, topo) // creates database test on the shard
	direct := topo.Shards()[0].Primary().Addr()
	for i, sc := range suites {
		bt := <-builds[i]
		t.Run(sc.suite.Module, func(t *testing.T) {
			if bt.err != nil {
				t.Fatal(bt.err)
			}
			t.Logf("built %s@%s's tests in %v", sc.suite.Module, bt.b.Version, bt.d.Round(time.Millisecond))
			compare(t, bt.b, sc, direct, proxy)
		})
	}
}

func compare(t *testing.T, b *clientsuite.Built, sc suiteCase, directAddr, proxyAddr string) {
	ctx := context.Background()
	direct, err := b.Run(ctx, sc.env(directAddr, localdb.AppUser))
	if err != nil {
		t.Fatal(err)
	}
	proxied, err := b.Run(ctx, sc.env(proxyAddr, "root"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s@%s: directly %d passed, %d failed, %d skipped (%v); through the proxy %d passed, %d failed, %d skipped (%v)",
		sc.suite.Module, b.Version,
		direct.Count(clientsuite.Pass), direct.Count(clientsuite.Fail), direct.Count(clientsuite.Skip), direct.Elapsed.Round(time.Millisecond),
		proxied.Count(clientsuite.Pass), proxied.Count(clientsuite.Fail), proxied.Count(clientsuite.Skip), proxied.Elapsed.Round(time.Millisecond))
	for name := range direct.Tests {
		if direct.Tests[name] == clientsuite.Fail {
			t.Logf("fails directly too (not counted): %s: %s", name, firstError(direct.Output[name]))
		}
	}
	var gaps []string
	for _, name := range proxied.Regressions(direct) {
		if why, ok := sc.knownGap[name]; ok {
			gaps = append(gaps, name+" ("+why+"): "+firstError(proxied.Output[name]))
			continue
		}
		t.Errorf("%s passes directly and fails through the proxy:\n%s", name, proxied.Output[name])
	}
	sort.Strings(gaps)
	if len(gaps) > 0 {
		t.Logf("known gap, %d tests:\n  %s", len(gaps), strings.Join(gaps, "\n  "))
	}
	for name := range sc.knownGap {
		if direct.Tests[name] == clientsuite.Pass && proxied.Tests[name] == clientsuite.Pass {
			t.Logf("%s now passes through the proxy: take it off the known gap", name)
		}
	}
}

// firstError is the first line of a test's output that a t.Error or
// t.Fatal wrote (file.go:N: ...).
func firstError(out string) string {
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		if i := strings.Index(l, "_test.go:"); i > 0 && !strings.HasPrefix(l, "---") {
			return l
		}
	}
	return "(no error line)"
}
