package seata

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
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

// TestReadFrameAllocatesAsBytesCome: a header claiming the largest frame
// and then nothing does not make the reader allocate the whole frame (many
// such connections would hold 8 MiB each).
func TestReadFrameAllocatesAsBytesCome(t *testing.T) {
	h := []byte{0xda, 0xda, 1, 0, 0x80, 0, 0, 0, 16, 0, 1, 0, 0, 0, 0, 1} // total 8 MiB
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := readFrame(bufio.NewReader(bytes.NewReader(append(h, make([]byte, 100)...))))
	runtime.ReadMemStats(&after)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated frame: %v, want unexpected EOF", err)
	}
	if d := after.TotalAlloc - before.TotalAlloc; d > 1<<20 {
		t.Fatalf("a 116-byte truncated frame allocated %d bytes", d)
	}
	// A whole large frame still reads.
	body := make([]byte, 200<<10)
	big := append([]byte{0xda, 0xda, 1, 0, 0, 0, 0, 0, 16, 0, 1, 0, 0, 0, 0, 1}, body...)
	binary.BigEndian.PutUint32(big[3:7], uint32(len(big)))
	if _, err := readFrame(bufio.NewReader(bytes.NewReader(big))); err != nil {
		t.Fatalf("a %d-byte frame: %v", len(big), err)
	}
}
