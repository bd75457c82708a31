// Package compat holds the proxy's differential tests: the same statements
// sent to MariaDB directly and through the proxy must get the same answers
// (columns, rows, error numbers). It has no code of its own; its tests
// start a real two-shard topology (localdb) and a proxy over it, and use
// only what a client sees.
package compat
