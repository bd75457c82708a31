package localdb

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"
)

// StartForTest starts a topology for a test under a fresh temporary
// directory (unless cfg.Root is set) on free ports, and stops every server
// it started when the test ends, whether it passed or not. It fails the
// test if MariaDB is missing: `make test` installs it, and a skipped test
// would hide that.
func StartForTest(t testing.TB, cfg Config) *Topology {
	t.Helper()
	if cfg.Root == "" {
		cfg.Root = t.TempDir()
	}
	if cfg.Logger == nil {
		cfg.Logger = TestLogger(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	topo, err := Start(ctx, cfg)
	if err != nil {
		t.Fatalf("localdb: %v", err)
	}
	t.Cleanup(func() {
		if err := topo.Stop(); err != nil {
			t.Errorf("localdb: stop: %v", err)
		}
	})
	return topo
}

// TestConfig is DefaultConfig with the given shape, for tests.
func TestConfig(shards, replicas int) Config {
	c := DefaultConfig()
	c.Shards, c.Replicas = shards, replicas
	return c
}

// TestLogger is a logger that writes to the test's log while the test runs
// and drops lines after it has ended (testing panics on a late Log).
func TestLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(TestWriter(t), &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// TestWriter writes to the test's log while the test runs and drops what
// comes after it has ended: the one log writer of the project's tests.
func TestWriter(t testing.TB) io.Writer {
	w := &testWriter{t: t}
	t.Cleanup(func() { w.done.Store(true) })
	return w
}

type testWriter struct {
	t    testing.TB
	done atomic.Bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	if !w.done.Load() {
		w.t.Logf("%s", p)
	}
	return len(p), nil
}
