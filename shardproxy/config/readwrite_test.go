package config

import (
	"strings"
	"testing"
	"time"
)

const rwBase = `
shards: [{name: s0, primary: "127.0.0.1:1", replicas: ["127.0.0.1:2"]}]
databases: {app: {shard: s0}}
`

func TestReadWriteYAML(t *testing.T) {
	c, err := Parse("rw.yaml", []byte(rwBase+`read_write:
  enabled: true
  consistency: eventual
  max_lag: 250ms
  no_replica: fail
  admin_users: [root]
`))
	if err != nil {
		t.Fatal(err)
	}
	rw := c.ReadWrite
	if !rw.Enabled || rw.Consistency != "eventual" || rw.MaxLag != 250*time.Millisecond || rw.NoReplica != "fail" ||
		rw.EjectAfter != time.Second || rw.AdminUser != "root" || len(rw.AdminUsers) != 1 {
		t.Errorf("parsed %+v", rw)
	}
	if ServerName("s0", 2) != "s0-2" {
		t.Error("ServerName")
	}
	for yaml, want := range map[string]string{
		"read_write: {consistency: sometimes}":             "rw.yaml:4: read_write.consistency",
		"read_write: {max_lag: 0s}":                        "read_write.max_lag",
		"read_write: {no_replica: maybe}":                  "read_write.no_replica",
		"read_write: {check_timeout: 2s}":                  "read_write.check_timeout",
		"read_write: {eject_after: 10ms}":                  "read_write.eject_after",
		"read_write: {admin_user: \"\"}":                   "read_write.admin_user",
		"read_write: {meta_schema: \"a b\"}":               "read_write.meta_schema",
		"read_write: {admin_users: [\"\"]}":                "read_write.admin_users[0]",
		"read_write: {hold_max: 0}":                        "read_write.hold_max",
		"read_write: {auto_promote_after: -1s}":            "read_write.auto_promote_after",
		"read_write: {enabled: true, session_wait: -1ms}":  "read_write.session_wait",
		"read_write: {enabled: true, catchup_timeout: 0s}": "read_write.catchup_timeout",
		"read_write: {enabled: true, drain_timeout: -1s}":  "read_write.drain_timeout",
		"read_write: {enabled: true, hold_timeout: 0s}":    "read_write.hold_timeout",
		"read_write: {enabled: true, check_interval: 0s}":  "read_write.check_interval",
		"read_write: {enabled: true, unknown_field: 1}":    "rw.yaml:",
	} {
		_, err := Parse("rw.yaml", []byte(rwBase+yaml+"\n"))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", yaml, err, want)
		}
	}
}
