package localdb

import (
	"bytes"
	"context"
	"crypto/sha1"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
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

// Role is a server's place in its shard.
type Role string

const (
	RolePrimary Role = "primary"
	RoleReplica Role = "replica"
)

// Server is one mariadbd process and its data directory. Its methods are
// safe for concurrent use.
type Server struct {
	// Name is stable for the server's life, e.g. "s0-1"; it does not change
	// when the server's role does.
	Name string
	// Shard is the name of the shard the server belongs to.
	Shard string
	// Port is the TCP port on 127.0.0.1.
	Port int
	// ServerID is MariaDB's server_id, unique in the topology.
	ServerID int
	// Dir holds the server's data directory, log and pid file.
	Dir string

	cfg *Config
	log *slog.Logger

	mu     sync.Mutex
	role   Role
	cmd    *exec.Cmd
	exited chan struct{} // closed when the current process has been reaped
	paused bool
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)) }

// AppUser is the account applications (and the proxy) use. It has every
// privilege but READ_ONLY ADMIN, so read_only fences it: on MariaDB root
// writes to a read-only server, which would defeat the fencing of replicas
// and demoted primaries.
const AppUser = "strata"

// DSN is a go-sql-driver/mysql DSN for the application user (AppUser, no
// password) and database db (which may be empty).
func (s *Server) DSN(db string) string { return s.dsn(AppUser, db) }

// AdminDSN is a DSN for root, which may change read_only, replication and
// other global settings.
func (s *Server) AdminDSN(db string) string { return s.dsn("root", db) }

func (s *Server) dsn(user, db string) string {
	c := mysql.NewConfig()
	c.User = user
	c.Net = "tcp"
	c.Addr = s.Addr()
	c.DBName = db
	c.Timeout = 5 * time.Second
	c.ReadTimeout = 30 * time.Second
	c.WriteTimeout = 30 * time.Second
	return c.FormatDSN()
}

// Open returns a database handle to the server as the application user.
func (s *Server) Open(db string) (*sql.DB, error) {
	return sql.Open("mysql", s.DSN(db))
}

// OpenAdmin returns a database handle to the server as root.
func (s *Server) OpenAdmin(db string) (*sql.DB, error) {
	return sql.Open("mysql", s.AdminDSN(db))
}

// Role reports whether the server is its shard's primary or a replica.
func (s *Server) Role() Role {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.role
}

func (s *Server) setRole(r Role) {
	s.mu.Lock()
	s.role = r
	s.mu.Unlock()
}

// Pid is the running process's pid, or 0.
func (s *Server) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Running reports whether the process is alive (it may be paused).
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.runningLocked()
}

func (s *Server) runningLocked() bool {
	if s.cmd == nil {
		return false
	}
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

func (s *Server) dataDir() string  { return filepath.Join(s.Dir, "data") }
func (s *Server) pidFile() string  { return filepath.Join(s.Dir, "mariadbd.pid") }
func (s *Server) errorLog() string { return filepath.Join(s.Dir, "error.log") }
func (s *Server) tmpDir() string   { return filepath.Join(s.Dir, "tmp") }

// socketPath keeps the socket within the 108-byte limit of sun_path even when
// the data root is a long test directory.
func (s *Server) socketPath() string {
	p := filepath.Join(s.Dir, "mariadbd.sock")
	if len(p) < 100 {
		return p
	}
	h := sha1.Sum([]byte(p))
	return filepath.Join(os.TempDir(), "strata-"+hex.EncodeToString(h[:8])+".sock")
}

// install creates the data directory when it does not exist yet.
func (s *Server) install(ctx context.Context) error {
	if _, err := os.Stat(filepath.Join(s.dataDir(), "mysql")); err == nil {
		return nil
	}
	if err := os.MkdirAll(s.tmpDir(), 0o755); err != nil {
		return fmt.Errorf("localdb: %s: %w", s.Name, err)
	}
	// A half-made data directory from an interrupted install would make
	// mariadb-install-db fail; it holds nothing worth keeping.
	if err := os.RemoveAll(s.dataDir()); err != nil {
		return fmt.Errorf("localdb: %s: %w", s.Name, err)
	}
	args := []string{
		"--no-defaults",
		"--datadir=" + s.dataDir(),
		"--auth-root-authentication-method=normal",
		"--skip-test-db",
		// Servers sharing /tmp collide on temporary table names while
		// bootstrapping in parallel.
		"--tmpdir=" + s.tmpDir(),
		"--innodb-log-file-size=16M",
		"--innodb-buffer-pool-size=" + s.cfg.BufferPoolSize,
	}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	cmd := exec.CommandContext(ctx, s.cfg.InstallDB, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("localdb: %s: mariadb-install-db: %w: %s", s.Name, err, installError(out))
	}
	return nil
}

func (s *Server) args() []string {
	args := []string{
		"--no-defaults",
		"--datadir=" + s.dataDir(),
		"--port=" + strconv.Itoa(s.Port),
		"--socket=" + s.socketPath(),
		"--tmpdir=" + s.tmpDir(),
		"--pid-file=" + s.pidFile(),
		"--log-error=" + s.errorLog(),
		"--server-id=" + strconv.Itoa(s.ServerID),
		"--bind-address=127.0.0.1",
		"--log-bin=binlog",
		"--binlog-format=ROW",
		"--log-slave-updates",
		"--relay-log=relay",
		// Replication is configured by Start on every start, so a replica
		// never runs against a stale primary address.
		"--skip-slave-start",
		"--skip-name-resolve",
		"--innodb-buffer-pool-size=" + s.cfg.BufferPoolSize,
		"--innodb-log-file-size=16M",
		"--innodb-flush-log-at-trx-commit=" + strconv.Itoa(s.cfg.FlushLogAtTrxCommit),
		"--max-connections=" + strconv.Itoa(s.cfg.MaxConnections),
		"--character-set-server=utf8mb4",
		"--collation-server=utf8mb4_general_ci",
	}
	if s.Role() == RoleReplica {
		args = append(args, "--read-only=1")
	}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	return append(args, s.cfg.ExtraArgs...)
}

// start launches the process and waits until it accepts connections. It does
// not configure replication; the topology does.
func (s *Server) start(ctx context.Context) error {
	s.mu.Lock()
	if s.runningLocked() {
		s.mu.Unlock()
		return nil
	}
	s.mu.Unlock()

	if err := s.reapLeftover(); err != nil {
		return err
	}
	cmd := exec.Command(s.cfg.Mariadbd, s.args()...)
	// If this process dies without stopping its servers (a test binary
	// killed on timeout, say), the kernel kills them too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("localdb: %s: start mariadbd: %w", s.Name, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	s.mu.Lock()
	s.cmd, s.exited, s.paused = cmd, exited, false
	s.mu.Unlock()

	if err := s.waitReady(ctx, exited); err != nil {
		s.kill()
		return err
	}
	s.log.Info("localdb: server up", "server", s.Name, "role", s.Role(), "addr", s.Addr(), "pid", cmd.Process.Pid)
	return nil
}

func (s *Server) waitReady(ctx context.Context, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.StartTimeout)
	defer cancel()
	db, err := s.OpenAdmin("")
	if err != nil {
		return err
	}
	defer db.Close()
	var lastErr error
	for {
		select {
		case <-exited:
			return fmt.Errorf("localdb: %s exited while starting: %s", s.Name, s.errorTail())
		case <-ctx.Done():
			return fmt.Errorf("localdb: %s not ready after %v: %v: %s", s.Name, s.cfg.StartTimeout, lastErr, s.errorTail())
		default:
		}
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		var dir string
		lastErr = db.QueryRowContext(pctx, "SELECT @@datadir").Scan(&dir)
		pcancel()
		if lastErr == nil {
			// The port is chosen free, then released until mariadbd binds
			// it: another process (a proxy of a test running beside) can
			// take it meanwhile, and would answer for this server.
			if filepath.Clean(dir) != filepath.Clean(s.dataDir()) {
				return fmt.Errorf("%w: %s answered by another server (datadir %q)", errPortTaken, s.Addr(), dir)
			}
			return nil
		}
		select {
		case <-exited:
			if strings.Contains(s.errorTail(), "Address already in use") {
				return fmt.Errorf("%w: %s: %s", errPortTaken, s.Addr(), s.errorTail())
			}
		default:
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// errPortTaken: another process holds the server's port.
var errPortTaken = errors.New("localdb: port taken by another process")

func (s *Server) errorTail() string {
	b, _ := os.ReadFile(s.errorLog())
	return lastLines(b, 5)
}

// reapLeftover kills a mariadbd that an earlier run left in this server's
// data directory (its pid file names it and its command line names our data
// directory), so the new process can take the port and the directory.
func (s *Server) reapLeftover() error {
	b, err := os.ReadFile(s.pidFile())
	if err != nil {
		return nil
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return nil
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !bytes.Contains(cmdline, []byte("--datadir="+s.dataDir()+"\x00")) {
		return nil // gone, or the pid now belongs to someone else
	}
	s.log.Warn("localdb: killing leftover server", "server", s.Name, "pid", pid)
	_ = syscall.Kill(pid, syscall.SIGCONT)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("localdb: %s: kill leftover pid %d: %w", s.Name, pid, err)
	}
	for i := 0; i < 500; i++ {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("localdb: %s: leftover pid %d did not exit", s.Name, pid)
}

// Stop shuts the server down gracefully (SIGTERM), killing it if it does
// not stop within the configured timeout. Stopping a stopped server is a
// no-op.
func (s *Server) Stop() error {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	running := s.runningLocked()
	s.mu.Unlock()
	if !running {
		return nil
	}
	// A paused server cannot act on SIGTERM.
	_ = cmd.Process.Signal(syscall.SIGCONT)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(s.cfg.StopTimeout):
		s.log.Warn("localdb: server did not stop in time, killing", "server", s.Name)
		s.kill()
	}
	s.mu.Lock()
	s.paused = false
	s.mu.Unlock()
	s.log.Info("localdb: server stopped", "server", s.Name)
	return nil
}

// Kill ends the server with SIGKILL, as a crash would, and waits until the
// process is gone. Its data directory is kept: Restart brings it back.
func (s *Server) Kill() error {
	if !s.Running() {
		return fmt.Errorf("localdb: %s is not running", s.Name)
	}
	s.kill()
	s.log.Info("localdb: server killed", "server", s.Name)
	return nil
}

func (s *Server) kill() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.paused = false
	s.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-exited
}

// Pause stops the process with SIGSTOP: it holds its connections but
// answers nothing, like a server stuck in a long stall.
func (s *Server) Pause() error { return s.signal(syscall.SIGSTOP, true) }

// Resume continues a paused server with SIGCONT.
func (s *Server) Resume() error { return s.signal(syscall.SIGCONT, false) }

func (s *Server) signal(sig syscall.Signal, paused bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.runningLocked() {
		return fmt.Errorf("localdb: %s is not running", s.Name)
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("localdb: %s: %v: %w", s.Name, sig, err)
	}
	s.paused = paused
	return nil
}

// Paused reports whether the server is stopped with SIGSTOP.
func (s *Server) Paused() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.paused
}

// Exec runs statements on the server as root, each in turn.
func (s *Server) Exec(ctx context.Context, stmts ...string) error {
	db, err := s.OpenAdmin("")
	if err != nil {
		return err
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("localdb: %s: %w", s.Name, err)
	}
	defer conn.Close()
	for _, q := range stmts {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("localdb: %s: %s: %w", s.Name, q, err)
		}
	}
	return nil
}

// QueryString runs a query as root that returns one value and returns it
// as text ("" for NULL).
func (s *Server) QueryString(ctx context.Context, q string) (string, error) {
	db, err := s.OpenAdmin("")
	if err != nil {
		return "", err
	}
	defer db.Close()
	var v sql.NullString
	if err := db.QueryRowContext(ctx, q).Scan(&v); err != nil {
		return "", fmt.Errorf("localdb: %s: %s: %w", s.Name, q, err)
	}
	return v.String, nil
}

// ReplicaStatus is the part of SHOW SLAVE STATUS the callers need.
type ReplicaStatus struct {
	IORunning, SQLRunning bool
	SecondsBehindMaster   sql.NullInt64
	SQLDelay              int
	MasterPort            int
	UsingGTID             string // "Slave_Pos", "Current_Pos" or "No"
	LastError             string
}

// ReplicaStatus reads SHOW SLAVE STATUS. A server that is not replicating
// returns the zero value.
func (s *Server) ReplicaStatus(ctx context.Context) (ReplicaStatus, error) {
	db, err := s.OpenAdmin("")
	if err != nil {
		return ReplicaStatus{}, err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, "SHOW SLAVE STATUS")
	if err != nil {
		return ReplicaStatus{}, fmt.Errorf("localdb: %s: %w", s.Name, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return ReplicaStatus{}, err
	}
	var st ReplicaStatus
	if !rows.Next() {
		return st, rows.Err()
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return st, err
	}
	for i, c := range cols {
		v := vals[i]
		switch c {
		case "Slave_IO_Running":
			st.IORunning = v.String == "Yes"
		case "Slave_SQL_Running":
			st.SQLRunning = v.String == "Yes"
		case "Seconds_Behind_Master":
			if v.Valid {
				n, _ := strconv.ParseInt(v.String, 10, 64)
				st.SecondsBehindMaster = sql.NullInt64{Int64: n, Valid: true}
			}
		case "SQL_Delay":
			st.SQLDelay, _ = strconv.Atoi(v.String)
		case "Master_Port":
			st.MasterPort, _ = strconv.Atoi(v.String)
		case "Using_Gtid":
			st.UsingGTID = v.String
		case "Last_Error", "Last_IO_Error", "Last_SQL_Error":
			if v.String != "" && st.LastError == "" {
				st.LastError = v.String
			}
		}
	}
	return st, rows.Err()
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// errNotRunning tells callers that want a live server apart from real
// failures.
var errNotRunning = errors.New("localdb: server not running")

// installError picks the lines that say what went wrong out of
// mariadb-install-db's long output.
func installError(out []byte) string {
	var keep []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "ERROR") || strings.Contains(l, "[ERROR]") || strings.Contains(l, "FATAL") {
			keep = append(keep, strings.TrimSpace(l))
		}
	}
	if len(keep) == 0 {
		return lastLines(out, 10)
	}
	return strings.Join(keep, " | ")
}
