// Package binlogtail tails a shard primary's binary log and reports, for
// every committed transaction, which rows it changed, so that a cache can
// invalidate writes that did not pass through the proxy (another proxy, a
// direct connection, a cron job).
//
// It owns one replication connection per shard (vitess go/mysql's binlog
// client, COM_BINLOG_DUMP with a MariaDB GTID start position), decoding ROW
// events (table map, write/update/delete rows) into the changed rows' column
// values, with each table's columns and primary key read from
// information_schema; following the primary across switchovers (it asks the
// caller who the primary is, and resumes on the new one from the last GTID
// it delivered, which the new primary has in its binlog because replicas log
// what they apply); and measuring its lag. Lag is measured, not inferred from
// second-resolution event timestamps: every ProbeInterval it reads the
// primary's @@gtid_binlog_pos at time t0, and when it has delivered every
// transaction up to that position at t1 it records t1−t0. Every write
// committed before t0 has then been handed to the callback, so the recorded
// lag bounds how long a direct write stays invisible to the callback.
//
// Statements it cannot attribute to rows (DDL, TRUNCATE, statement-format
// events, tables without a primary key) are reported as whole-table or
// whole-database changes.
//
// It imports vitess go/mysql and nothing of the proxy; the proxy passes the
// callback.
package binlogtail
