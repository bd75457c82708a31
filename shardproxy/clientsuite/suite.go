package clientsuite

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Suite is one client module's own test suite.
type Suite struct {
	// Module is the module path, e.g. github.com/go-sql-driver/mysql. Its
	// version is the one the calling module's go.mod selects.
	Module string
	// Package is the directory of the tested package inside the module
	// ("." for the root).
	Package string
	// Skip is a -test.skip pattern (tests that must never run here).
	Skip string
	// CGO builds with cgo; off by default, which keeps the build fast and
	// turns drivers that need cgo (sqlite) into stubs that report so.
	CGO bool
	// Timeout bounds one run of the suite. Default 5m.
	Timeout time.Duration
}

// Outcome of one top-level test.
type Outcome string

// Outcomes as go test reports them.
const (
	Pass Outcome = "pass"
	Fail Outcome = "fail"
	Skip Outcome = "skip"
)

// Result is one run of a suite.
type Result struct {
	// Tests maps each top-level test that ran to its outcome.
	Tests map[string]Outcome
	// Output holds each failed test's output (subtests included).
	Output map[string]string
	// Elapsed is the run's wall time.
	Elapsed time.Duration
}

// Count returns how many tests had the outcome.
func (r *Result) Count(o Outcome) int {
	n := 0
	for _, v := range r.Tests {
		if v == o {
			n++
		}
	}
	return n
}

// Regressions returns, sorted, the tests that passed in base and did not
// pass in r (failed, or never finished).
func (r *Result) Regressions(base *Result) []string {
	var out []string
	for name, o := range base.Tests {
		if o == Pass && r.Tests[name] != Pass {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// Built is a suite's compiled test binary and the copy of its source it
// runs in.
type Built struct {
	Suite  Suite
	Dir    string // the copied package directory (the tests' working directory)
	Binary string
	// Version is the module's version that was copied.
	Version string
}

// Build copies the suite's module source from the module cache into work
// (a fresh directory) and compiles its test binary. gomodDir is a directory
// of the module whose go.mod pins the client (the caller's own module).
func Build(ctx context.Context, s Suite, gomodDir, work string) (*Built, error) {
	cmd := exec.CommandContext(ctx, "go", "list", "-m", "-json", s.Module)
	cmd.Dir = gomodDir
	cmd.Env = append(os.Environ(), "GOWORK=off")
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("clientsuite: go list -m %s: %w%s", s.Module, err, stderrOf(err))
	}
	var mod struct{ Path, Version, Dir string }
	if err := json.Unmarshal(out, &mod); err != nil {
		return nil, fmt.Errorf("clientsuite: go list -m %s: %w", s.Module, err)
	}
	if mod.Dir == "" {
		// Not downloaded yet (a fresh clone): fetch it as go mod download would.
		dl := exec.CommandContext(ctx, "go", "mod", "download", "-json", s.Module)
		dl.Dir = gomodDir
		dl.Env = cmd.Env
		if out, err = dl.Output(); err != nil {
			return nil, fmt.Errorf("clientsuite: go mod download %s: %w%s", s.Module, err, stderrOf(err))
		}
		if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
			return nil, fmt.Errorf("clientsuite: go mod download %s gave no directory (%v)", s.Module, err)
		}
	}
	src := filepath.Join(work, "src")
	if err := copyTree(mod.Dir, src); err != nil {
		return nil, err
	}
	b := &Built{Suite: s, Dir: filepath.Join(src, s.Package), Binary: filepath.Join(work, "suite.test"), Version: mod.Version}
	build := exec.CommandContext(ctx, "go", "test", "-c", "-vet=off", "-o", b.Binary, "./"+filepath.ToSlash(s.Package))
	build.Dir = src
	cgo := "0"
	if s.CGO {
		cgo = "1"
	}
	// -mod=mod: an old module's go.sum may lack lines today's go wants;
	// they are fetched and checked against the checksum database as usual.
	build.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod", "CGO_ENABLED="+cgo)
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("clientsuite: building %s@%s's tests: %w\n%s", s.Module, mod.Version, err, out)
	}
	return b, nil
}

func stderrOf(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) && len(ee.Stderr) > 0 {
		return ": " + strings.TrimSpace(string(ee.Stderr))
	}
	return ""
}

// copyTree copies a module's files (read-only in the module cache) into
// dst, writable.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
}

// Run runs the compiled suite once with env added to the environment and
// returns each top-level test's outcome. A test still running when the
// timeout ends the run counts as failed.
func (b *Built) Run(ctx context.Context, env []string) (*Result, error) {
	timeout := b.Suite.Timeout
	if timeout == 0 {
		timeout = 5 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout+30*time.Second)
	defer cancel()
	args := []string{"tool", "test2json", "-t", b.Binary, "-test.v=test2json", "-test.count=1",
		"-test.timeout=" + timeout.String()}
	if b.Suite.Skip != "" {
		args = append(args, "-test.skip="+b.Suite.Skip)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = b.Dir
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("clientsuite: %w", err)
	}
	res, perr := parse(stdout)
	werr := cmd.Wait()
	res.Elapsed = time.Since(start)
	if perr != nil {
		return res, perr
	}
	if len(res.Tests) == 0 {
		return res, fmt.Errorf("clientsuite: %s ran no test: %v\n%s", b.Suite.Module, werr, stderr.String())
	}
	// A failing suite exits 1: that is a result, not an error.
	return res, nil
}

type event struct {
	Action string
	Test   string
	Output string
}

// parse reads test2json events: outcomes of top-level tests, and the
// output of every test under a top-level one that failed.
func parse(r io.Reader) (*Result, error) {
	res := &Result{Tests: map[string]Outcome{}, Output: map[string]string{}}
	out := map[string]*strings.Builder{}
	running := map[string]bool{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var e event
		if json.Unmarshal(sc.Bytes(), &e) != nil || e.Test == "" {
			continue
		}
		top, _, _ := strings.Cut(e.Test, "/")
		switch e.Action {
		case "run":
			if top == e.Test {
				running[top] = true
			}
		case "output":
			b := out[top]
			if b == nil {
				b = &strings.Builder{}
				out[top] = b
			}
			if b.Len() < 64<<10 {
				b.WriteString(e.Output)
			}
		case "pass", "fail", "skip":
			if top == e.Test {
				res.Tests[top] = Outcome(e.Action)
				delete(running, top)
				if e.Action == "fail" && out[top] != nil {
					res.Output[top] = out[top].String()
				}
				delete(out, top)
			}
		}
	}
	// Tests cut short by the timeout or a crash.
	for name := range running {
		res.Tests[name] = Fail
		if out[name] != nil {
			res.Output[name] = out[name].String() + "\n(did not finish)"
		}
	}
	return res, sc.Err()
}
