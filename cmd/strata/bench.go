package main

import (
	"github.com/spf13/cobra"
)

// newBenchCmd is `strata bench`: load generators, one subcommand per
// component, each driving it as a user would (its public protocol).
func newBenchCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Load generators: measure a component as its users see it",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(
		newBenchIDsCmd(e),
	)
	return cmd
}
