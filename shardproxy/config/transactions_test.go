package config

import (
	"strings"
	"testing"
	"time"
)

const withTx = good + `transactions:
  coordinator: [127.0.0.1:9091, 127.0.0.1:9092]
  abandon_after: 20s
`

func TestTransactionsDefaultsAndModes(t *testing.T) {
	c, err := Parse("good.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if c.Transactions.Enabled() || c.TxMode("demo") != TxSingle || c.Transactions.AbandonAfter != 30*time.Second {
		t.Errorf("without a coordinator: %+v, mode %s", c.Transactions, c.TxMode("demo"))
	}
	c, err = Parse("tx.yaml", []byte(withTx))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Transactions.Enabled() || c.TxMode("demo") != TxTwoPC || c.Transactions.AbandonAfter != 20*time.Second || c.Transactions.ResolveInterval != 10*time.Second {
		t.Errorf("with a coordinator: %+v, mode %s", c.Transactions, c.TxMode("demo"))
	}
	src := strings.Replace(withTx, "    sharded: true\n", "    sharded: true\n    transaction_mode: multi\n", 1)
	if c, err = Parse("tx.yaml", []byte(src)); err != nil || c.TxMode("demo") != TxMulti {
		t.Fatalf("multi: %v", err)
	}
}

func TestTransactionsErrors(t *testing.T) {
	cases := []struct{ name, src, want string }{
		{"bad addr", strings.Replace(withTx, "127.0.0.1:9092]", "coord]", 1),
			`tx.yaml:35: transactions.coordinator[1]: "coord" is not host:port (the gRPC address of a txcoord node)`},
		{"dup addr", strings.Replace(withTx, "127.0.0.1:9092]", "127.0.0.1:9091]", 1), "transactions.coordinator[1]: 127.0.0.1:9091 is listed twice"},
		{"short abandon", strings.Replace(withTx, "abandon_after: 20s", "abandon_after: 10ms", 1), "tx.yaml:36: transactions.abandon_after: 10ms is below 1s"},
		{"bad mode", strings.Replace(withTx, "    sharded: true\n", "    sharded: true\n    transaction_mode: xa\n", 1),
			`tx.yaml:18: databases.demo.transaction_mode: "xa" is not twopc, single or multi`},
		{"twopc without coordinator", strings.Replace(good, "    sharded: true\n", "    sharded: true\n    transaction_mode: twopc\n", 1),
			"databases.demo.transaction_mode: twopc needs a coordinator"},
	}
	for _, tc := range cases {
		_, err := Parse("tx.yaml", []byte(tc.src))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v\nwant it to contain %q", tc.name, err, tc.want)
		}
	}
}
