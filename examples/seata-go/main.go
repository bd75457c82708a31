// Command seata-go-example is an unmodified seata-go v1.2.0 application
// pointed at Strata's Seata TC (txcoord/seata). It has three roles, one per
// process, as a real deployment has:
//
//	svc  a TCC service (an RM): POST /try joins the caller's global
//	     transaction (XID in the "xid" header) and registers a branch;
//	     Confirm and Cancel append to an events file, once per branch from
//	     the application's point of view (Seata asks TCC services to be
//	     idempotent: phase two is at least once).
//	tm   a TM: runs global transactions that call the services' /try
//	     (or none: empty transactions), commits or rolls back, and prints
//	     a JSON report (counts, rate).
//	at   AT mode against MariaDB through seata-go's data source proxy:
//	     commit, rollback and a global lock conflict on one row.
//
// Every role reads the seata-go client configuration from -config (a
// seatago.yml whose grouplist names the TC nodes). The tests in this
// directory start a 3-node TC group and these processes.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	seatalog "github.com/seata/seata-go/pkg/util/log"
	"go.uber.org/zap"
)

func main() {
	if err := run(context.Background(), os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "seata-go-example:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New("usage: seata-go-example svc|tm|at [flags]")
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	switch args[0] {
	case "svc":
		return runSvc(ctx, fs, args[1:])
	case "tm":
		return runTM(ctx, fs, args[1:])
	case "at":
		return runAT(ctx, fs, args[1:])
	}
	return fmt.Errorf("unknown role %q", args[0])
}

// quietLogs sends seata-go's logs (Info by default, one line per message
// sent) to stderr at Warn and above, after client.InitPath set its own.
func quietLogs() {
	cfg := zap.NewProductionConfig()
	cfg.Level = zap.NewAtomicLevelAt(zap.WarnLevel)
	cfg.OutputPaths = []string{"stderr"}
	cfg.Encoding = "console"
	if l, err := cfg.Build(); err == nil {
		seatalog.SetLogger(l.Sugar())
	}
}
