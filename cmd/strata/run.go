package main

import (
	"context"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/cobra"
)

// Run runs the strata command line with args (without the program name).
// It returns when the command is done or ctx is cancelled (Ctrl-C,
// SIGTERM), after stopping everything the command started.
func Run(ctx context.Context, args []string) error {
	return RunWithOutput(ctx, args, os.Stdout, os.Stderr)
}

// RunWithOutput is Run with the command's output and log going to the
// given writers, for tests.
func RunWithOutput(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	root := newRootCmd(stdout, stderr)
	root.SetArgs(args)
	return root.ExecuteContext(ctx)
}

// env is what every subcommand shares.
type env struct {
	stdout, stderr io.Writer
	logLevel       string
}

func (e *env) logger() *slog.Logger {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(e.logLevel)); err != nil {
		lvl = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: lvl}))
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	e := &env{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "strata",
		Short:         "Strata: one MySQL endpoint over sharded MariaDB (read/write splitting, failover) and a global ID service",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVar(&e.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	root.AddCommand(
		newUpCmd(e),
		newProxyCmd(e),
		newAdminCmd(e),
		newIDServerCmd(e),
		newTxcoordCmd(e),
		newBenchCmd(e),
		newEdgeCmd(e),
		newChaosCmd(e),
	)
	return root
}
