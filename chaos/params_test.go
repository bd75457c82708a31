package chaos

import (
	"strings"
	"testing"
)

// TestParseBoundsParams: params a workload or fault could not run with are
// refused at load, naming the field (bank with one account or an initial
// balance of 1 made rand.Int64N(0) panic mid-drill).
func TestParseBoundsParams(t *testing.T) {
	head := "target: {local: {}}\nduration: 5s\n"
	for _, tc := range []struct{ yaml, want string }{
		{head + "workloads: [{kind: bank, params: {accounts: 1}}]\n", "workloads[0].params: accounts: 1: bank needs at least 2"},
		{head + "workloads: [{kind: bank, params: {initial: 1}}]\n", "workloads[0].params: initial: 1: bank needs at least 2"},
		{head + "workloads: [{kind: ryw, params: {keys: 100000000000}}]\n", "workloads[0].params: keys: 100000000000: want a whole number from 1 to"},
		{head + "workloads: [{kind: set}]\nfaults: [{kind: latency, target: proxy, at: 1s, params: {latency: -5s}}]\n", "faults[0].params: latency: -5s: must not be negative"},
	} {
		_, err := Parse("x.yaml", []byte(tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.yaml, err, tc.want)
		}
	}
	if _, err := Parse("x.yaml", []byte(head+"workloads: [{kind: bank, params: {accounts: 2, initial: 2}}]\n")); err != nil {
		t.Errorf("bank with 2 accounts of 2: %v", err)
	}
}
