package main

import (
	"context"
	"flag"
	"fmt"
)

func runAT(ctx context.Context, fs *flag.FlagSet, args []string) error {
	return fmt.Errorf("at: not yet")
}
