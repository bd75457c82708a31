package chaos

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/strata-db/strata/localdb"
)

// startTestProxy runs `strata proxy` over topo (direct addresses, read/write
// split on) and returns its MySQL address; it is killed when the test ends.
func startTestProxy(t *testing.T, topo *localdb.Topology) string {
	t.Helper()
	listen, _ := freeAddr()
	admin, _ := freeAddr()
	var b strings.Builder
	fmt.Fprintf(&b, "listen: %s\nadmin_listen: %s\nusers: [{name: root, password: \"\"}]\nbackend: {user: %s, password: \"\"}\nshards:\n", listen, admin, localdb.AppUser)
	for _, sh := range topo.Shards() {
		var reps []string
		for _, r := range sh.Replicas() {
			reps = append(reps, strconv.Quote(r.Addr()))
		}
		fmt.Fprintf(&b, "  - {name: %s, primary: %q, replicas: [%s]}\n", sh.Name, sh.Primary().Addr(), strings.Join(reps, ", "))
	}
	b.WriteString("databases:\n  chaos: {sharded: true, tables: {set_items: {kind: sharded, column: id}}}\nread_write: {enabled: true}\n")
	cfg := filepath.Join(t.TempDir(), "proxy.yaml")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(strataBin, "proxy", "--log-level", "warn", "--config", cfg)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if err := waitDialable(context.Background(), listen, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	return listen
}

// waitJournal waits until the journal in dir holds an entry of each kind.
// drill, when not nil, is the `strata chaos run` writing it: its exit ends
// the wait at once, with its output (out) in the failure.
func waitJournal(t *testing.T, dir string, drill *exec.Cmd, out fmt.Stringer, kinds ...string) {
	t.Helper()
	output := func() string {
		if out == nil {
			return ""
		}
		return "\ndrill output:\n" + out.String()
	}
	// A local drill first brings up its own MariaDB servers: minutes on a
	// loaded 2-core CI machine running every package at once.
	deadline := time.Now().Add(4 * time.Minute)
	for time.Now().Before(deadline) {
		if drill != nil && !running(drill.Process.Pid) {
			t.Fatalf("the drill exited before its journal held %v%s", kinds, output())
		}
		files, _ := filepath.Glob(filepath.Join(dir, "journal-*.json"))
		for _, f := range files {
			b, _ := os.ReadFile(f)
			var jf journalFile
			if json.Unmarshal(b, &jf) != nil {
				continue
			}
			have := map[string]bool{}
			for _, e := range jf.Entries {
				have[e.Kind] = true
			}
			all := true
			for _, k := range kinds {
				all = all && have[k]
			}
			if all {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the drill's journal in %s never held %v%s", dir, kinds, output())
}

// lockedBuffer is a child's output, read while the child still writes it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func procState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "gone"
	}
	s := string(b)
	i := strings.LastIndex(s, ")")
	return strings.Fields(s[i+1:])[0]
}

func pidOf(t *testing.T, s *localdb.Server) int {
	b, err := os.ReadFile(filepath.Join(s.Dir, "mariadbd.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// slaveStatus reads SQL_Delay and whether both replication threads run.
func slaveStatus(ctx context.Context, addr string) (delay int, running bool, err error) {
	db, err := rootDB(addr)
	if err != nil {
		return 0, false, err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, "SHOW SLAVE STATUS")
	if err != nil {
		return 0, false, err
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	if !rows.Next() {
		return 0, false, fmt.Errorf("%s: not a replica", addr)
	}
	vals := make([]sql.RawBytes, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return 0, false, err
	}
	m := map[string]string{}
	for i, c := range cols {
		m[c] = string(vals[i])
	}
	delay, _ = strconv.Atoi(m["SQL_Delay"])
	return delay, m["Slave_IO_Running"] == "Yes" && m["Slave_SQL_Running"] == "Yes", nil
}

// TestCleanupAfterDrillKilled: a drill against a running stack is killed
// with SIGKILL in the middle of its faults (a replica paused, another given
// a MASTER_DELAY and then killed); `strata chaos cleanup` then brings every
// server back up and writable (the primary) or replicating with no delay
// (the replicas).
func TestCleanupAfterDrillKilled(t *testing.T) {
	t.Parallel()
	topo := localdb.StartForTest(t, localdb.TestConfig(1, 2))
	sh := topo.Shards()[0]
	primary, r1, r2 := sh.Primary(), sh.Replicas()[0], sh.Replicas()[1]
	// The drill kills r2 and cleanup starts it again, outside topo: stop
	// that process when the test ends (before topo stops the others).
	t.Cleanup(func() {
		if pid := pidOf(t, r2); pid > 0 && !r2.Running() {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			_ = waitGone(pid, 10*time.Second)
		}
	})
	proxy := startTestProxy(t, topo)

	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	drill := filepath.Join(dir, "drill.yaml")
	yml := fmt.Sprintf(`name: killed-midway
target:
  external: {proxy: %q, mariadb_root: %q, database: chaos}
duration: 120s
workloads:
  - {kind: set, clients: 2}
faults:
  - {kind: pause, target: "mariadb:%s", at: 1s}
  - {kind: lag, target: "mariadb:%s", at: 1s, params: {delay: 30s}}
  - {kind: kill, target: "mariadb:%s", at: 2s}
`, proxy, topo.Root(), r1.Name, r2.Name, r2.Name)
	if err := os.WriteFile(drill, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(strataBin, "chaos", "run", drill, "--state", state)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitJournal(t, state, cmd, out, jPaused, jDelay, jKilled)
	// The journal names a kill before the kill: wait for the kill itself.
	for deadline := time.Now().Add(30 * time.Second); (r2.Running() || procState(r1.Pid()) != "T") && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	t.Logf("drill output before SIGKILL:\n%s", out)

	// The damage is there.
	if st := procState(r1.Pid()); st != "T" {
		t.Fatalf("%s: state %s, want T (stopped)", r1.Name, st)
	}
	if dialable(r2.Addr()) {
		t.Fatalf("%s still answers after the kill", r2.Name)
	}

	cl := exec.Command(strataBin, "chaos", "cleanup", "--state", state)
	b, err := cl.CombinedOutput()
	t.Logf("strata chaos cleanup:\n%s", b)
	if err != nil {
		t.Fatalf("cleanup: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if st := procState(r1.Pid()); st == "T" || st == "gone" {
		t.Fatalf("%s: state %s after cleanup", r1.Name, st)
	}
	// The primary takes writes; both replicas replicate them, without delay.
	if err := primary.Exec(ctx, "CREATE DATABASE IF NOT EXISTS cleanup_check", "CREATE TABLE IF NOT EXISTS cleanup_check.t (id INT PRIMARY KEY)", "REPLACE INTO cleanup_check.t VALUES (1)"); err != nil {
		t.Fatalf("primary not writable: %v", err)
	}
	pos, err := primary.QueryString(ctx, "SELECT @@gtid_binlog_pos")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []*localdb.Server{r1, r2} {
		waitReplicating(t, r)
		db, _ := rootDB(r.Addr())
		var res int
		err := db.QueryRowContext(ctx, fmt.Sprintf("SELECT MASTER_GTID_WAIT('%s', 30)", pos)).Scan(&res)
		db.Close()
		if err != nil || res != 0 {
			t.Fatalf("%s did not catch up: %d %v", r.Name, res, err)
		}
	}
	if files, _ := filepath.Glob(filepath.Join(state, "journal-*.json")); len(files) != 0 {
		t.Fatalf("journals left after cleanup: %v", files)
	}
}

// TestCleanupAfterLocalDrillKilled: a drill with its own local stack is
// killed in the middle of a network fault; nothing of it outlives it after
// cleanup (its servers and services die with it, its toxics are in its own
// process, cleanup removes its directory).
func TestCleanupAfterLocalDrillKilled(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	drill := filepath.Join(dir, "drill.yaml")
	yml := `name: local-killed
target:
  local: {shards: 1, replicas: 1}
duration: 120s
workloads:
  - {kind: set, clients: 2}
faults:
  - {kind: latency, target: "shard:s0", at: 1s, params: {latency: 50ms}}
  - {kind: pause, target: "replica:s0", at: 1s}
`
	if err := os.WriteFile(drill, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(strataBin, "chaos", "run", drill, "--state", state)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitJournal(t, state, cmd, out, jPaused, jProcess, jDir)
	time.Sleep(200 * time.Millisecond) // the pause itself follows its entry
	files, _ := filepath.Glob(filepath.Join(state, "journal-*.json"))
	b, _ := os.ReadFile(files[0])
	var jf journalFile
	_ = json.Unmarshal(b, &jf)
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()

	if out, err := exec.Command(strataBin, "chaos", "cleanup", "--state", state).CombinedOutput(); err != nil {
		t.Fatalf("cleanup: %v\n%s", err, out)
	}
	for _, e := range jf.Entries {
		switch e.Kind {
		case jProcess:
			if err := waitGone(e.Pid, 10*time.Second); err != nil && sameProcess(e.Pid, e.Cmdline) {
				t.Errorf("%s (pid %d) outlived the drill and its cleanup", e.What, e.Pid)
			}
		case jDir:
			if _, err := os.Stat(e.Path); err == nil {
				t.Errorf("%s left behind", e.Path)
			}
		}
	}
	if files, _ := filepath.Glob(filepath.Join(state, "journal-*.json")); len(files) != 0 {
		t.Fatalf("journals left after cleanup: %v", files)
	}
}

// TestInterruptUndoesFaults: a drill interrupted (Ctrl-C: its context
// cancelled) while a replica is paused and another delayed undoes both
// before Run returns, and says it was interrupted.
func TestInterruptUndoesFaults(t *testing.T) {
	t.Parallel()
	topo := localdb.StartForTest(t, localdb.TestConfig(1, 2))
	sh := topo.Shards()[0]
	r1, r2 := sh.Replicas()[0], sh.Replicas()[1]
	proxy := startTestProxy(t, topo)
	yml := fmt.Sprintf(`name: interrupted
target:
  external: {proxy: %q, mariadb_root: %q, database: chaos}
duration: 120s
workloads:
  - {kind: set, clients: 2}
faults:
  - {kind: pause, target: "mariadb:%s", at: 1s}
  - {kind: lag, target: "mariadb:%s", at: 1s, params: {delay: 30s}}
`, proxy, topo.Root(), r1.Name, r2.Name)
	d, err := Parse("interrupted.yaml", []byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := Run(ctx, d, Options{StateDir: state, Logger: localdb.TestLogger(t)})
		done <- err
	}()
	waitJournal(t, state, nil, nil, jPaused, jDelay)
	for deadline := time.Now().Add(30 * time.Second); procState(r1.Pid()) != "T" && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // the delay is set after its entry
	cancel()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "interrupted") {
			t.Fatalf("Run: %v, want interrupted", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("Run did not return after its context was cancelled")
	}
	if st := procState(r1.Pid()); st == "T" {
		t.Fatalf("%s still paused", r1.Name)
	}
	waitReplicating(t, r2)
	if files, _ := filepath.Glob(filepath.Join(state, "journal-*.json")); len(files) != 0 {
		t.Fatalf("journal left: %v", files)
	}
}

// waitReplicating waits (30 s at most) until replica r replicates with no
// delay: right after START SLAVE its IO thread is still connecting.
func waitReplicating(t *testing.T, r *localdb.Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		delay, running, err := slaveStatus(ctx, r.Addr())
		if err == nil && delay == 0 && running {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("%s: SQL_Delay %d, replicating %v, err %v", r.Name, delay, running, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
