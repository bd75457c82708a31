// Package config owns the proxy's configuration file: its YAML format, its
// defaults, and its validation. Load reads a file and reports the first
// problem as file:line: field: reason; VSchema turns the databases section
// into the routing schema (package vschema) the planner reads.
//
// The format, with every field and its default, is documented on Config and
// in the README's "Shard proxy" section; examples/sysbench.yaml is a complete
// example.
package config
