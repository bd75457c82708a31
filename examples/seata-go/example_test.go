package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/strata-db/strata/localdb"
	"github.com/strata-db/strata/txcoord/seata"
)

// bin is this example built once for the whole test run: every role runs
// as its own process, as seata-go's client is one per process. strataBin
// is Strata's binary, for TC nodes that a test kills with SIGKILL.
var bin, strataBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "seata-go-example")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "seata-go-example")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	strataBin = filepath.Join(dir, "strata")
	sb := exec.Command("go", "build", "-o", strataBin, "./cmd/strata")
	sb.Dir = "../.." // in Strata's own module
	if out, err := sb.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build strata: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// tcConfig keeps phase two short enough for tests: an unanswered branch
// is asked again after BranchTimeout, a TM waits at most CommitWait.
func tcConfig() seata.Config {
	c := seata.DefaultConfig()
	c.BranchTimeout = time.Second
	c.RetryBackoff = 100 * time.Millisecond
	c.MaxRetryBackoff = 500 * time.Millisecond
	c.ScanInterval = 200 * time.Millisecond
	c.CommitWait = 5 * time.Second
	return c
}

// writeConfig writes a seatago.yml whose grouplist is the TC group's.
func writeConfig(t *testing.T, addrs []string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "seatago.yml")
	y := fmt.Sprintf(`seata:
  enabled: true
  application-id: strata-example
  tx-service-group: strata_tx_group
  client:
    tm:
      commit-retry-count: 5
      rollback-retry-count: 5
    undo:
      # seata-go v1.2.0 defaults to jackson but only has a json parser.
      log-serialization: json
  service:
    vgroup-mapping:
      strata_tx_group: default
    grouplist:
      default: "%s"
`, strings.Join(addrs, ","))
	if err := os.WriteFile(p, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// proc is a role's process.
type proc struct {
	cmd  *exec.Cmd
	out  *bufio.Reader
	done chan struct{}
}

func start(t *testing.T, args ...string) *proc {
	t.Helper()
	return startBin(t, bin, args...)
}

func startBin(t *testing.T, path string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(path, args...)
	cmd.Stderr = &tbWriter{t: t, prefix: args[0] + ": "}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, out: bufio.NewReader(out), done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(p.kill)
	return p
}

// kill ends the process at once (SIGKILL), as a crash would.
func (p *proc) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// line returns the first stdout line starting with prefix, without it.
func (p *proc) line(t *testing.T, prefix string, timeout time.Duration) string {
	t.Helper()
	got := make(chan string, 1)
	go func() {
		for {
			l, err := p.out.ReadString('\n')
			if strings.HasPrefix(l, prefix) {
				got <- strings.TrimSpace(strings.TrimPrefix(l, prefix))
				io.Copy(io.Discard, p.out)
				return
			}
			if err != nil {
				got <- ""
				return
			}
		}
	}()
	select {
	case l := <-got:
		if l == "" {
			t.Fatalf("%s: exited before %q", p.cmd.Args[1], prefix)
		}
		return l
	case <-time.After(timeout):
		t.Fatalf("%s: no %q within %v", p.cmd.Args[1], prefix, timeout)
		return ""
	}
}

type tbWriter struct {
	t      *testing.T
	prefix string
}

func (w *tbWriter) Write(b []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		w.t.Log(w.prefix + l)
	}
	return len(b), nil
}

// service is a TCC service process.
type service struct {
	*proc
	url, events string
}

func startService(t *testing.T, config, name, events string, extra ...string) *service {
	t.Helper()
	p := start(t, append([]string{"svc", "-config", config, "-name", name, "-events", events}, extra...)...)
	addr := p.line(t, "LISTENING ", 30*time.Second)
	return &service{proc: p, url: "http://" + addr, events: events}
}

// tmReport mirrors the tm role's report.
func tmRun(t *testing.T, config string, args ...string) tmReport {
	t.Helper()
	p := start(t, append([]string{"tm", "-config", config}, args...)...)
	l := p.line(t, "REPORT ", 90*time.Second)
	var r tmReport
	if err := json.Unmarshal([]byte(l), &r); err != nil {
		t.Fatalf("tm report %q: %v", l, err)
	}
	<-p.done
	return r
}

// events counts a service's events per kind and branch: kind -> "xid
// branch" -> count.
func events(t *testing.T, path string) map[string]map[string]int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	out := map[string]map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		kind, key, ok := strings.Cut(l, " ")
		if !ok {
			continue
		}
		if out[kind] == nil {
			out[kind] = map[string]int{}
		}
		out[kind][key]++
	}
	return out
}

// waitEvents waits until cond holds on the service's events.
func waitEvents(t *testing.T, path string, timeout time.Duration, what string, cond func(map[string]map[string]int) bool) map[string]map[string]int {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ev := events(t, path)
		if cond(ev) {
			return ev
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v; events %v", what, timeout, ev)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestTCC runs TCC transactions across two services through a 3-node TC
// group: committed ones are confirmed on both, rolled-back ones cancelled
// on both, each branch once.
func TestTCC(t *testing.T) {
	g := seata.StartGroup(t, 3, tcConfig())
	cfg := writeConfig(t, g.Addrs)
	dir := t.TempDir()
	a := startService(t, cfg, "strata-example-a", filepath.Join(dir, "a.events"))
	b := startService(t, cfg, "strata-example-b", filepath.Join(dir, "b.events"))
	svcs := a.url + "," + b.url

	r := tmRun(t, cfg, "-svc", svcs, "-mode", "commit", "-n", "5")
	if r.OK != 5 || r.Failed != 0 {
		t.Fatalf("commit: %+v", r)
	}
	for _, s := range []*service{a, b} {
		ev := waitEvents(t, s.events, 10*time.Second, "confirms", func(ev map[string]map[string]int) bool {
			return len(ev["confirm"]) == 5
		})
		if len(ev["cancel-call"]) != 0 {
			t.Fatalf("%s: cancels in committed transactions: %v", s.events, ev)
		}
		for k, n := range ev["confirm-call"] {
			if n != 1 {
				t.Errorf("%s: branch %s confirmed %d times", s.events, k, n)
			}
		}
	}

	r = tmRun(t, cfg, "-svc", svcs, "-mode", "rollback", "-n", "3")
	if r.OK != 3 || r.Failed != 0 {
		t.Fatalf("rollback: %+v", r)
	}
	for _, s := range []*service{a, b} {
		ev := waitEvents(t, s.events, 10*time.Second, "cancels", func(ev map[string]map[string]int) bool {
			return len(ev["cancel"]) == 3
		})
		if len(ev["confirm"]) != 5 {
			t.Fatalf("%s: confirms changed by rollbacks: %v", s.events, ev)
		}
	}
}

// TestTCCLeaderKilled kills the TC's leader while it is confirming the
// branches of a TCC transaction: the new leader finishes phase two, and
// each service confirms its branch once (the TC may ask again when the
// answer went to the dead node; the service dedupes, as TCC requires).
func TestTCCLeaderKilled(t *testing.T) {
	g := seata.StartGroup(t, 3, tcConfig())
	cfg := writeConfig(t, g.Addrs)
	dir := t.TempDir()
	a := startService(t, cfg, "strata-example-a", filepath.Join(dir, "a.events"), "-confirm-delay", "400ms")
	b := startService(t, cfg, "strata-example-b", filepath.Join(dir, "b.events"), "-confirm-delay", "400ms")

	rep := make(chan tmReport, 1)
	go func() { rep <- tmRun(t, cfg, "-svc", a.url+","+b.url, "-mode", "commit", "-n", "1") }()
	waitEvents(t, a.events, 20*time.Second, "phase two starts", func(ev map[string]map[string]int) bool {
		return len(ev["confirm-call"]) > 0
	})
	_, li := g.Leader(t, 5*time.Second)
	g.Kill(li)
	t.Logf("killed leader n%d during phase two", li)

	r := <-rep
	if r.OK != 1 {
		t.Fatalf("tm: %+v", r)
	}
	for _, s := range []*service{a, b} {
		ev := waitEvents(t, s.events, 20*time.Second, "confirm after failover", func(ev map[string]map[string]int) bool {
			return len(ev["confirm"]) == 1
		})
		if len(ev["cancel-call"]) != 0 {
			t.Fatalf("%s: cancelled: %v", s.events, ev)
		}
		t.Logf("%s: confirmed once by the application; the TC asked %v", filepath.Base(s.events), ev["confirm-call"])
	}
}

// TestTCCRMKilled kills a service (kill -9) after its branch registered
// and before phase two, and restarts it: the TC asks again until the
// restarted service confirms.
func TestTCCRMKilled(t *testing.T) {
	g := seata.StartGroup(t, 3, tcConfig())
	cfg := writeConfig(t, g.Addrs)
	dir := t.TempDir()
	aEvents := filepath.Join(dir, "a.events")
	a := startService(t, cfg, "strata-example-a", aEvents)
	b := startService(t, cfg, "strata-example-b", filepath.Join(dir, "b.events"))

	rep := make(chan tmReport, 1)
	go func() { rep <- tmRun(t, cfg, "-svc", a.url+","+b.url, "-mode", "commit", "-n", "1", "-hold", "2s") }()
	waitEvents(t, b.events, 20*time.Second, "both tries", func(ev map[string]map[string]int) bool {
		return len(ev["try"]) > 0
	})
	a.kill()
	r := <-rep // commits after the hold, with service a down
	if r.OK != 1 {
		t.Fatalf("tm: %+v", r)
	}
	if ev := events(t, aEvents); len(ev["confirm"]) != 0 {
		t.Fatalf("a confirmed while down: %v", ev)
	}
	startService(t, cfg, "strata-example-a", aEvents)
	for _, p := range []string{aEvents, b.events} {
		waitEvents(t, p, 30*time.Second, "confirm after restart", func(ev map[string]map[string]int) bool {
			return len(ev["confirm"]) == 1
		})
	}
}

// atRun runs the at role once and returns its report.
func atRun(t *testing.T, config, dsn, op string) atReport {
	t.Helper()
	p := start(t, "at", "-config", config, "-dsn", dsn, "-op", op)
	l := p.line(t, "REPORT ", 90*time.Second)
	var r atReport
	if err := json.Unmarshal([]byte(l), &r); err != nil {
		t.Fatalf("at report %q: %v", l, err)
	}
	<-p.done
	return r
}

// TestAT runs AT mode against MariaDB through seata-go's data source
// proxy: a commit keeps the debit and its undo log is cleaned up; a
// rollback restores the row from the undo log; a second transaction on a
// row the first holds is refused the global lock. Then XA mode, through
// seata-go's XA data source: commit and rollback.
func TestAT(t *testing.T) {
	topo := localdb.StartForTest(t, localdb.TestConfig(1, 0))
	srv := topo.Shards()[0].Primary()
	ctx := context.Background()
	if err := srv.Exec(ctx, "CREATE DATABASE IF NOT EXISTS seata_example"); err != nil {
		t.Fatal(err)
	}
	// seata-go reads before images with arguments through the driver's
	// QueryContext, which go-sql-driver/mysql answers with ErrSkip unless it
	// interpolates them itself.
	dsn := srv.DSN("seata_example") + "&interpolateParams=true"
	g := seata.StartGroup(t, 3, tcConfig())
	cfg := writeConfig(t, g.Addrs)

	r := atRun(t, cfg, dsn, "commit")
	if r.Errors[0] != "" || r.Balance1 != 90 || r.UndoLeft != 0 {
		t.Fatalf("commit: %+v", r)
	}
	r = atRun(t, cfg, dsn, "rollback")
	if r.Balance1 != 90 || r.UndoLeft != 0 || !strings.Contains(r.Errors[0], errRollback.Error()) {
		t.Fatalf("rollback: %+v", r)
	}
	r = atRun(t, cfg, dsn, "conflict")
	if r.Errors[0] != "" || r.Errors[1] == "" || r.Balance1 != 80 || r.UndoLeft != 0 {
		t.Fatalf("conflict: %+v", r)
	}
	t.Logf("second transaction on the locked row: %s", r.Errors[1])

	// XA mode through seata-go's XA data source, on the same MariaDB 10.11:
	// the TC's BranchCommit/BranchRollback end the prepared branch, and no
	// prepared transaction is left behind.
	r = atRun(t, cfg, dsn, "xa-commit")
	if r.Errors[0] != "" || r.Balance1 != 70 {
		t.Fatalf("xa commit: %+v", r)
	}
	r = atRun(t, cfg, dsn, "xa-rollback")
	if r.Balance1 != 70 || !strings.Contains(r.Errors[0], errRollback.Error()) {
		t.Fatalf("xa rollback: %+v", r)
	}
	adm, err := srv.OpenAdmin("")
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	rows, err := adm.QueryContext(ctx, "XA RECOVER")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	if rows.Next() {
		t.Fatal("a prepared XA transaction is left after XA mode")
	}
}
