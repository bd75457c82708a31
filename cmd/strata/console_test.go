package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/strata-db/strata/edge/client"
)

// serverLine is a MariaDB server in up's banner: shard, role, name, addr.
var serverLine = regexp.MustCompile(`(?m)^\s+(s\d+)\s+(primary|replica)\s+(\S+)\s+(127\.0\.0\.1:\d+)\s`)

// findChromium is Debian's chromium (scripts/deps.sh installs it). Where it
// is missing the test skips, except under CI, where it must be there.
func findChromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is missing: make deps (scripts/deps.sh) installs it")
	}
	t.Skip("chromium is not installed (scripts/deps.sh installs it)")
	return ""
}

// consoleRow is one server as the console's topology table shows it.
type consoleRow struct {
	Addr, Role, Health string
}

// TestConsole drives the SRE console of `strata up` in headless Chromium:
// the page loads in local mode and shows the topology, a replica stopped
// under it shows as down within seconds, the switchover button (after its
// confirmation) promotes a replica, and a screenshot is kept in the
// test's artifact directory (and at $STRATA_CONSOLE_SCREENSHOT if set).
func TestConsole(t *testing.T) {
	chromium := findChromium(t)
	data := t.TempDir()
	out, stop := startUp(t, "--data", data, "--mariadb-port", "0", "--innodb-buffer-pool", "32M")
	m := edgeLine.FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no edge banner in:\n%s", out)
	}
	base := "http://" + m[1]
	servers := serverLine.FindAllStringSubmatch(out.String(), -1)
	if len(servers) != 4 {
		t.Fatalf("want 4 servers in the banner:\n%s", out)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Some ID traffic through the edge, for the ID panel's rates.
	secret, err := os.ReadFile(m[2])
	if err != nil {
		t.Fatal(err)
	}
	admin := &client.Client{Base: base, Signer: client.Signer{Key: "admin", Secret: []byte(strings.TrimSpace(string(secret)))}}
	idsDone := make(chan struct{})
	defer func() { cancel(); <-idsDone }()
	go func() {
		defer close(idsDone)
		for ctx.Err() == nil {
			admin.Do(ctx, "GET", "/v1/ids/orders?count=5", nil)
			time.Sleep(20 * time.Millisecond)
		}
	}()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox,
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(1400, 1100))
	actx, cancelA := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelA()
	bctx, cancelB := chromedp.NewContext(actx)
	defer cancelB()
	// Accept the switchover's confirmation dialog.
	rows := func() map[string]consoleRow {
		js := `Array.from(document.querySelectorAll('#topology tbody tr')).map(tr => ({Addr: tr.children[2].textContent, Role: tr.children[3].textContent, Health: tr.children[4].textContent}))`
		got, err := chromedp.Run(bctx, chromedp.Evaluate[[]consoleRow](js))
		if err != nil {
			t.Fatalf("reading the topology: %v", err)
		}
		byAddr := map[string]consoleRow{}
		for _, r := range got {
			byAddr[r.Addr] = r
		}
		return byAddr
	}
	waitFor := func(what string, d time.Duration, cond func(map[string]consoleRow) bool) time.Duration {
		start := time.Now()
		for {
			r := rows()
			if cond(r) {
				return time.Since(start)
			}
			if time.Since(start) > d {
				t.Fatalf("console: %s not shown within %v; the table: %v", what, d, r)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	if err := chromedp.Do(bctx, chromedp.Navigate(base+"/console/")); err != nil {
		t.Fatalf("console did not load: %v", err)
	}
	defer func() {
		if t.Failed() {
			html, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`document.body.innerText`))
			t.Logf("the page when the test failed:\n%s", html)
		}
	}()
	waitFor("the topology", 20*time.Second, func(r map[string]consoleRow) bool { return len(r) > 0 })
	mode, err := chromedp.Run(bctx, chromedp.Text(`#mode`))
	if err != nil || mode != "local mode" {
		t.Fatalf("mode %q, %v", mode, err)
	}
	waitFor("4 servers up", 10*time.Second, func(r map[string]consoleRow) bool {
		for _, s := range servers {
			if row, ok := r[s[4]]; !ok || row.Health != "up" || row.Role != s[2] {
				return false
			}
		}
		return true
	})
	na, err := chromedp.Run(bctx, chromedp.Text(`section[data-panel="drills"] .body`))
	if err != nil || !strings.HasPrefix(na, "not available") {
		t.Fatalf("drills panel: %q, %v", na, err)
	}
	// strata up wires the transaction panels: each draws its data (an
	// empty list here), not "not available".
	for _, name := range []string{"transactions", "seata"} {
		txt, err := chromedp.Run(bctx, chromedp.Text(`section[data-panel="`+name+`"] .body`))
		if err != nil || strings.HasPrefix(txt, "not available") || !strings.Contains(txt, "[") {
			t.Errorf("%s panel: %q, %v", name, txt, err)
		}
	}

	// Stop the replica of s0, as an SRE's outage would.
	var replica []string
	for _, s := range servers {
		if s[1] == "s0" && s[2] == "replica" {
			replica = s
		}
	}
	pidB, err := os.ReadFile(filepath.Join(data, "mariadb", replica[3], "mariadbd.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(pidB)))
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	took := waitFor("the stopped replica down", 5*time.Second, func(r map[string]consoleRow) bool { return r[replica[4]].Health == "down" })
	t.Logf("replica %s (%s) stopped: the console showed it down after %v", replica[3], replica[4], took.Round(time.Millisecond))

	shot, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	writeShot(t, "console-replica-down.png", shot)

	// The switchover button of s1, confirmed: its replica becomes primary.
	var s1Primary, s1Replica string
	for _, s := range servers {
		if s[1] == "s1" {
			if s[2] == "primary" {
				s1Primary = s[4]
			} else {
				s1Replica = s[4]
			}
		}
	}
	// The page's confirm() is answered yes and recorded (a native dialog
	// would hold the click until a second CDP session closed it).
	if _, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`window.asked = []; window.confirm = (m) => { window.asked.push(m); return true; }; true`)); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(bctx, chromedp.Click(`button.switchover[data-shard="s1"]`)); err != nil {
		t.Fatal(err)
	}
	asked, err := chromedp.Run(bctx, chromedp.Evaluate[[]string](`window.asked`))
	if err != nil || len(asked) != 1 || !strings.Contains(asked[0], "s1") {
		t.Fatalf("the switchover button asked %q for confirmation (%v)", asked, err)
	}
	t.Logf("confirmation asked: %q", asked[0])
	took = waitFor("s1 switched over", 30*time.Second, func(r map[string]consoleRow) bool {
		return r[s1Replica].Role == "primary" && r[s1Primary].Role == "replica"
	})
	result, _ := chromedp.Run(bctx, chromedp.Text(`#switchResult`))
	t.Logf("switchover of s1 from the console: shown after %v: %s", took.Round(time.Millisecond), result)
	if shot, err = chromedp.Run(bctx, chromedp.FullScreenshot(100)); err != nil {
		t.Fatal(err)
	}
	writeShot(t, "console-after-switchover.png", shot)
	ids, _ := chromedp.Run(bctx, chromedp.Text(`#ids tbody`))
	if !strings.Contains(ids, "orders") {
		t.Errorf("the ID panel does not show the tag in use: %q", ids)
	}
	cancelB()
	cancel()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

func writeShot(t *testing.T, name string, png []byte) {
	t.Helper()
	p := filepath.Join(t.ArtifactDir(), name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", p, len(png))
	if dir := os.Getenv("STRATA_CONSOLE_SCREENSHOT_DIR"); dir != "" {
		os.WriteFile(filepath.Join(dir, name), png, 0o644)
	}
}
