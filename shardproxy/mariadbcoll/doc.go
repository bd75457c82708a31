// Package mariadbcoll owns MariaDB 10.11's table of collations by id, the
// number a client announces in its handshake. MySQL 8 numbers some
// collations differently and has others (vitess's table is MySQL's), so the
// proxy reads a client's handshake collation here: it keeps every one that
// MariaDB 10.11 keeps.
//
// table.go is generated from a running MariaDB 10.11 (see gen_test.go);
// TestTableMatchesServer checks it against the server the tests start.
//
// It imports only the standard library.
package mariadbcoll
