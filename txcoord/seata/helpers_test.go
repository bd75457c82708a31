package seata

import (
	"encoding/json"
	"testing"
)

func decodeResult(t *testing.T, b []byte) Result {
	t.Helper()
	var r Result
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r
}
