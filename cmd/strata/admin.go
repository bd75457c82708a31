package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/spf13/cobra"
)

// adminOptions are `strata admin`'s connection flags.
type adminOptions struct {
	addr, user, password string
	timeout              time.Duration
}

func newAdminCmd(e *env) *cobra.Command {
	o := &adminOptions{}
	cmd := &cobra.Command{
		Use:   "admin",
		Short: "Administer a running proxy: list its servers, switch a shard's primary",
		Long: `admin talks to a running proxy over the MySQL protocol, as any client would,
and runs its admin statements:

  strata admin servers                  SHOW STRATA SERVERS
  strata admin switchover s0 [--to S]   STRATA SWITCHOVER SHARD s0 [TO S]
  strata admin failover s0 [--to S]     STRATA FAILOVER SHARD s0 [TO S]

A switchover makes a replica (S, or the most advanced one) the primary of a
shard whose primary is up, holding the shard's writes meanwhile; a failover
promotes a replica of a shard whose primary is down.`,
	}
	f := cmd.PersistentFlags()
	f.StringVar(&o.addr, "addr", "127.0.0.1:3307", "proxy MySQL address")
	f.StringVar(&o.user, "user", "root", "proxy user")
	f.StringVar(&o.password, "password", "", "proxy password")
	f.DurationVar(&o.timeout, "timeout", time.Minute, "how long the command may take")
	cmd.AddCommand(
		&cobra.Command{
			Use:   "servers",
			Short: "List every server: shard, role, health, lag, GTID position (SHOW STRATA SERVERS)",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return o.run(cmd.Context(), e.stdout, "SHOW STRATA SERVERS")
			},
		},
		o.promoteCmd(e, "switchover", "Make a replica the shard's primary, with the primary up (planned)"),
		o.promoteCmd(e, "failover", "Promote a replica of a shard whose primary is down"),
	)
	return cmd
}

func (o *adminOptions) promoteCmd(e *env, verb, short string) *cobra.Command {
	var to string
	c := &cobra.Command{
		Use:   verb + " SHARD",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q := fmt.Sprintf("STRATA %s SHARD %s", strings.ToUpper(verb), args[0])
			if to != "" {
				q += " TO " + to
			}
			return o.run(cmd.Context(), e.stdout, q)
		},
	}
	c.Flags().StringVar(&to, "to", "", "the replica to promote (default: the most advanced healthy one)")
	return c
}

// run sends one statement to the proxy and prints its result as a table.
func (o *adminOptions) run(ctx context.Context, w io.Writer, q string) error {
	mc := mysql.NewConfig()
	mc.User, mc.Passwd, mc.Net, mc.Addr = o.user, o.password, "tcp", o.addr
	mc.Timeout = 5 * time.Second
	conn, err := mysql.NewConnector(mc)
	if err != nil {
		return err
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return fmt.Errorf("admin: %s: %w", q, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(cols, "\t"))
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		cells := make([]string, len(cols))
		for i, v := range vals {
			cells[i] = v.String
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return tw.Flush()
}
