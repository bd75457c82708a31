// Package testbin builds the strata binary for tests that run it as a
// process (the chaos drills, the benchmarks): once per test binary, in a
// temporary directory removed at the end.
//
// It owns only that; it imports nothing of the module.
package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Package is the strata command's import path.
const Package = "github.com/strata-db/strata/cmd/strata"

// Build builds the strata binary into dir (with the build tags given, e.g.
// chaosdebug) and returns its path.
func Build(dir string, tags ...string) (string, error) {
	name := "strata"
	if len(tags) > 0 {
		name += "-" + strings.Join(tags, "-")
	}
	bin := filepath.Join(dir, name)
	args := []string{"build", "-o", bin}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	if out, err := exec.Command("go", append(args, Package)...).CombinedOutput(); err != nil {
		return "", fmt.Errorf("building strata: %w\n%s", err, out)
	}
	return bin, nil
}

// Main is a TestMain: it builds the binary, sets *bin to its path, runs
// the tests, removes the binary and exits with the tests' code.
func Main(m *testing.M, bin *string) {
	dir, err := os.MkdirTemp("", "strata-test-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if *bin, err = Build(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
