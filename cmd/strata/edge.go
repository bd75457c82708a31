package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/strata-db/strata/edge"
	"github.com/strata-db/strata/edge/client"
)

// edgeOptions are `strata edge`'s flags.
type edgeOptions struct {
	config, listen string
	accessLog      string
}

func newEdgeCmd(e *env) *cobra.Command {
	o := edgeOptions{}
	cmd := &cobra.Command{
		Use:   "edge",
		Short: "Run the API edge: signed HTTP access to IDs, rows and the admin API, and the SRE console",
		Long: `edge runs Strata's HTTP edge: every /v1 request is signed with an app key
(HMAC-SHA256), limited by token buckets per key and per client IP, and
passed to the ID service (gRPC) or the shard proxy (MySQL protocol). The
SRE console is at /console, the API described at /openapi.json.

  strata edge --config edge.yaml
  strata edge key set APP --edge http://127.0.0.1:8080 --as ADMIN   (add or rotate a key)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runEdge(cmd.Context(), e, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.config, "config", "", "edge config file (YAML); without one: no app keys, default backends")
	f.StringVar(&o.listen, "listen", "", "HTTP address (default: the config's, 127.0.0.1:8080)")
	f.StringVar(&o.accessLog, "access-log", "-", "access log file (- for stderr, empty for none)")
	cmd.AddCommand(newEdgeKeyCmd(e))
	return cmd
}

func runEdge(ctx context.Context, e *env, o edgeOptions) error {
	cfg := edge.DefaultConfig()
	if o.config != "" {
		c, err := edge.Load(o.config)
		if err != nil {
			return err
		}
		cfg = *c
	}
	if o.listen != "" {
		cfg.Listen = o.listen
	}
	access, closeLog, err := accessLogger(e, o.accessLog)
	if err != nil {
		return err
	}
	defer closeLog()
	s, err := startEdge(cfg, e.logger(), access)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "edge on %s: console %s/console/, API %s/openapi.json\n", s.Addr(), s.URL(), s.URL())
	<-ctx.Done()
	e.logger().Info("edge: stopping")
	return s.Close()
}

// accessLogger opens the access log: "-" is stderr, "" none.
func accessLogger(e *env, path string) (*slog.Logger, func(), error) {
	switch path {
	case "":
		return nil, func() {}, nil
	case "-":
		return slog.New(slog.NewJSONHandler(e.stderr, nil)), func() {}, nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("access log: %w", err)
	}
	return slog.New(slog.NewJSONHandler(f, nil)), func() { f.Close() }, nil
}

func startEdge(cfg edge.Config, log, access *slog.Logger) (*edge.Server, error) {
	reg := prometheus.NewRegistry()
	s, err := edge.New(cfg, edge.Options{Logger: log, AccessLog: access, Registerer: reg, Gatherer: reg})
	if err != nil {
		return nil, err
	}
	if err := s.Start(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// edgeKeyOptions are `strata edge key`'s flags.
type edgeKeyOptions struct {
	edge, as, asSecret string
	secret, grace      string
	admin              bool
	rate               float64
	burst              int
}

func newEdgeKeyCmd(e *env) *cobra.Command {
	o := &edgeKeyOptions{}
	cmd := &cobra.Command{
		Use:   "key",
		Short: "Add, rotate or remove an app key of a running edge (no restart)",
		Long: `key changes a running edge's app keys through its admin API, signed with an
admin key (--as; its secret from --as-secret or $STRATA_EDGE_SECRET). The
edge keeps the change in its state_file, if it has one, across restarts.

  strata edge key set shop                 a new random secret, printed once
  strata edge key set shop --grace 10m     rotate: the old secret works 10 more minutes
  strata edge key rm shop`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&o.edge, "edge", "http://127.0.0.1:8080", "the edge's URL")
	pf.StringVar(&o.as, "as", "admin", "admin key that signs the change")
	pf.StringVar(&o.asSecret, "as-secret", "", "that key's secret (default $STRATA_EDGE_SECRET)")
	set := &cobra.Command{
		Use:   "set APP",
		Short: "Add APP's key, or rotate it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.set(cmd.Context(), e.stdout, args[0])
		},
	}
	sf := set.Flags()
	sf.StringVar(&o.secret, "secret", "", "the new secret (default: 32 random bytes, printed)")
	sf.StringVar(&o.grace, "grace", "", "keep the previous secret valid this long (rotation)")
	sf.BoolVar(&o.admin, "admin", false, "an admin key (admin API, console)")
	sf.Float64Var(&o.rate, "rate", 0, "the key's own rate limit (requests/s; 0: the config's)")
	sf.IntVar(&o.burst, "burst", 0, "the key's own burst (with --rate)")
	rm := &cobra.Command{
		Use:   "rm APP",
		Short: "Remove APP's key",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := o.client().Do(cmd.Context(), "DELETE", "/v1/admin/keys/"+args[0], nil)
			if err == nil {
				fmt.Fprintf(e.stdout, "key %s removed\n", args[0])
			}
			return err
		},
	}
	cmd.AddCommand(set, rm)
	return cmd
}

func (o *edgeKeyOptions) client() *client.Client {
	sec := o.asSecret
	if sec == "" {
		sec = os.Getenv("STRATA_EDGE_SECRET")
	}
	return &client.Client{Base: o.edge, Signer: client.Signer{Key: o.as, Secret: []byte(sec)}, HTTP: &http.Client{Timeout: 30 * time.Second}}
}

func (o *edgeKeyOptions) set(ctx context.Context, w io.Writer, app string) error {
	u := edge.KeyUpdate{Secret: o.secret, Admin: o.admin, Grace: o.grace}
	generated := u.Secret == ""
	if generated {
		u.Secret = client.NewNonce() + client.NewNonce()
	}
	if o.rate > 0 {
		u.Limit = &edge.Rule{Rate: o.rate, Burst: o.burst}
	}
	body, _ := json.Marshal(u)
	if _, err := o.client().Do(ctx, "PUT", "/v1/admin/keys/"+app, body); err != nil {
		return err
	}
	fmt.Fprintf(w, "key %s set", app)
	if generated {
		fmt.Fprintf(w, "; its secret (shown once): %s", u.Secret)
	}
	fmt.Fprintln(w)
	return nil
}
