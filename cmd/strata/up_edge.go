package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"github.com/strata-db/strata/edge"
	"github.com/strata-db/strata/edge/client"
)

// upEdgeOptions are the edge's flags of `strata up`.
type upEdgeOptions struct {
	listen, config string
}

func addUpEdgeFlags(f *pflag.FlagSet, o *upEdgeOptions) {
	f.StringVar(&o.listen, "edge-listen", "", "API edge HTTP address (default 127.0.0.1:8080; a free port with --mariadb-port 0)")
	f.StringVar(&o.config, "edge-config", "", "API edge config file (default: an admin key of its own, the console in local mode)")
}

// startUpEdge starts `strata up`'s edge in front of the ID service (gRPC
// idAddr) and the proxy (MySQL proxyAddr as user, admin HTTP proxyAdmin): the
// console in local mode (no key from this machine), an admin key "admin"
// whose secret is kept in DATA/edge/admin.secret, and keys set at run
// time kept in DATA/edge/keys.yaml.
func startUpEdge(e *env, o upOptions, idAddr, proxyAddr, proxyAdmin, user, password string) (*edge.Server, string, error) {
	cfg := edge.DefaultConfig()
	if o.edge.config != "" {
		c, err := edge.Load(o.edge.config)
		if err != nil {
			return nil, "", err
		}
		cfg = *c
	}
	dir := filepath.Join(o.data, "edge")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "", fmt.Errorf("up: edge: %w", err)
	}
	secretFile := filepath.Join(dir, "admin.secret")
	secret, err := os.ReadFile(secretFile)
	if errors.Is(err, os.ErrNotExist) {
		secret = []byte(client.NewNonce() + client.NewNonce())
		err = os.WriteFile(secretFile, secret, 0o600)
	}
	if err != nil {
		return nil, "", fmt.Errorf("up: edge: admin secret: %w", err)
	}
	if o.edge.config == "" {
		cfg.Apps = []edge.App{{Name: "admin", Secret: strings.TrimSpace(string(secret)), Admin: true}}
		cfg.StateFile = filepath.Join(dir, "keys.yaml")
		cfg.Console.Local = true
		cfg.IDServer.Addrs = []string{idAddr}
		cfg.Proxy.Addr, cfg.Proxy.AdminURL = proxyAddr, "http://"+proxyAdmin
		cfg.Proxy.User, cfg.Proxy.Password = user, password
		// Other components' data for the console's panels: one line each,
		// cfg.Console.Sources["cache"] = "http://.../cache.json" (or
		// SetPanel on the started server). Drill reports: those that
		// `strata chaos run --report DATA/drills/NAME` writes.
		if abs, err := filepath.Abs(filepath.Join(o.data, "drills")); err == nil {
			cfg.Console.Sources = map[string]string{"drills": "file://" + filepath.Join(abs, "*", "report.json")}
		}
	}
	switch {
	case o.edge.listen != "":
		cfg.Listen = o.edge.listen
	case o.dbPort == 0:
		cfg.Listen = "127.0.0.1:0"
	}
	s, err := startEdge(cfg, e.logger(), nil)
	if err != nil {
		return nil, "", fmt.Errorf("up: edge: %w", err)
	}
	return s, secretFile, nil
}

func printUpEdge(w io.Writer, s *edge.Server, secretFile string) {
	fmt.Fprintf(w, "\nAPI edge on %s:\n  console  %s/console/ (local mode from this machine)\n  API      %s/openapi.json; admin key \"admin\", secret in %s\n           STRATA_EDGE_SECRET=$(cat %s) strata edge key set myapp --edge %s\n",
		s.Addr(), s.URL(), s.URL(), secretFile, secretFile, s.URL())
}
