package bench

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func numCPU() int { return runtime.NumCPU() }

// proc is a process a benchmark started; it dies with the harness.
type proc struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

func startProc(dir, name string, env []string, args ...string) (*proc, error) {
	lf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); lf.Close(); close(p.exited) }()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// cpuTicks is the process's user+system CPU in clock ticks (1/100 s).
func cpuTicks(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndex(s, ")")+2:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return u + st
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func waitDialable(ctx context.Context, addr string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s does not accept connections", addr)
}

func splitAddr(addr string) (host, port string) {
	h, p, _ := net.SplitHostPort(addr)
	return h, p
}

// sysbench is one sysbench test against one MySQL address.
type sysbench struct {
	test, addr, user, db string
	tables, size         int
	extra                []string
}

func (s sysbench) args(cmd string, more ...string) []string {
	h, p := splitAddr(s.addr)
	a := []string{s.test, "--db-driver=mysql", "--mysql-host=" + h, "--mysql-port=" + p, "--mysql-user=" + s.user,
		"--mysql-db=" + s.db, fmt.Sprintf("--tables=%d", s.tables), fmt.Sprintf("--table-size=%d", s.size), "--auto-inc=off"}
	a = append(a, s.extra...)
	a = append(a, more...)
	return append(a, cmd)
}

func (s sysbench) prepare(ctx context.Context) error {
	out, err := exec.CommandContext(ctx, "sysbench", s.args("prepare")...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("sysbench prepare on %s: %v: %s", s.addr, err, lastLines(string(out), 5))
	}
	return nil
}

var (
	reQueries = regexp.MustCompile(`queries:\s+\d+\s+\(([\d.]+) per sec`)
	reAvg     = regexp.MustCompile(`avg:\s+([\d.]+)`)
	reP95     = regexp.MustCompile(`95th percentile:\s+([\d.]+)`)
	reErrors  = regexp.MustCompile(`ignored errors:\s+\d+\s+\(([\d.]+) per sec`)
	reQPS     = regexp.MustCompile(`qps: ([\d.]+)`)
)

// run runs sysbench for d with threads and parses its figures; pid, when
// non-zero, is the hop whose CPU per query is measured.
func (s sysbench) run(ctx context.Context, d time.Duration, threads, pid int) (Round, error) {
	var t0 int64
	if pid > 0 {
		t0 = cpuTicks(pid)
	}
	cmd := exec.CommandContext(ctx, "sysbench", s.args("run", fmt.Sprintf("--threads=%d", threads), fmt.Sprintf("--time=%d", int(d.Seconds())), "--report-interval=1", "--percentile=95")...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return Round{}, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return Round{}, fmt.Errorf("sysbench: %w (is it installed? make bench-deps)", err)
	}
	var r Round
	r.Unit = "queries/s"
	var all strings.Builder
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		all.WriteString(line + "\n")
		if strings.HasPrefix(line, "[ ") {
			if m := reQPS.FindStringSubmatch(line); m != nil {
				v, _ := strconv.ParseFloat(m[1], 64)
				r.PerSecond = append(r.PerSecond, v)
			}
		}
	}
	if err := cmd.Wait(); err != nil {
		return Round{}, fmt.Errorf("sysbench run on %s: %v: %s %s", s.addr, err, lastLines(all.String(), 5), stderr.String())
	}
	text := all.String()
	if m := reQueries.FindStringSubmatch(text); m != nil {
		r.Rate, _ = strconv.ParseFloat(m[1], 64)
	}
	if m := reAvg.FindStringSubmatch(text); m != nil {
		r.AvgMs, _ = strconv.ParseFloat(m[1], 64)
	}
	if m := reP95.FindStringSubmatch(text); m != nil {
		r.P95Ms, _ = strconv.ParseFloat(m[1], 64)
	}
	if m := reErrors.FindStringSubmatch(text); m != nil {
		r.Errors, _ = strconv.ParseFloat(m[1], 64)
	}
	if r.Rate == 0 {
		return r, fmt.Errorf("sysbench on %s: no figures in its output: %s", s.addr, lastLines(text, 5))
	}
	if pid > 0 {
		ticks := cpuTicks(pid) - t0
		r.CPUus = float64(ticks) * 10000 / (r.Rate * d.Seconds())
	}
	return r, nil
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, " | ")
}

func param(e *Env, k string, def int) int {
	if v, ok := e.Params[k]; ok {
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
	}
	return def
}
