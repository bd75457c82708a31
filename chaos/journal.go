package chaos

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
)

// The journal is what a drill has changed that must be undone, written to
// disk before each change is made, so that `strata chaos cleanup` can undo
// it after the drill itself crashed (SIGKILL, OOM, power). Toxics need no
// entry: Toxiproxy is embedded, so they die with the drill's process.

// Entry kinds.
const (
	// jProcess is a process the drill started: cleanup kills it (SIGCONT,
	// then SIGKILL) if its command line still matches.
	jProcess = "process"
	// jPaused is a process the drill stopped with SIGSTOP: cleanup sends
	// SIGCONT.
	jPaused = "paused"
	// jDelay is a replica the drill gave a MASTER_DELAY: cleanup sets it
	// back to 0.
	jDelay = "delay"
	// jKilled is a process of an external stack the drill killed: cleanup
	// starts its command line again if nothing listens on its address.
	jKilled = "killed"
	// jClock is an ID service node whose clock the drill moved (its HTTP
	// address in Addr): cleanup sets the offset back to 0.
	jClock = "clock"
	// jDir is a directory the drill made for its own stack: cleanup
	// removes it once the processes in it are gone.
	jDir = "dir"
)

// JournalEntry is one thing to undo.
type JournalEntry struct {
	ID      int      `json:"id"`
	Kind    string   `json:"kind"`
	What    string   `json:"what"`
	Pid     int      `json:"pid,omitempty"`
	Cmdline []string `json:"cmdline,omitempty"`
	Cwd     string   `json:"cwd,omitempty"`
	Addr    string   `json:"addr,omitempty"` // host:port of the server concerned
	Path    string   `json:"path,omitempty"`
}

type journalFile struct {
	Pid     int            `json:"pid"`
	Drill   string         `json:"drill"`
	Started time.Time      `json:"started"`
	Entries []JournalEntry `json:"entries"`
}

// journal keeps the file in step with the drill's changes.
type journal struct {
	mu   sync.Mutex
	path string
	f    journalFile
	next int
}

// DefaultStateDir is where drills keep their journals unless told
// otherwise.
func DefaultStateDir() string { return filepath.Join(os.TempDir(), "strata-chaos") }

func openJournal(dir, drill string) (*journal, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("chaos: journal: %w", err)
	}
	if err := ownedPrivate(dir); err != nil {
		return nil, err
	}
	j := &journal{
		// The pid says whose it is; the suffix keeps two drills of one
		// process (tests) apart.
		path: filepath.Join(dir, fmt.Sprintf("journal-%d-%d.json", os.Getpid(), time.Now().UnixNano())),
		f:    journalFile{Pid: os.Getpid(), Drill: drill, Started: time.Now().UTC()},
	}
	return j, j.save()
}

// add records an entry and returns its id for done.
func (j *journal) add(e JournalEntry) int {
	if j == nil {
		return 0
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.next++
	e.ID = j.next
	j.f.Entries = append(j.f.Entries, e)
	_ = j.saveLocked()
	return e.ID
}

// done drops an entry that has been undone.
func (j *journal) done(id int) {
	if j == nil || id == 0 {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	for i, e := range j.f.Entries {
		if e.ID == id {
			j.f.Entries = append(j.f.Entries[:i], j.f.Entries[i+1:]...)
			break
		}
	}
	_ = j.saveLocked()
}

func (j *journal) save() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.saveLocked()
}

func (j *journal) saveLocked() error {
	b, err := json.MarshalIndent(j.f, "", "  ")
	if err != nil {
		return err
	}
	tmp := j.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("chaos: journal: %w", err)
	}
	return os.Rename(tmp, j.path)
}

// close removes the journal: nothing is left to undo.
func (j *journal) close() {
	if j == nil {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	_ = os.Remove(j.path)
}

// CleanupResult says what Cleanup undid.
type CleanupResult struct {
	Journals int
	Undone   []string
	Errors   []error
}

// Cleanup undoes what the drills whose journals are in dir left behind,
// skipping journals of drills that are still running (unless force). Each
// entry is undone in reverse order of recording; a journal is removed when
// every entry of it was undone.
func Cleanup(ctx context.Context, dir string, force bool, out io.Writer) CleanupResult {
	var res CleanupResult
	// A journal says which processes to kill and which command lines to
	// start again: one that another user could have written (the default
	// directory is under /tmp) is not followed.
	if err := ownedPrivate(dir); err != nil {
		res.Errors = append(res.Errors, err)
		return res
	}
	files, _ := filepath.Glob(filepath.Join(dir, "journal-*.json"))
	for _, path := range files {
		if err := ownedPrivate(path); err != nil {
			res.Errors = append(res.Errors, err)
			continue
		}
		b, err := os.ReadFile(path)
		if err != nil {
			res.Errors = append(res.Errors, err)
			continue
		}
		var jf journalFile
		if err := json.Unmarshal(b, &jf); err != nil {
			res.Errors = append(res.Errors, fmt.Errorf("%s: %w", path, err))
			continue
		}
		if !force && jf.Pid != os.Getpid() && processAlive(jf.Pid) && isStrata(jf.Pid) {
			fmt.Fprintf(out, "skipping %s: drill %q (pid %d) is still running (--force to clean it anyway)\n", path, jf.Drill, jf.Pid)
			continue
		}
		res.Journals++
		failed := false
		// Processes first (so a paused server's SIGCONT and the kill of a
		// started one are not raced by anything else), directories last.
		order := []string{jPaused, jProcess, jKilled, jDelay, jClock, jDir}
		for _, kind := range order {
			for i := len(jf.Entries) - 1; i >= 0; i-- {
				e := jf.Entries[i]
				if e.Kind != kind {
					continue
				}
				if err := undo(ctx, e); err != nil {
					failed = true
					res.Errors = append(res.Errors, fmt.Errorf("%s: %s %s: %w", filepath.Base(path), e.Kind, e.What, err))
					continue
				}
				res.Undone = append(res.Undone, fmt.Sprintf("%s %s", e.Kind, e.What))
				fmt.Fprintf(out, "undone: %s %s\n", e.Kind, e.What)
			}
		}
		if !failed {
			_ = os.Remove(path)
		}
	}
	return res
}

// ownedPrivate checks that path (not followed if a symlink) belongs to
// this user and that no other user may write it.
func ownedPrivate(path string) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return fmt.Errorf("chaos: journal: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("chaos: journal: %s: no owner", path)
	}
	if fi.Mode()&os.ModeSymlink != 0 || int(st.Uid) != os.Getuid() || fi.Mode().Perm()&0o002 != 0 {
		return fmt.Errorf("chaos: journal: %s is not this user's or others may write it (owner uid %d, mode %v): not trusted", path, st.Uid, fi.Mode())
	}
	return nil
}

func undo(ctx context.Context, e JournalEntry) error {
	switch e.Kind {
	case jPaused:
		if !sameProcess(e.Pid, e.Cmdline) {
			return nil
		}
		return syscall.Kill(e.Pid, syscall.SIGCONT)
	case jProcess:
		if !sameProcess(e.Pid, e.Cmdline) {
			return nil
		}
		_ = syscall.Kill(e.Pid, syscall.SIGCONT)
		if err := syscall.Kill(e.Pid, syscall.SIGKILL); err != nil {
			return err
		}
		return waitGone(e.Pid, 10*time.Second)
	case jKilled:
		if e.Addr != "" && dialable(e.Addr) {
			return nil // someone brought it back already
		}
		if _, err := restartDetached(e.Cmdline, e.Cwd); err != nil {
			return err
		}
		if err := waitDialable(ctx, e.Addr, 60*time.Second); err != nil {
			return err
		}
		resumeReplication(ctx, e.Cmdline, e.Addr)
		return nil
	case jDelay:
		return setDelay(ctx, e.Addr, 0)
	case jClock:
		if !dialable(e.Addr) {
			return nil // gone (a drill's own node dies with it)
		}
		return setClockOffset(ctx, e.Addr, 0)
	case jDir:
		if e.Path == "" || !strings.Contains(filepath.Base(e.Path), "strata-chaos") {
			return fmt.Errorf("refusing to remove %q: not a drill directory", e.Path)
		}
		return os.RemoveAll(e.Path)
	}
	return fmt.Errorf("unknown entry kind %q", e.Kind)
}

// setDelay sets MASTER_DELAY on the replica at addr, as root.
func setDelay(ctx context.Context, addr string, d time.Duration) error {
	db, err := rootDB(addr)
	if err != nil {
		return err
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	for _, q := range []string{"STOP SLAVE", fmt.Sprintf("CHANGE MASTER TO MASTER_DELAY=%d", int(d.Round(time.Second)/time.Second)), "START SLAVE"} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %s: %w", addr, q, err)
		}
	}
	return nil
}

func rootDB(addr string) (*sql.DB, error) {
	c := mysql.NewConfig()
	c.User, c.Net, c.Addr = "root", "tcp", addr
	c.Timeout, c.ReadTimeout, c.WriteTimeout = 5*time.Second, 30*time.Second, 30*time.Second
	c.Logger = quietDriver
	conn, err := mysql.NewConnector(c)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(conn), nil
}

func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func isStrata(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err == nil && bytes.Contains(b, []byte("chaos"))
}

func cmdlineOf(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(b) == 0 {
		return nil
	}
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
}

// sameProcess is true when pid still runs the command recorded for it (a
// pid reused by another program is left alone).
func sameProcess(pid int, cmdline []string) bool {
	if !processAlive(pid) {
		return false
	}
	// No recorded command line matches nothing: it cannot tell the
	// drill's process from one that got its pid since.
	got := cmdlineOf(pid)
	return len(cmdline) > 0 && len(got) > 0 && strings.Join(got, "\x00") == strings.Join(cmdline, "\x00")
}

func waitGone(pid int, d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
			return nil
		}
		// A zombie child of ours: not gone until reaped; it is reaped by
		// its exec.Cmd's Wait, or by init for orphans.
		if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && bytes.Contains(st, []byte(") Z ")) {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("pid %d did not exit", pid)
}

// restartDetached starts a command line again in its own session, not a
// child that dies with us: it replaces a process of a stack we do not own.
func restartDetached(cmdline []string, cwd string) (int, error) {
	if len(cmdline) == 0 {
		return 0, errors.New("no command line recorded")
	}
	cmd := exec.Command(cmdline[0], cmdline[1:]...)
	cmd.Dir = cwd
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	pid := cmd.Process.Pid
	go func() { _ = cmd.Wait() }()
	return pid, nil
}

func dialable(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func waitDialable(ctx context.Context, addr string, d time.Duration) error {
	if addr == "" {
		return nil
	}
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if dialable(addr) {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s does not accept connections", addr)
}

// pidListening finds the process listening on a TCP port of this machine
// (through /proc/net/tcp and the processes' socket descriptors).
func pidListening(addr string) (int, error) {
	_, ps, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, err
	}
	port, _ := strconv.Atoi(ps)
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) < 10 || fs[3] != "0A" { // 0A: LISTEN
				continue
			}
			_, hexPort, _ := strings.Cut(fs[1], ":")
			if p, err := strconv.ParseInt(hexPort, 16, 32); err == nil && int(p) == port {
				inodes["socket:["+fs[9]+"]"] = true
			}
		}
	}
	if len(inodes) == 0 {
		return 0, fmt.Errorf("nothing listens on %s", addr)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, fd := range procs {
		if l, err := os.Readlink(fd); err == nil && inodes[l] {
			pid, _ := strconv.Atoi(strings.Split(fd, "/")[2])
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no process found listening on %s", addr)
}

// resumeReplication starts replication again on a MariaDB replica that was
// started anew: localdb starts servers with --skip-slave-start (it points
// replicas at their primary itself), and a drill that restarts a server of
// a stack it does not own must do that part too.
func resumeReplication(ctx context.Context, cmdline []string, addr string) {
	if len(cmdline) == 0 || !strings.Contains(cmdline[0], "mariadbd") && !strings.Contains(cmdline[0], "mysqld") {
		return
	}
	db, err := rootDB(addr)
	if err != nil {
		return
	}
	defer db.Close()
	_, _ = db.ExecContext(ctx, "START SLAVE") // a primary has nothing to start: ignored
}
