package plot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// Chromium finds a Chromium (or Chrome) binary; scripts/deps.sh installs
// Debian's chromium for the report tests.
func Chromium() (string, error) {
	for _, n := range []string{"chromium", "chromium-browser", "google-chrome", "chrome"} {
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
	}
	return "", errors.New("plot: no chromium found (make deps installs it: apt-get install chromium)")
}

// Screenshot renders an HTML file in headless Chromium and writes a PNG of
// width × height pixels: how the tests look at reports the way people do.
func Screenshot(ctx context.Context, htmlPath, pngPath string, width, height int) error {
	bin, err := Chromium()
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(htmlPath)
	if err != nil {
		return err
	}
	out, err := filepath.Abs(pngPath)
	if err != nil {
		return err
	}
	// A profile of its own: two Chromiums sharing one would wait on each
	// other's lock.
	prof, err := os.MkdirTemp("", "strata-chromium-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(prof)
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
		"--user-data-dir="+prof, "--no-first-run", "--disable-extensions",
		fmt.Sprintf("--window-size=%d,%d", width, height), "--screenshot="+out, "file://"+abs)
	b, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("plot: chromium: %v: %s", err, b)
	}
	st, err := os.Stat(out)
	if err != nil || st.Size() == 0 {
		return fmt.Errorf("plot: chromium wrote no screenshot: %s", b)
	}
	return nil
}
