package config

import (
	"strings"
	"testing"
	"time"
)

const withIDs = good + `id_service:
  addrs: [127.0.0.1:9090, 127.0.0.1:9091]
  timeout: 750ms
`

func TestIDServiceDefaultsAndSequences(t *testing.T) {
	c, err := Parse("good.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if c.IDService.Enabled() || c.IDService.Timeout != 5*time.Second || c.IDService.Batch != 1000 || c.IDService.MaxBatch != 100000 {
		t.Errorf("id_service defaults: %+v", c.IDService)
	}

	src := strings.Replace(withIDs, "orders: {kind: sharded, column: customer_id, function: hash}",
		"orders: {kind: sharded, column: customer_id, function: hash, sequence: \"shop:orders\"}", 1)
	src = strings.Replace(src, "sbtest{1..3}: {kind: sharded, column: id}", "sbtest{1..3}: {kind: sharded, column: id, sequence: sbtest}", 1)
	c, err = Parse("ids.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if !c.IDService.Enabled() || len(c.IDService.Addrs) != 2 || c.IDService.Timeout != 750*time.Millisecond || c.IDService.Batch != 1000 {
		t.Errorf("id_service: %+v", c.IDService)
	}
	seq := c.Sequences()
	want := map[string]string{
		"customers": "demo.customers", // the default
		"orders":    "shop:orders",
		"names":     "demo.names",
		"events":    "demo.events",
		"sbtest1":   "sbtest", // a brace range shares the one it names
		"sbtest3":   "sbtest",
	}
	for tb, tag := range want {
		if got := seq["demo"][tb]; got != tag {
			t.Errorf("sequence of demo.%s: %q, want %q", tb, got, tag)
		}
	}
	for _, tb := range []string{"countries", "audit"} {
		if tag, ok := seq["demo"][tb]; ok {
			t.Errorf("%s is not sharded but has sequence %q", tb, tag)
		}
	}
	if _, ok := seq["test"]; ok {
		t.Error("unsharded database test has sequences")
	}
}

// TestIDServiceErrors: every bad id_service field or sequence is refused
// with the file, the line, the field and the reason.
func TestIDServiceErrors(t *testing.T) {
	long := strings.Repeat("t", 63)
	cases := []struct {
		name, from, to, want string
	}{
		{"bad addr", "addrs: [127.0.0.1:9090, 127.0.0.1:9091]", "addrs: [127.0.0.1:9090, idserver]",
			`ids.yaml:35: id_service.addrs[1]: "idserver" is not host:port (the gRPC address of an ID service node)`},
		{"dup addr", "addrs: [127.0.0.1:9090, 127.0.0.1:9091]", "addrs: [127.0.0.1:9090, 127.0.0.1:9090]",
			"ids.yaml:35: id_service.addrs[1]: 127.0.0.1:9090 is listed twice"},
		{"zero timeout", "timeout: 750ms", "timeout: 0s", "ids.yaml:36: id_service.timeout: must be positive"},
		{"bad timeout", "timeout: 750ms", "timeout: soon", "ids.yaml:36: id_service.timeout: cannot read \"soon\""},
		{"max batch", "timeout: 750ms", "timeout: 1s\n  batch: 500\n  max_batch: 100", "ids.yaml:38: id_service.max_batch: 100 is below batch 500"},
		{"unknown field", "timeout: 750ms", "timeout: 1s\n  adrs: [x]", "ids.yaml:37: id_service.adrs: unknown field"},
		{"bad tag", "customers: {kind: sharded, column: id}", "customers: {kind: sharded, column: id, sequence: \"cust omers\"}",
			`ids.yaml:19: databases.demo.tables.customers.sequence: "cust omers": a sequence is 1 to 64 letters, digits and _-.:`},
		{"long tag", "customers: {kind: sharded, column: id}", "customers: {kind: sharded, column: id, sequence: " + long + "xx}",
			"databases.demo.tables.customers.sequence: \"" + long + "xx\": a sequence is 1 to 64"},
		{"not sharded", "countries: {kind: reference}", "countries: {kind: reference, sequence: c}",
			"ids.yaml:29: databases.demo.tables.countries.sequence: only a sharded table has generated keys (this one is reference)"},
		{"bad default", "customers: {kind: sharded, column: id}", "customers: {kind: sharded, column: id}\n      " + long + ": {kind: sharded, column: id}",
			"databases.demo.tables." + long + ".sequence: the default sequence \"demo." + long + "\" of table " + long + " is not a valid ID service tag (1 to 64 letters, digits and _-.:): name one"},
	}
	for _, tc := range cases {
		src := strings.Replace(withIDs, tc.from, tc.to, 1)
		if src == withIDs {
			t.Fatalf("%s: edit did not apply", tc.name)
		}
		_, err := Parse("ids.yaml", []byte(src))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v\nwant it to contain %q", tc.name, err, tc.want)
		}
	}
	// A default sequence the service could not take is fine while no ID
	// service is configured: no key is ever generated.
	src := strings.Replace(good, "customers: {kind: sharded, column: id}", "customers: {kind: sharded, column: id}\n      "+long+": {kind: sharded, column: id}", 1)
	if _, err := Parse("good.yaml", []byte(src)); err != nil {
		t.Errorf("long table name without id_service: %v", err)
	}
}
