// Package clientsuite runs real MySQL clients' own test suites (their
// module's source, at the version our go.mod pins, copied out of the
// module cache) against MariaDB directly and through the shard proxy, and
// compares the outcomes test by test. A test that passes directly and fails
// through the proxy is a place where the proxy is not the server it claims
// to be.
//
// It imports only the standard library; its tests use localdb and
// shardproxy to start the servers.
package clientsuite
