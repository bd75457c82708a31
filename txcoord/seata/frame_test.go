package seata

import (
	"bufio"
	"bytes"
	"testing"

	"github.com/seata/seata-go/pkg/protocol/branch"
	"github.com/seata/seata-go/pkg/protocol/message"
)

func TestFrameRoundTrip(t *testing.T) {
	in := Frame{Type: message.GettyRequestTypeRequestSync, ID: -7, HeadMap: map[string]string{"k": "v"},
		Body: message.BranchCommitRequest{AbstractBranchEndRequest: message.AbstractBranchEndRequest{
			Xid: "127.0.0.1:8091:5", BranchId: 6, BranchType: branch.BranchTypeTCC, ResourceId: "r",
			ApplicationData: []byte(`{"actionContext":{}}`)}}}
	b, err := appendFrame(nil, in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := readFrame(bufio.NewReader(bytes.NewReader(b)))
	if err != nil {
		t.Fatal(err)
	}
	got, ok := out.Body.(message.BranchCommitRequest)
	if !ok || out.ID != -7 || out.HeadMap["k"] != "v" || got.Xid != "127.0.0.1:8091:5" || got.BranchId != 6 ||
		string(got.ApplicationData) != `{"actionContext":{}}` {
		t.Fatalf("round trip: %#v", out)
	}
	if _, err := appendFrame(nil, Frame{Type: message.GettyRequestTypeResponse, Body: 42}); err == nil {
		t.Fatal("encoded a non-message")
	}
	// A message type seata-go has no codec for (UndoLogDeleteRequest).
	if _, err := appendFrame(nil, Frame{Type: message.GettyRequestTypeRequestSync, Body: message.UndoLogDeleteRequest{}}); err == nil {
		t.Fatal("encoded a message without a codec")
	}
}

// FuzzReadFrame: no input crashes the frame reader or seata-go's codec
// behind it.
func FuzzReadFrame(f *testing.F) {
	for _, body := range []any{
		message.GlobalBeginRequest{TransactionName: "t"},
		message.BranchRegisterRequest{Xid: "a:1:2", ResourceId: "r", LockKey: "t:1"},
		message.RegisterRMRequest{ResourceIds: "r"},
	} {
		b, err := appendFrame(nil, Frame{Type: message.GettyRequestTypeRequestSync, ID: 1, Body: body})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)-1])
	}
	f.Add([]byte{0xda, 0xda, 1, 0, 0, 0, 16, 0, 16, 3, 1, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReader(bytes.NewReader(data))
		for range 4 {
			if _, err := readFrame(r); err != nil {
				return
			}
		}
	})
}
