package raftstore

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"sync"

	"github.com/hashicorp/raft"
)

// FSM is the consumer's replicated state machine. Apply must be
// deterministic: every node applies the same commands in the same order and
// must end in the same state.
type FSM interface {
	// Apply applies one committed command; the result is returned from
	// Node.Apply on the node that proposed it (an error value is returned as
	// the result, not as Apply's error). cmd must not be modified; copy it to
	// keep it.
	Apply(index uint64, cmd []byte) any
	// Snapshot returns the whole state, serialised; called on the FSM
	// goroutine, so it must copy, not hand out, live state.
	Snapshot() ([]byte, error)
	// Restore replaces the whole state with a snapshot's bytes.
	Restore(data []byte) error
}

// TwoStepSnapshotter is an FSM whose snapshot is taken in two steps, for
// state large enough that serialising it would hold up Applies: Snapshot
// is then not called; SnapshotCopy runs on the FSM goroutine (Applies wait
// for it) and takes a copy that later Applies do not change; the function
// it returns serialises that copy while Applies go on (in Raft's snapshot
// goroutine), once.
type TwoStepSnapshotter interface {
	SnapshotCopy() (encode func() ([]byte, error), err error)
}

// Every log entry's first byte says whose it is, so the consumer's FSM only
// ever sees its own commands and this package can replicate member metadata
// in the same log.
const (
	tagUser       byte = 0
	tagSetMeta    byte = 1
	tagDeleteMeta byte = 2
)

// metaCmd is the body of tagSetMeta and tagDeleteMeta entries.
type metaCmd struct {
	ID   string            `json:"id"`
	Meta map[string]string `json:"meta,omitempty"`
}

func encodeUser(cmd []byte) []byte {
	b := make([]byte, 1+len(cmd))
	b[0] = tagUser
	copy(b[1:], cmd)
	return b
}

func encodeMeta(tag byte, c metaCmd) []byte {
	body, err := json.Marshal(c)
	if err != nil {
		panic(fmt.Sprintf("raftstore: marshal meta: %v", err)) // a map of strings always marshals
	}
	return append([]byte{tag}, body...)
}

// snapshotMagic starts every snapshot this package writes: the header that
// carries member metadata ahead of the consumer's bytes.
var snapshotMagic = [4]byte{'R', 'S', 'S', 1}

// fsmAdapter is the raft.FSM: it keeps member metadata itself and hands
// everything else to the consumer's FSM.
type fsmAdapter struct {
	user FSM

	mu   sync.RWMutex
	meta map[string]map[string]string // node ID -> meta
	// restoreErr is the last failed Restore: Raft only logs it, and Open
	// names it when no snapshot on disk could be restored.
	restoreErr error
}

func newFSMAdapter(user FSM) *fsmAdapter {
	return &fsmAdapter{user: user, meta: map[string]map[string]string{}}
}

func (f *fsmAdapter) Apply(l *raft.Log) any {
	if len(l.Data) == 0 {
		return fmt.Errorf("raftstore: empty log entry at index %d", l.Index)
	}
	switch l.Data[0] {
	case tagUser:
		return f.user.Apply(l.Index, l.Data[1:])
	case tagSetMeta, tagDeleteMeta:
		var c metaCmd
		if err := json.Unmarshal(l.Data[1:], &c); err != nil {
			return fmt.Errorf("raftstore: meta entry at index %d: %w", l.Index, err)
		}
		f.mu.Lock()
		if l.Data[0] == tagSetMeta {
			f.meta[c.ID] = c.Meta
		} else {
			delete(f.meta, c.ID)
		}
		f.mu.Unlock()
		return nil
	default:
		return fmt.Errorf("raftstore: unknown entry tag %d at index %d", l.Data[0], l.Index)
	}
}

func (f *fsmAdapter) Snapshot() (raft.FSMSnapshot, error) {
	var encode func() ([]byte, error)
	if ts, ok := f.user.(TwoStepSnapshotter); ok {
		e, err := ts.SnapshotCopy()
		if err != nil {
			return nil, fmt.Errorf("raftstore: FSM snapshot: %w", err)
		}
		encode = e
	} else {
		data, err := f.user.Snapshot()
		if err != nil {
			return nil, fmt.Errorf("raftstore: FSM snapshot: %w", err)
		}
		encode = func() ([]byte, error) { return data, nil }
	}
	f.mu.RLock()
	meta, err := json.Marshal(f.meta)
	f.mu.RUnlock()
	if err != nil {
		return nil, fmt.Errorf("raftstore: marshal meta: %w", err)
	}
	return &fsmSnapshot{meta: meta, encode: encode}, nil
}

func (f *fsmAdapter) Restore(rc io.ReadCloser) error {
	err := f.restore(rc)
	f.mu.Lock()
	f.restoreErr = err
	f.mu.Unlock()
	return err
}

func (f *fsmAdapter) lastRestoreErr() error {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.restoreErr
}

func (f *fsmAdapter) restore(rc io.ReadCloser) error {
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return fmt.Errorf("raftstore: read snapshot: %w", err)
	}
	meta, data, err := decodeSnapshot(b)
	if err != nil {
		return err
	}
	if err := f.user.Restore(data); err != nil {
		return fmt.Errorf("raftstore: FSM restore: %w", err)
	}
	f.mu.Lock()
	f.meta = meta
	f.mu.Unlock()
	return nil
}

// metaOf returns a copy of one member's metadata.
func (f *fsmAdapter) metaOf(id string) map[string]string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return copyMeta(f.meta[id])
}

// hasMeta reports whether id's replicated metadata equals m (nil and empty
// are equal, so a node without Meta never needs an entry).
func (f *fsmAdapter) hasMeta(id string, m map[string]string) bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return maps.Equal(f.meta[id], m)
}

func (f *fsmAdapter) metaIDs() []string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	ids := make([]string, 0, len(f.meta))
	for id := range f.meta {
		ids = append(ids, id)
	}
	return ids
}

// fsmSnapshot is written as: magic, uint32 length of the metadata JSON, the
// JSON, then the consumer's bytes.
type fsmSnapshot struct {
	meta []byte
	// encode gives the consumer's bytes (serialised here, off the FSM
	// goroutine, for a TwoStepSnapshotter).
	encode func() ([]byte, error)
}

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	data, err := s.encode()
	if err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("raftstore: FSM snapshot: %w", err)
	}
	var hdr [8]byte
	copy(hdr[:4], snapshotMagic[:])
	binary.BigEndian.PutUint32(hdr[4:], uint32(len(s.meta)))
	for _, b := range [][]byte{hdr[:], s.meta, data} {
		if _, err := sink.Write(b); err != nil {
			_ = sink.Cancel()
			return fmt.Errorf("raftstore: write snapshot: %w", err)
		}
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {}

func decodeSnapshot(b []byte) (map[string]map[string]string, []byte, error) {
	if len(b) < 8 || !bytes.Equal(b[:4], snapshotMagic[:]) {
		return nil, nil, errors.New("raftstore: snapshot has no raftstore header")
	}
	n := binary.BigEndian.Uint32(b[4:8])
	if uint64(n) > uint64(len(b)-8) {
		return nil, nil, fmt.Errorf("raftstore: snapshot header says %d bytes of meta, only %d follow", n, len(b)-8)
	}
	meta := map[string]map[string]string{}
	if err := json.Unmarshal(b[8:8+n], &meta); err != nil {
		return nil, nil, fmt.Errorf("raftstore: snapshot meta: %w", err)
	}
	if meta == nil { // the JSON "null"
		meta = map[string]map[string]string{}
	}
	return meta, b[8+n:], nil
}
