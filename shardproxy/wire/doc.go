// Package wire owns the client side of the MySQL protocol below the vitess
// listener: Conn wraps every accepted connection and sees every byte. It
// terminates TLS itself, frames packets (refusing those over
// max_allowed_packet with 1153 before reading them), answers the commands
// the listener answers differently from MariaDB or not at all (protocol.go:
// COM_FIELD_LIST, COM_STMT_SEND_LONG_DATA/RESET, COM_STATISTICS,
// COM_PROCESS_INFO, COM_DEBUG, COM_CHANGE_USER's authentication, and
// COM_STMT_FETCH of the cursors it keeps over results the listener wrote:
// cursor.go, an unknown command byte and COM_SET_OPTION value, with
// MariaDB's single 1047), fixes the flags of prepared statements'
// parameter types and the parameters' definitions of prepare responses,
// gives the listener's OK packets what MariaDB's have and the listener
// leaves out (the info text, the index flags: WithOK), hands the fast lane
// the commands it may answer, and asks the client for a
// LOAD DATA LOCAL INFILE's file in the middle of a statement
// (localinfile.go). It also holds the proxy's authentication (auth.go) and
// packet builders and decoders (packet.go).
//
// What it needs of the proxy it declares: Server (packet limit, statistics,
// prepare checks) and Session (the fast lane, prepared statements, the
// session's cursors, COM_CHANGE_USER's restart), both implemented by
// package executor.
//
// May import: config, internal/rawio, mysqlerr, vitess go/mysql. Never:
// session, executor, planner, engine, shardproxy.
package wire
