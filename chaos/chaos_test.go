package chaos

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-db/strata/chaos/plot"
	"github.com/strata-db/strata/internal/testbin"
	"github.com/strata-db/strata/localdb"
)

// strataBin is the strata binary the drills run (built once by TestMain).
var strataBin string

func TestMain(m *testing.M) { testbin.Main(m, &strataBin) }

// runDrill runs a drill file's short form with a binary and fails the test
// if it could not run.
func runDrill(t *testing.T, path, bin string, env ...string) *Report {
	t.Helper()
	d, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rep, err := Run(ctx, d, Options{Binary: bin, StateDir: t.TempDir(), Short: true, Env: env, Logger: localdb.TestLogger(t)})
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var sb strings.Builder
	PrintSummary(&sb, rep)
	t.Log(sb.String())
	return rep
}

// TestShippedDrills runs the short form of every drill in drills/ against
// a local stack: each must pass. They run in parallel: a drill mostly
// waits (for its faults, for timeouts), and its checks are about
// correctness, not speed, so sharing the cores changes no verdict.
func TestShippedDrills(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob("../drills/*.yaml")
	if len(files) < 8 {
		t.Fatalf("want the eight shipped drills, found %v", files)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".yaml"), func(t *testing.T) {
			t.Parallel()
			rep := runDrill(t, f, strataBin)
			if !rep.Passed {
				t.Fatalf("drill failed")
			}
			if len(rep.Checks) == 0 || rep.Ops == 0 {
				t.Fatalf("no checks or no operations: %+v", rep)
			}
			for _, fr := range rep.Faults {
				if fr.Start < 0 || fr.End <= fr.Start {
					t.Errorf("fault %s was not active: %+v", fr.Name, fr)
				}
			}
			if strings.Contains(f, "primary-crash") {
				screenshotReport(t, rep)
			}
		})
	}
}

// screenshotReport writes the drill's report and looks at it in headless
// Chromium; the PNG goes to $STRATA_SCREENSHOTS (kept) or the test's
// temporary directory.
func screenshotReport(t *testing.T, rep *Report) {
	t.Helper()
	dir := t.TempDir()
	_, h, err := WriteReport(dir, rep)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(h)
	for _, want := range []string{"<svg", "Throughput", "p99", "errors/s", rep.Faults[0].Name, "fill-opacity=\"0.18\""} {
		if !strings.Contains(string(b), want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	out := dir
	if d := os.Getenv("STRATA_SCREENSHOTS"); d != "" {
		out = d
	}
	png := filepath.Join(out, "drill-"+rep.Drill+".png")
	if err := plot.Screenshot(context.Background(), h, png, 1050, 1400); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the drill report: %s", png)
}

// TestCheckersCatchBrokenStack builds strata with -tags chaosdebug, whose
// debug switches break the stack on purpose, and shows that the drills
// then fail with the checker naming the anomaly.
func TestCheckersCatchBrokenStack(t *testing.T) {
	t.Parallel()
	bin, err := testbin.Build(t.TempDir(), "chaosdebug")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		drill, switches string
		want            [][2]string // checker, anomaly kind
	}{
		{"testdata/broken-ryw.yaml", "skip-ryw", [][2]string{{"ryw", "stale read"}}},
		{"testdata/broken-ids.yaml", "reissue-ids", [][2]string{{"ids", "duplicate ID"}}},
		{"testdata/broken-strong.yaml", "strong-on-replicas", [][2]string{{"register", "not linearizable"}, {"cache", "stale read"}}},
		{"testdata/broken-bank.yaml", "drop-commit", [][2]string{{"bank", "lost transfer"}}},
		{"testdata/broken-set.yaml", "drop-commit", [][2]string{{"set", "lost write"}}},
		{"testdata/broken-clock.yaml", "ignore-clock-backwards", [][2]string{{"ids", "duplicate ID"}, {"ids", "order violated"}}},
		{"testdata/broken-xa.yaml", "xa-leave-prepared,skip-xa-recovery", [][2]string{{"xa", "prepared branch left in doubt"}, {"bank", "lost transfer"}}},
	} {
		t.Run(strings.TrimSuffix(filepath.Base(tc.drill), ".yaml"), func(t *testing.T) {
			t.Parallel()
			rep := runDrill(t, tc.drill, bin, "STRATA_CHAOSDEBUG="+tc.switches)
			if rep.Passed {
				t.Fatalf("drill passed against a stack broken with %s", tc.switches)
			}
			for _, w := range tc.want {
				found := false
				for _, c := range rep.Checks {
					for _, a := range c.Anomalies {
						found = found || (c.Name == w[0] && a.Kind == w[1] && len(a.Ops) > 0)
					}
				}
				if !found {
					t.Errorf("checker %s did not name a %q with its operations: %+v", w[0], w[1], rep.Checks)
				}
			}
		})
	}
}

func TestParseErrorsNameFileAndField(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"target: {local: {}}\nduration: 5s\nworkloads: [{kind: sets}]\n", `x.yaml: workloads[0].kind: "sets": want one of`},
		{"target: {local: {}}\nduration: 5s\nworkloads: [{kind: set}]\nfaults: [{kind: kill, target: nowhere, at: 1s}]\n", `x.yaml: faults[0].target: "nowhere"`},
		{"target: {local: {}}\nduration: 5s\nworkloads: [{kind: set}]\nfaults: [{kind: kill, target: proxy, at: 9s}]\n", "x.yaml: faults[0].at: 9s: must be within the duration"},
		{"target: {local: {}}\nduration: soon\nworkloads: [{kind: set}]\n", "x.yaml: "},
		{"duration: 5s\nworkloads: [{kind: set}]\n", "x.yaml: target: required"},
		{"target: {external: {proxy: 127.0.0.1:1}}\nduration: 5s\nworkloads: [{kind: set}]\nfaults: [{kind: latency, target: \"shard:s0\", at: 1s}]\n", "faults[0].target: latency of shard:s0: against an external target the drill sits only between the workloads and the proxy"},
		{"target: {local: {idservers: 1}}\nduration: 5s\nworkloads: [{kind: set}]\nfaults: [{kind: clock_skew, target: idserver:leader, at: 1s}]\n", "faults[0].params: offset: <nil>: want a non-zero duration"},
		{"target: {local: {idservers: 1}}\nduration: 5s\nworkloads: [{kind: set}]\nfaults: [{kind: clock_skew, target: proxy, at: 1s, params: {offset: 1s}}]\n", "clock_skew takes idserver:leader"},
		{"target: {local: {}}\nduration: 5s\nworkloads: [{kind: set}]\nbogus: 1\n", `x.yaml: `},
		{"target: {local: {}}\nduration: 5s\nworkloads: [{kind: set}]\nfaults: [{kind: kill, target: \"txcoord:leader\", at: 1s}]\n", "faults[0].target: txcoord:leader: needs target.local with txcoords"},
		{"target: {local: {txcoords: 1}}\nduration: 5s\nworkloads: [{kind: set}]\nfaults: [{kind: latency, target: \"txcoord:leader\", at: 1s}]\n", "txcoord takes kill or pause"},
		{"target: {external: {proxy: 127.0.0.1:1}}\nduration: 5s\nworkloads: [{kind: set}]\nchecks: [xa]\n", "checks[0]: xa reads every primary"},
	} {
		_, err := Parse("x.yaml", []byte(tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.yaml, err, tc.want)
		}
	}
	_, err := Load("testdata/bad-fault.yaml")
	if err == nil || !strings.Contains(err.Error(), `testdata/bad-fault.yaml: faults[0].params: "latncy": latency takes latency, jitter`) {
		t.Errorf("bad-fault.yaml: %v", err)
	}
}

// The checkers on hand-made histories (pure logic; the drills above show
// them on real ones).
func TestCheckersOnHistories(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	ids := []Op{
		{Workload: "ids", Kind: "fetch", Ranges: [][2]uint64{{1, 10}}, Start: ms(0), End: ms(5), OK: true},
		{Workload: "ids", Kind: "fetch", Ranges: [][2]uint64{{11, 10}}, Start: ms(6), End: ms(9), OK: true},
		{Workload: "ids", Kind: "fetch", Ranges: [][2]uint64{{5, 2}}, Start: ms(10), End: ms(12), OK: true},
	}
	r := checkIDs(ids, nil)
	if r.Passed || r.Anomalies[0].Kind != "duplicate ID" || r.Anomalies[1].Kind != "order violated" {
		t.Errorf("ids: %+v", r)
	}
	if r := checkIDs(ids[:2], nil); !r.Passed {
		t.Errorf("ids, good history: %+v", r)
	}
	ryw := []Op{
		{Workload: "ryw", Client: 1, Kind: "write", Key: 7, Value: 3, OK: true},
		{Workload: "ryw", Client: 1, Kind: "read", Key: 7, Value: 2, OK: true},
	}
	if r := checkRYW(ryw); r.Passed || r.Anomalies[0].Kind != "stale read" || len(r.Anomalies[0].Ops) != 2 {
		t.Errorf("ryw: %+v", r)
	}
	reg := []Op{
		{Workload: "register", Client: 0, Kind: "write", Key: 1, Value: 5, Start: ms(0), End: ms(2), OK: true},
		{Workload: "register", Client: 1, Kind: "read", Key: 1, Value: 0, Start: ms(3), End: ms(4), OK: true},
	}
	if r := checkRegisters(reg, time.Second); r.Passed || r.Anomalies[0].Kind != "not linearizable" {
		t.Errorf("register: %+v", r)
	}
	reg[1].Start = ms(1) // concurrent with the write: fine
	if r := checkRegisters(reg, time.Second); !r.Passed {
		t.Errorf("register, concurrent read: %+v", r)
	}
	// A failed write may have happened at any time after it began: a read
	// of its value much later is fine; a read of it before it began is not.
	reg = []Op{
		{Workload: "register", Client: 0, Kind: "write", Key: 1, Value: 9, Start: ms(10), End: ms(11), Err: "timeout"},
		{Workload: "register", Client: 1, Kind: "read", Key: 1, Value: 9, Start: ms(50), End: ms(51), OK: true},
		{Workload: "register", Client: 2, Kind: "write", Key: 1, Value: 8, Start: ms(60), End: ms(61), Err: "timeout"},
	}
	if r := checkRegisters(reg, time.Second); !r.Passed || !strings.Contains(r.Summary, "1 failed writes") {
		t.Errorf("register, indeterminate writes: %+v", r)
	}
	reg[1].Start, reg[1].End = ms(1), ms(2)
	if r := checkRegisters(reg, time.Second); r.Passed {
		t.Errorf("register, a read of a value not yet written: %+v", r)
	}
	set := []Op{
		{Workload: "set", Kind: "insert", Key: 1, OK: true},
		{Workload: "set", Kind: "insert", Key: 2, OK: true},
		{Workload: "set", Kind: "insert", Key: 3, Err: "timeout"},
	}
	r = checkSet(set, map[int64]bool{1: true, 3: true, 9: true}, map[int64]bool{1: true, 2: true, 3: true})
	if r.Passed || len(r.Anomalies) != 2 || r.Anomalies[0].Kind != "lost write" || r.Anomalies[1].Kind != "unexpected element" {
		t.Errorf("set: %+v", r)
	}
	if r := checkSet(set, map[int64]bool{1: true, 2: true}, map[int64]bool{1: true, 2: true, 3: true}); !r.Passed {
		t.Errorf("set, good: %+v", r)
	}
	cache := []Op{
		{Workload: "cache", Kind: "write", Key: 1, Value: 2, Start: ms(0), End: ms(2), OK: true},
		{Workload: "cache", Kind: "read", Key: 1, Value: 1, Start: ms(3), End: ms(4), OK: true},
	}
	if r := checkFreshness(cache); r.Passed || r.Anomalies[0].Kind != "stale read" {
		t.Errorf("cache: %+v", r)
	}
}
