package edge

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumPath is Debian's chromium (scripts/deps.sh installs it); the
// test skips where it is missing, except under CI.
func chromiumPath(t *testing.T) string {
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

// TestConsoleSignIn: without local mode the console asks for a key; the
// page signs its requests itself (WebCrypto), so a wrong secret is refused
// with its reason and the admin key's secret lets it in. (TestConsole in
// cmd/strata drives the page over a whole `strata up`.)
func TestConsoleSignIn(t *testing.T) {
	chromium := chromiumPath(t)
	n := startIDNode(t)
	cfg := testConfig(n.GRPCAddr)
	cfg.Console.Sources = map[string]string{"drills": "file://" + writeDrillReports(t) + "/*/report.json"}
	s := startEdge(t, cfg, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox)
	actx, cancelA := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelA()
	bctx, cancelB := chromedp.NewContext(actx)
	defer cancelB()
	text := func(sel string) string {
		v, err := chromedp.Run(bctx, chromedp.Evaluate[string](`(document.querySelector('`+sel+`') || {}).textContent || ""`))
		if err != nil {
			t.Fatalf("%s: %v", sel, err)
		}
		return v
	}
	waitText := func(sel, want string) {
		deadline := time.Now().Add(15 * time.Second)
		for !strings.Contains(text(sel), want) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %q, want %q", sel, text(sel), want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	signIn := func(key, secret string) {
		if err := chromedp.Do(bctx,
			chromedp.SetValue(`#keyName`, key),
			chromedp.SetValue(`#keySecret`, secret),
			chromedp.Click(`#loginForm button`),
		); err != nil {
			t.Fatal(err)
		}
	}
	if err := chromedp.Do(bctx, chromedp.Navigate(s.URL()+"/console/")); err != nil {
		t.Fatal(err)
	}
	waitText("#login h2", "Sign in")
	signIn(testAdmin, "a-wrong-secret-000000")
	waitText("#loginError", "bad_signature")
	signIn(testApp, testSecret)
	waitText("#loginError", "not_admin")
	signIn(testAdmin, testAdminS)
	waitText("#mode", "signed in as "+testAdmin)
	waitText("#topologyNote", "no proxy configured")
	waitText(`section[data-panel="seata"] .body`, "not available")
	waitText(`section[data-panel="drills"] .body`, "replica-kill PASSED")
	waitText(`section[data-panel="drills"] .body`, "partition FAILED")
	if n, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.querySelectorAll('section[data-panel="drills"] svg.timeline rect').length`)); err != nil || n < 10 {
		t.Fatalf("drill timelines: %d bars and bands, %v", n, err)
	}
	shot, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.ArtifactDir(), "console-signed-in.png")
	if err := os.WriteFile(p, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	if dir := os.Getenv("STRATA_CONSOLE_SCREENSHOT_DIR"); dir != "" {
		os.WriteFile(filepath.Join(dir, "console-signed-in.png"), shot, 0o644)
	}
	// It keeps polling with fresh nonces (each poll is a new signature).
	polls := func() string {
		v, _ := chromedp.Run(bctx, chromedp.Evaluate[string](`document.body.dataset.polls || "0"`))
		return v
	}
	first := polls()
	time.Sleep(2500 * time.Millisecond)
	if polls() == first {
		t.Fatalf("the page stopped polling at %s", first)
	}
}
