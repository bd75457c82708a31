// Package tlscert owns the certificates the proxy makes for itself when it
// is given none: a private CA and a server certificate signed by it, made
// once in a directory and reused at every later start, as MySQL 8 and
// MariaDB 11 do in their data directory (ca.pem, server-cert.pem,
// server-key.pem). A client that trusts ca.pem verifies the proxy; one that
// trusts nothing can still encrypt (tls=skip-verify, mariadb --ssl).
//
// It imports only the standard library.
package tlscert
