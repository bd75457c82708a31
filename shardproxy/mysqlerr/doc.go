// Package mysqlerr turns the proxy's errors into the MySQL errors clients
// get: From maps any error to a *sqlerror.SQLError, NotSupported is 1235 in
// MariaDB's words, ParseError and SyntaxErrorAt are 1064 as MariaDB writes
// it.
//
// May import: vitess go/mysql/sqlerror only.
package mysqlerr
