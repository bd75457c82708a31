package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/strata-db/strata/chaos"
)

// newChaosCmd is `strata chaos`: drills with verdicts, and the cleanup
// after a drill that crashed.
func newChaosCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "chaos",
		Short: "Run chaos drills (faults + workloads + checkers) and clean up after them",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newChaosRunCmd(e), newChaosCleanupCmd(e))
	return cmd
}

// errDrillFailed is returned when a drill ran but a check failed.
var errDrillFailed = errors.New("drill failed")

func newChaosRunCmd(e *env) *cobra.Command {
	var report, state, data string
	var short bool
	cmd := &cobra.Command{
		Use:   "run DRILL.yaml",
		Short: "Run a drill; exits 0 only if every check passed",
		Long: `run brings up the drill's target (a local stack in a temporary directory on
free ports, or the addresses of a running one), runs its workloads, injects
its faults on schedule, undoes every fault (at the end, on failure, on
Ctrl-C), checks the histories and prints the verdict. With --report DIR it
writes DIR/report.json and DIR/report.html (timeline with the fault windows,
checks and anomalies). After a crash of the drill itself, run
'strata chaos cleanup'. Drills ship in drills/.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := chaos.Load(args[0])
			if err != nil {
				return err
			}
			bin, err := os.Executable()
			if err != nil {
				return err
			}
			tty := false
			if fi, err := os.Stderr.Stat(); err == nil && e.stderr == os.Stderr {
				tty = fi.Mode()&os.ModeCharDevice != 0
			}
			rep, runErr := chaos.Run(cmd.Context(), d, chaos.Options{
				Binary: bin, StateDir: state, Dir: data, Short: short,
				Progress: e.stderr, TTY: tty, Logger: chaosLogger(cmd, e),
			})
			chaos.PrintSummary(e.stdout, rep)
			if report != "" {
				j, h, err := chaos.WriteReport(report, rep)
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "report: %s\n        %s\n", h, j)
			}
			if runErr != nil {
				return runErr
			}
			if !rep.Passed {
				return errDrillFailed
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&report, "report", "", "write report.json and report.html into this directory")
	f.StringVar(&state, "state", chaos.DefaultStateDir(), "directory of the journal of active faults (read by cleanup)")
	f.StringVar(&data, "data", "", "data directory of a local target (default: a temporary one, removed at the end)")
	f.BoolVar(&short, "short", false, "run the drill's short form (short_duration, faults scaled)")
	return cmd
}

func newChaosCleanupCmd(e *env) *cobra.Command {
	var state string
	var force bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "cleanup",
		Short: "Undo what a crashed drill left: paused or started processes, MASTER_DELAY, killed servers",
		Long: `cleanup reads the journals that drills keep of their active faults and
started processes (in --state) and undoes every entry: SIGCONT to a paused
process, SIGKILL to a process the drill started (when its command line still
matches), MASTER_DELAY back to 0, a killed server of an external stack
started again, a drill's temporary directory removed. Journals of drills
that are still running are left alone unless --force. Toxics need no
cleanup: Toxiproxy runs inside the drill and dies with it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			res := chaos.Cleanup(ctx, state, force, e.stdout)
			fmt.Fprintf(e.stdout, "cleanup: %d journals, %d entries undone, %d errors\n", res.Journals, len(res.Undone), len(res.Errors))
			for _, err := range res.Errors {
				fmt.Fprintln(e.stderr, "  ", err)
			}
			if len(res.Errors) > 0 {
				return fmt.Errorf("cleanup: %w", errors.Join(res.Errors...))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&state, "state", chaos.DefaultStateDir(), "directory of the drills' journals")
	cmd.Flags().BoolVar(&force, "force", false, "clean up after drills that still run, too")
	cmd.Flags().DurationVar(&timeout, "timeout", 3*time.Minute, "how long cleanup may take")
	return cmd
}

// chaosLogger is the drill's logger: warnings only unless --log-level was
// given, so the progress line is not buried under servers starting.
func chaosLogger(cmd *cobra.Command, e *env) *slog.Logger {
	if f := cmd.Flag("log-level"); f != nil && f.Changed {
		return e.logger()
	}
	return slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}
