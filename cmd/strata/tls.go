package main

import (
	"fmt"
	"io"
	"net"
	"path/filepath"

	"github.com/strata-db/strata/shardproxy/config"
	"github.com/strata-db/strata/shardproxy/tlscert"
)

// upTLSDir gives a config that names no certificate files the directory
// <data>/tls, where the proxy makes its own CA and server certificate at
// the first start of `strata up` (TLS offered, not required, unless the
// config sets tls.require).
func upTLSDir(data string) func(*config.Config) {
	return func(c *config.Config) {
		if c.TLS.Cert == "" && c.TLS.Dir == "" {
			c.TLS.Dir = filepath.Join(data, "tls")
		}
	}
}

// prepareTLS makes (or reuses) the certificates of tls.dir and points
// tls.cert and tls.key at them. It returns nil when the config names
// certificate files itself or no TLS at all.
func prepareTLS(c *config.Config) (*tlscert.Files, error) {
	if c.TLS.Dir == "" || c.TLS.Cert != "" {
		return nil, nil
	}
	host, _, _ := net.SplitHostPort(c.Listen)
	f, err := tlscert.Ensure(c.TLS.Dir, []string{host})
	if err != nil {
		return nil, fmt.Errorf("tls.dir: %w", err)
	}
	c.TLS.Cert, c.TLS.Key, c.TLS.Dir = f.Cert, f.Key, ""
	return &f, nil
}

// printTLS says how to connect over TLS and how to trust the CA.
func printTLS(w io.Writer, c *config.Config, f *tlscert.Files) {
	if c.TLS.Cert == "" {
		return
	}
	mode := "offered"
	if c.TLS.Require {
		mode = "required"
	}
	if f == nil {
		fmt.Fprintf(w, "  TLS      %s (certificate %s)\n", mode, c.TLS.Cert)
		return
	}
	made := ""
	if f.Created {
		made = ", made now"
	}
	fmt.Fprintf(w, "  TLS      %s; CA %s%s: mariadb --ssl-ca=%s --ssl-verify-server-cert\n", mode, f.CA, made, f.CA)
}
