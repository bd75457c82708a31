package main

import (
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/strata-db/strata/bench"
)

// newBenchHarnessCmds are `strata bench NAME`, one per entry of the bench
// registry (those not yet built say so), and `strata bench list`.
func newBenchHarnessCmds(e *env) []*cobra.Command {
	cmds := []*cobra.Command{{
		Use:   "list",
		Short: "List the benchmarks, built or not yet",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			w := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
			for _, en := range bench.Registry() {
				st := "ready"
				if en.New == nil {
					st = en.NotYet
				}
				fmt.Fprintf(w, "%s\t%s\t%s\n", en.Name, st, en.Summary)
			}
			return w.Flush()
		},
	}}
	for _, en := range bench.Registry() {
		cmds = append(cmds, newBenchNamedCmd(e, en))
	}
	return cmds
}

func newBenchNamedCmd(e *env, en bench.Entry) *cobra.Command {
	c := bench.DefaultConfig()
	c.Name = en.Name
	var report string
	var params map[string]string
	short := en.Summary
	if en.New == nil {
		short = "(" + en.NotYet + ") " + short
	}
	long := short
	if en.Params != "" {
		long += "\n\nParams (--param k=v,...; defaults in brackets): " + en.Params + "."
	}
	cmd := &cobra.Command{
		Use:   en.Name,
		Short: short,
		Long: long + `

It starts what it needs on free ports in a temporary directory, runs the
subject and its baselines in the same run, interleaving rounds (round 1 runs
every variant once, then round 2, ...), prints a table of figures and
ratios to the reference with their spread (min–max over rounds), and with
--report DIR writes DIR/result.json and DIR/report.html (plots as SVG).
Load client, servers and hops share this machine's cores: compare ratios,
not absolute figures, across machines.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			bin, err := os.Executable()
			if err != nil {
				return err
			}
			c.Binary, c.Params, c.Progress, c.Logger = bin, params, e.stderr, chaosLogger(cmd, e)
			res, err := bench.Run(cmd.Context(), c)
			if err != nil {
				return err
			}
			bench.PrintTable(e.stdout, res)
			if report != "" {
				j, h, err := bench.WriteReport(report, res)
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "report: %s\n        %s\n", h, j)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&c.Rounds, "rounds", c.Rounds, "rounds (each runs every variant once)")
	f.DurationVar(&c.Duration, "duration", c.Duration, "length of one variant's run in one round")
	f.IntVar(&c.Threads, "threads", c.Threads, "client threads (sysbench --threads)")
	f.StringVar(&report, "report", "", "write result.json and report.html into this directory")
	f.StringToStringVar(&params, "param", nil, "benchmark settings, e.g. --param tables=4,table_size=100000 (see the package doc of each)")
	return cmd
}
