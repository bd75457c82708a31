// Package vschema describes where every table of the proxy's logical
// databases lives: which databases are sharded, which tables are sharded (by
// which column and shard function), which are reference tables copied to
// every shard, and which live whole on one shard. It owns the shard functions
// that map a shard-key value to a shard.
//
// The config loader (package shardproxy/config) fills these types from YAML
// and calls Validate; the planner reads them. A VSchema is not modified after
// Validate, so it may be shared by every session.
package vschema
