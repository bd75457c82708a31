package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// block is the reference form: block collections only.
const block = `shards:
  - name: s0
    primary: 127.0.0.1:23306
    replicas:
      - 127.0.0.1:23307
  - name: s1
    primary: 127.0.0.1:23308
users:
  - name: app
    password: "p:w #1"
backend:
  idle_timeout: 30s
databases:
  test:
    shard: s0
  demo:
    sharded: true
    tables:
      t:
        kind: sharded
        column: id
      e:
        kind: sharded
        column: id
        function: range
        ranges:
          - shard: s0
            upper: 10
          - shard: s1
`

// TestParseForms reads the same configuration written in every YAML form a
// user may pick and checks each gives the same Config as the block form.
func TestParseForms(t *testing.T) {
	want, err := Parse("block.yaml", []byte(block))
	if err != nil {
		t.Fatal(err)
	}
	forms := map[string]string{
		"flow sequence of flow mappings": `shards: [{name: s0, primary: 127.0.0.1:23306, replicas: [127.0.0.1:23307]}, {name: s1, primary: 127.0.0.1:23308}]
users: [{name: app, password: "p:w #1"}]
backend: {idle_timeout: 30s}
databases: {test: {shard: s0}, demo: {sharded: true, tables: {t: {kind: sharded, column: id}, e: {kind: sharded, column: id, function: range, ranges: [{shard: s0, upper: 10}, {shard: s1}]}}}}
`,
		"block sequence of flow mappings": `shards:
  - {name: s0, primary: 127.0.0.1:23306, replicas: [127.0.0.1:23307]}
  - {name: s1, primary: "127.0.0.1:23308"}
users:
- {name: app, password: 'p:w #1'}
backend: {idle_timeout: 30s}
databases:
  test: {shard: s0}
  demo:
    sharded: true
    tables:
      t: {kind: sharded, column: id}
      e: {kind: sharded, column: id, function: range, ranges: [{shard: s0, upper: 10}, {shard: s1}]}
`,
		"flow over several lines, spaces and trailing commas": `shards: [
  { name: s0,
    primary: 127.0.0.1:23306,
    replicas: [ 127.0.0.1:23307, ] },
  { name: s1, primary: 127.0.0.1:23308 },
]
users: [ { name: app, password: "p:w #1" } ]
backend: { idle_timeout: 30s }
databases: {
  test: { shard: s0 },
  demo: { sharded: true, tables: {
    t: { kind: sharded, column: id },
    e: { kind: sharded, column: id, function: range,
         ranges: [ { shard: s0, upper: 10 }, { shard: s1 } ] } } } }
`,
		"JSON": `{"shards": [{"name": "s0", "primary": "127.0.0.1:23306", "replicas": ["127.0.0.1:23307"]},
  {"name": "s1", "primary": "127.0.0.1:23308"}],
 "users": [{"name": "app", "password": "p:w #1"}],
 "backend": {"idle_timeout": "30s"},
 "databases": {"test": {"shard": "s0"}, "demo": {"sharded": true, "tables": {
   "t": {"kind": "sharded", "column": "id"},
   "e": {"kind": "sharded", "column": "id", "function": "range", "ranges": [{"shard": "s0", "upper": 10}, {"shard": "s1"}]}}}}}
`,
		"anchors, aliases and merge keys": `shards:
  - &s0 {name: s0, primary: 127.0.0.1:23306, replicas: [127.0.0.1:23307]}
  - <<: *s0
    name: s1
    primary: 127.0.0.1:23308
    replicas: []
users:
  - name: app
    password: &pw "p:w #1"
backend:
  idle_timeout: 30s
databases:
  test: {shard: s0}
  demo:
    sharded: true
    tables:
      t: &byid {kind: sharded, column: id}
      e:
        <<: *byid
        function: range
        ranges: [{shard: s0, upper: 10}, {shard: s1}]
`,
		"tags, quoting, block scalars, comments, document markers": `%YAML 1.2
--- # the whole file
shards: !!seq
  - !!map {name: !!str s0, primary: '127.0.0.1:23306', replicas: ["127.0.0.1:23307"]}   # s0
  - name: "s1"
    primary: >-
      127.0.0.1:23308
users:
  - name: app
    password: |-
      p:w #1
backend:
  idle_timeout: "30s"
databases:
  test:
    shard: s0
  "demo":
    sharded: yes_not_allowed_here
`,
		"explicit keys and indentation styles": `? shards
: - name: s0
    primary: 127.0.0.1:23306
    replicas: [127.0.0.1:23307]
  -   name: s1
      primary: 127.0.0.1:23308
users:
-   name: app
    password: "p:w #1"
backend:
    idle_timeout: 30s
databases:
    test:
        shard: s0
    demo:
        sharded: true
        tables:
            t: {kind: sharded, column: id}
            e: {kind: sharded, column: id, function: range, ranges: [{shard: s0, upper: 10}, {shard: s1}]}
`,
	}
	// The tagged form uses a placeholder for demo; finish it in block form.
	forms["tags, quoting, block scalars, comments, document markers"] = strings.Replace(
		forms["tags, quoting, block scalars, comments, document markers"],
		"    sharded: yes_not_allowed_here\n",
		"    sharded: !!bool true\n    tables:\n      t: {kind: sharded, column: id}\n      e: {kind: sharded, column: id, function: range, ranges: [{shard: s0, upper: !!int 10}, {shard: s1}]}\n...\n", 1)
	for name, src := range forms {
		t.Run(name, func(t *testing.T) {
			got, err := Parse("form.yaml", []byte(src))
			if err != nil {
				t.Fatal(err)
			}
			// The merge key gives s1 s0's replicas unless overridden: the
			// form overrides them with [], which decodes as empty.
			if len(got.Shards) == 2 && len(got.Shards[1].Replicas) == 0 {
				got.Shards[1].Replicas = nil
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

// TestParseBadForms checks that a file that is not valid YAML, or that does
// not fit the format, fails naming the file, the line, the field and what
// is wrong.
func TestParseBadForms(t *testing.T) {
	cases := []struct{ name, src, want string }{
		{"unclosed flow", "shards: [{name: s0, primary: 127.0.0.1:1}\ndatabases: {test: {shard: s0}}\n", "bad.yaml:"},
		{"bad indentation", "shards:\n  - name: s0\n   primary: 127.0.0.1:1\n", "bad.yaml:1: yaml: did not find expected '-' indicator"},
		{"tab indentation", "shards:\n\t- name: s0\n", "bad.yaml:2: yaml:"},
		{"duplicate key", "shards: [{name: s0, primary: 127.0.0.1:1}]\ndatabases: {test: {shard: s0}}\nshards: []\n", "bad.yaml:3: yaml: mapping key \"shards\" already defined at line 1"},
		{"two documents", "shards: []\n---\nshards: []\n", "bad.yaml:2: yaml: a second YAML document"},
		{"string for a list", "shards:\n  - name: s0\n    primary: 127.0.0.1:1\n    replicas: 127.0.0.1:2\n", "bad.yaml:4: shards[0].replicas: got \"127.0.0.1:2\", want a list"},
		{"mapping for a string", "shards:\n  - name: s0\n    primary: {host: x}\n", "bad.yaml:3: shards[0].primary: got a mapping, want a single value"},
		{"list for a struct", "backend: [1, 2]\n", "bad.yaml:1: backend: got a list, want a mapping of connect_timeout,"},
		{"unknown field in flow", "shards: [{name: s0, primary: 127.0.0.1:1, replica: [x]}]\n", "bad.yaml:1: shards[0].replica: unknown field (known: name, primary, replicas)"},
		{"unknown field through a merge", "x: &x {nme: s0}\n", "bad.yaml:1: x: unknown field"},
		{"bad integer", "max_client_connections: many\n", "bad.yaml:1: max_client_connections: cannot read \"many\": want an integer"},
		{"bad bool", "databases: {demo: {sharded: maybe}}\n", "bad.yaml:1: databases.demo.sharded: cannot read \"maybe\": want true or false"},
		{"integer for a duration", "query_timeout: 30\n", "bad.yaml:1: query_timeout: cannot read \"30\": want a duration"},
		{"empty file", "", "shards: at least one shard is required"},
		{"validation in flow form", "shards: [{name: s0, primary: 127.0.0.1:1}, {name: s1, primary: nohost}]\ndatabases: {test: {shard: s0}}\n", "bad.yaml:1: shards[1].primary: \"nohost\" is not host:port"},
		{"validation in a flow line", "shards:\n  - {name: s0, primary: 127.0.0.1:1}\n  - {name: s0, primary: 127.0.0.1:2}\ndatabases: {test: {shard: s0}}\n", "bad.yaml:3: shards[1].name: duplicate shard \"s0\""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("bad.yaml", []byte(tc.src))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

// TestParseSinglePairFlow: [name: app] is a list of one single-pair mapping.
func TestParseSinglePairFlow(t *testing.T) {
	c, err := Parse("pair.yaml", []byte("users: [name: app, name: ops]\nshards: [{name: s0, primary: 127.0.0.1:1}]\ndatabases: {test: {shard: s0}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Users) != 2 || c.Users[0].Name != "app" || c.Users[1].Name != "ops" {
		t.Errorf("users %+v", c.Users)
	}
}

// TestReadmeExample parses the configuration shown in the README's Config
// section, which uses flow mappings inside sequences.
func TestReadmeExample(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Skipf("no README: %v", err)
	}
	s := string(src)
	i := strings.Index(s, "### Config")
	if i < 0 {
		t.Fatal("README has no Config section")
	}
	s = s[i:]
	start := strings.Index(s, "```yaml\n")
	end := strings.Index(s[start+8:], "```")
	if start < 0 || end < 0 {
		t.Fatal("README's Config section has no yaml block")
	}
	c, err := Parse("README.md", []byte(s[start+8:start+8+end]))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Shards) != 2 || len(c.Shards[0].Replicas) != 1 || c.Shards[0].Replicas[0] != "127.0.0.1:23307" {
		t.Errorf("shards %+v", c.Shards)
	}
}
