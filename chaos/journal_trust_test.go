package chaos

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestCleanupKillsOnlyMatchingCommandLine: an entry without a command line
// (or with another) does not kill the process that holds its pid now.
func TestCleanupKillsOnlyMatchingCommandLine(t *testing.T) {
	cmd := startSleep(t)
	pid := cmd.Process.Pid
	for _, cl := range [][]string{nil, {"sleep", "31"}} {
		if err := undo(context.Background(), JournalEntry{Kind: jProcess, What: "x", Pid: pid, Cmdline: cl}); err != nil {
			t.Fatal(err)
		}
		if !running(pid) {
			t.Fatalf("cmdline %q: killed pid %d, which runs sleep 30", cl, pid)
		}
	}
	if err := undo(context.Background(), JournalEntry{Kind: jProcess, What: "x", Pid: pid, Cmdline: cmd.Args}); err != nil {
		t.Fatal(err)
	}
	// The signal is delivered asynchronously: give the process a moment
	// to become a zombie (seconds on a loaded CI machine: a fresh-clone
	// run once saw it still running after 5 s).
	for deadline := time.Now().Add(30 * time.Second); running(pid); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			st, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
			t.Fatalf("matching cmdline: pid %d still runs 30 s after undo (stat: %s; cmdline %q)", pid, st, cmdlineOf(pid))
		}
	}
}

// startSleep starts `sleep 30` and returns once /proc shows its command
// line. Start returns when the exec has begun, but the kernel sets the new
// image's arguments a little later: a CI run once read an empty command
// line there, so undo took the sleep for another program and left it.
func startSleep(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for deadline := time.Now().Add(10 * time.Second); !slices.Equal(cmdlineOf(cmd.Process.Pid), cmd.Args); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("pid %d: command line %q 10 s after start", cmd.Process.Pid, cmdlineOf(cmd.Process.Pid))
		}
	}
	return cmd
}

// running: pid exists and is not a zombie (a killed child of the test
// stays one until reaped).
func running(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	return err == nil && !strings.Contains(string(b), ") Z ")
}

// TestCleanupRefusesForeignJournals: a journal directory or file others may
// write is not followed (it names processes to kill and commands to run).
func TestCleanupRefusesForeignJournals(t *testing.T) {
	dir := t.TempDir()
	cmd := startSleep(t)
	b, _ := json.Marshal(journalFile{Pid: 0, Drill: "planted", Started: time.Now(),
		Entries: []JournalEntry{{ID: 1, Kind: jProcess, What: "victim", Pid: cmd.Process.Pid, Cmdline: cmd.Args}}})
	path := filepath.Join(dir, "journal-1-"+strconv.Itoa(cmd.Process.Pid)+".json")
	if err := os.WriteFile(path, b, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	res := Cleanup(context.Background(), dir, true, io.Discard)
	if len(res.Errors) == 0 || !running(cmd.Process.Pid) {
		t.Fatalf("world-writable journal followed: %+v", res)
	}
	os.Chmod(path, 0o644)
	os.Chmod(dir, 0o777)
	res = Cleanup(context.Background(), dir, true, io.Discard)
	if len(res.Errors) == 0 || !running(cmd.Process.Pid) {
		t.Fatalf("journal in a world-writable directory followed: %+v", res)
	}
	if _, err := openJournal(dir, "d"); err == nil {
		t.Fatal("openJournal used a world-writable directory")
	}
	os.Chmod(dir, 0o700)
	if res = Cleanup(context.Background(), dir, true, io.Discard); len(res.Errors) != 0 || res.Journals != 1 {
		t.Fatalf("own journal: %+v", res)
	}
}
