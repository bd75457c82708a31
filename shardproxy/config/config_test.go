package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-db/strata/shardproxy/vschema"
)

const good = `listen: 127.0.0.1:3307
users:
  - name: app
    password: secret
backend:
  user: strata
  max_open: 32
  idle_timeout: 30s
shards:
  - name: s0
    primary: 127.0.0.1:23306
    replicas: [127.0.0.1:23307]
  - name: s1
    primary: 127.0.0.1:23308
databases:
  demo:
    sharded: true
    tables:
      customers: {kind: sharded, column: id}
      orders: {kind: sharded, column: customer_id, function: hash}
      names: {kind: sharded, column: name, type: string}
      events:
        kind: sharded
        column: id
        function: range
        ranges:
          - {shard: s0, upper: 1000}
          - {shard: s1}
      countries: {kind: reference}
      audit: {kind: unsharded, shard: s1}
      sbtest{1..3}: {kind: sharded, column: id}
  test:
    shard: s0
`

func TestParseGood(t *testing.T) {
	c, err := Parse("good.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if c.Backend.MaxOpen != 32 || c.Backend.IdleTimeout != 30*time.Second {
		t.Errorf("backend: %+v", c.Backend)
	}
	// Fields the file leaves out keep their defaults.
	if c.Backend.ConnectTimeout != DefaultConfig().Backend.ConnectTimeout || c.AdminListen != "127.0.0.1:15000" {
		t.Errorf("defaults lost: %+v %q", c.Backend, c.AdminListen)
	}
	vs, err := c.VSchema()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(vs.Shards, ","); got != "s0,s1" {
		t.Errorf("shards %s", got)
	}
	demo := vs.Databases["demo"]
	for _, n := range []string{"sbtest1", "sbtest2", "sbtest3"} {
		if tb := demo.Tables[n]; tb == nil || tb.Kind != vschema.Sharded || tb.Column != "id" || tb.Name != n {
			t.Errorf("%s: %+v", n, tb)
		}
	}
	if _, ok := demo.Tables["sbtest{1..3}"]; ok {
		t.Error("brace pattern kept as a table name")
	}
	ev := demo.Tables["events"]
	if ev.Func != vschema.Range || len(ev.Ranges) != 2 || ev.Ranges[0].Upper != 1000 || !ev.Ranges[1].Unbounded {
		t.Errorf("events: %+v", ev)
	}
	if demo.Tables["names"].Type != vschema.KeyString || demo.Tables["countries"].Kind != vschema.Reference {
		t.Error("names/countries kinds")
	}
	if test := vs.Databases["test"]; test.Sharded || test.Shard != "s0" {
		t.Errorf("test: %+v", test)
	}
}

// TestParseErrors checks that each bad file is refused with the file, the
// line of the field, the field's path and a reason.
func TestParseErrors(t *testing.T) {
	cases := []struct {
		name, edit, want string
	}{
		{"bad addr", "primary: 127.0.0.1:23308\n", "bad.yaml:14: shards[1].primary: \"nohost\" is not host:port"},
		{"unknown field", "idle_timeout: 30s\n", "bad.yaml:8: backend.idel_timeout: unknown field (known: connect_timeout,"},
		{"bad duration", "idle_timeout: 30s\n", "bad.yaml:8: backend.idle_timeout: cannot read \"soon\": want a duration"},
		{"missing column", "customers: {kind: sharded, column: id}\n", "bad.yaml:19: databases.demo.tables.customers.column:"},
		{"bad kind", "countries: {kind: reference}\n", "bad.yaml:29: databases.demo.tables.countries.kind: \"copied\""},
		{"unknown shard", "audit: {kind: unsharded, shard: s1}\n", "bad.yaml:30: databases.demo.tables.audit.shard: \"s9\" is not one of the shards"},
		{"range order", "- {shard: s1}\n", "databases.demo.tables.events.ranges[1].upper: 5 is not above the previous bound 1000"},
		{"unsharded no shard", "    shard: s0\n", "bad.yaml:32: databases.test.shard: an unsharded database needs the shard"},
		{"dup shard", "  - name: s1\n", "bad.yaml:13: shards[1].name: duplicate shard \"s0\""},
		{"max idle", "max_open: 32\n", "bad.yaml:8: backend.max_idle: -1, must not be negative"},
		{"pipelines", "max_open: 32\n", "bad.yaml:8: backend.pipelines: -1, must not be negative"},
		{"pipeline depth", "max_open: 32\n", "bad.yaml:8: backend.pipeline_depth: 0, need at least 1"},
	}
	repl := map[string]string{
		"bad addr":           "primary: nohost\n",
		"unknown field":      "idel_timeout: 30s\n",
		"bad duration":       "idle_timeout: soon\n",
		"missing column":     "customers: {kind: sharded}\n",
		"bad kind":           "countries: {kind: copied}\n",
		"unknown shard":      "audit: {kind: unsharded, shard: s9}\n",
		"range order":        "- {shard: s1, upper: 5}\n",
		"unsharded no shard": "    sharded: false\n",
		"dup shard":          "  - name: s0\n",
		"max idle":           "max_open: 32\n  max_idle: -1\n",
		"pipelines":          "max_open: 32\n  pipelines: -1\n",
		"pipeline depth":     "max_open: 32\n  pipeline_depth: 0\n",
	}
	for _, tc := range cases {
		src := strings.Replace(good, tc.edit, repl[tc.name], 1)
		if src == good {
			t.Fatalf("%s: edit did not apply", tc.name)
		}
		_, err := Parse("bad.yaml", []byte(src))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v\nwant it to contain %q", tc.name, err, tc.want)
		}
	}
}

func TestLoadFileAndExample(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("missing file: %v", err)
	}
	// The shipped example must load.
	ex := filepath.Join("..", "..", "examples", "sysbench.yaml")
	if _, err := os.Stat(ex); err != nil {
		t.Skipf("no example yet: %v", err)
	}
	c, err := Load(ex)
	if err != nil {
		t.Fatal(err)
	}
	vs, _ := c.VSchema()
	if tb := vs.Databases["sbtest"].Tables["sbtest1"]; tb == nil || tb.Column != "id" {
		t.Errorf("sbtest1: %+v", tb)
	}
}

func TestValidateDefaults(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "shards") {
		t.Errorf("default config without shards: %v", err)
	}
	c.Shards = []Shard{{Name: "s0", Primary: "127.0.0.1:1"}}
	c.Databases = map[string]*Database{"test": {Shard: "s0"}}
	if err := c.Validate(); err != nil {
		t.Errorf("minimal config: %v", err)
	}
	c.Databases["mysql"] = &Database{Shard: "s0"}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "system database") {
		t.Errorf("system database: %v", err)
	}
}
