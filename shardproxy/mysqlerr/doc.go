// Package mysqlerr turns the proxy's errors into the MySQL errors clients
// get: From maps any error to a *sqlerror.SQLError, NotSupported is 1235 in
// MariaDB's words, ParseError and SyntaxErrorAt are 1064 as MariaDB writes
// it. codes.go names the MariaDB error codes and SQLSTATEs vitess's
// sqlerror lacks, so that no code of the proxy writes a bare number.
//
// May import: vitess go/mysql/sqlerror only.
package mysqlerr
