package main

import (
	"github.com/spf13/cobra"
)

// newBenchCmd is `strata bench`: the benchmark harness (package bench),
// one subcommand per benchmark, each driving the system as a user would.
func newBenchCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Load generators: measure a component as its users see it",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newBenchHarnessCmds(e)...)
	return cmd
}
