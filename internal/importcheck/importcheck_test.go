package importcheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/strata-db/strata"

// pkg is what go list says of a package: its import path and every package
// it depends on, directly or not (tests excluded).
type pkg struct {
	ImportPath string
	Deps       []string
}

// rule: packages matching from must not depend on packages matching to,
// except those matching allow. Patterns are module-relative: "x" is the
// package x, "x/..." is x and everything under it.
type rule struct {
	from, to []string
	allow    []string
	why      string
}

var rules = []rule{
	{from: []string{"shardproxy/engine/..."}, to: []string{"shardproxy/planner/..."},
		why: "the engine runs plans and never builds them"},
	{from: []string{"shardproxy/planner/...", "shardproxy/engine/..."},
		to:  []string{"shardproxy", "shardproxy/wire/...", "shardproxy/session/...", "shardproxy/executor/..."},
		why: "planning and running plans know nothing of sessions or the client protocol"},
	{from: []string{"shardproxy/wire/..."}, to: []string{"shardproxy", "shardproxy/session/...", "shardproxy/executor/...", "shardproxy/planner/...", "shardproxy/engine/..."},
		why: "the client connection calls the executor through the interfaces it declares (wire.Server, wire.Session)"},
	{from: []string{"shardproxy/session/..."}, to: []string{"shardproxy", "shardproxy/executor/...", "shardproxy/wire/...", "shardproxy/planner/..."},
		why: "a session's state and backend connections do not dispatch statements or speak the client protocol"},
	{from: []string{"shardproxy/executor/..."}, to: []string{"shardproxy"},
		why: "the server wires the executor, not the other way round"},
	{from: []string{"shardproxy/mysqlerr/...", "shardproxy/vschema/...", "shardproxy/fleet/...", "shardproxy/internal/sqltext/...", "internal/gctune/...", "raftstore/...", "localdb/..."},
		to:  []string{"..."},
		why: "leaf packages import nothing of the module"},
	{from: []string{"..."}, to: []string{"cmd/..."},
		why: "nothing imports a command"},
	{from: []string{"..."}, to: []string{"localdb/..."}, allow: []string{"cmd/...", "bench/...", "chaos/...", "shardproxy/proxytest/..."},
		why: "localdb starts servers for tests, `strata up`, bench and chaos only"},
	{from: []string{"..."}, to: []string{"shardproxy/proxytest/..."},
		why: "the test kit is for tests"},
	{from: []string{"..."}, to: []string{"shardproxy"}, allow: []string{"cmd/...", "bench/...", "chaos/...", "shardproxy/proxytest/..."},
		why: "the proxy as a server is started by commands, drills and the test kit"},
}

// TestImportRules fails on every dependency the package map forbids.
func TestImportRules(t *testing.T) {
	pkgs := list(t)
	if len(pkgs) < 10 {
		t.Fatalf("go list found %d packages", len(pkgs))
	}
	for _, p := range pkgs {
		from := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		for _, dep := range p.Deps {
			if dep != module && !strings.HasPrefix(dep, module+"/") {
				continue
			}
			to := strings.TrimPrefix(strings.TrimPrefix(dep, module), "/")
			for _, r := range rules {
				base, ok := match(r.from, from)
				if !ok || !matches(r.to, to) || matches(r.allow, from) {
					continue
				}
				if base != "" && (to == base || strings.HasPrefix(to, base+"/")) {
					continue // within the tree the rule is about
				}
				t.Errorf("%s imports %s: %s", from, to, r.why)
			}
		}
	}
}

func matches(patterns []string, p string) bool {
	_, ok := match(patterns, p)
	return ok
}

// match reports whether p matches one of patterns, and the tree ("x" of
// "x/...", "" for "..." and exact names) of the one it matched.
func match(patterns []string, p string) (base string, ok bool) {
	for _, pat := range patterns {
		switch {
		case pat == "...":
			return "", true
		case strings.HasSuffix(pat, "/..."):
			base := strings.TrimSuffix(pat, "/...")
			if p == base || strings.HasPrefix(p, base+"/") {
				return base, true
			}
		case p == pat:
			return "", true
		}
	}
	return "", false
}

func list(t *testing.T) []pkg {
	t.Helper()
	root, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	cmd := exec.Command("go", "list", "-json", "./...")
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(root)))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}
