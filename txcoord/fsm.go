package txcoord

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
)

// applyResult is what the FSM returns to raftstore for one entry.
type applyResult struct {
	data    []byte
	refused *RefusedError
}

// fsm is the raftstore.FSM over the node's modules.
type fsm struct {
	modules map[byte]Module
}

func newFSM(mods []Module) (*fsm, error) {
	f := &fsm{modules: map[byte]Module{}}
	for i, m := range mods {
		if m == nil {
			return nil, fmt.Errorf("txcoord: Modules[%d] is nil", i)
		}
		id := m.ID()
		if id == 0 {
			return nil, fmt.Errorf("txcoord: Modules[%d]: ID 0 is reserved", i)
		}
		if _, dup := f.modules[id]; dup {
			return nil, fmt.Errorf("txcoord: Modules[%d]: ID %d used twice", i, id)
		}
		f.modules[id] = m
	}
	return f, nil
}

func (f *fsm) Apply(index uint64, cmd []byte) any {
	if len(cmd) == 0 {
		return applyResult{refused: &RefusedError{Msg: fmt.Sprintf("empty entry at index %d", index)}}
	}
	m, ok := f.modules[cmd[0]]
	if !ok {
		// Every node must run the same modules; one that does not refuses
		// (and so diverges for this module only, which it never serves).
		return applyResult{refused: &RefusedError{Module: cmd[0], Msg: fmt.Sprintf("no module %d on this node (entry %d)", cmd[0], index)}}
	}
	data, err := m.Apply(index, cmd[1:])
	if err != nil {
		return applyResult{data: data, refused: &RefusedError{Module: cmd[0], Msg: err.Error()}}
	}
	return applyResult{data: data}
}

// Snapshot is, per module in ID order: the ID byte, a uint32 length, the
// module's bytes.
func (f *fsm) Snapshot() ([]byte, error) {
	encode, err := f.SnapshotCopy()
	if err != nil {
		return nil, err
	}
	return encode()
}

// copier is a module that can take its snapshot in two steps (see
// raftstore.TwoStepSnapshotter).
type copier interface {
	SnapshotCopy() (func() ([]byte, error), error)
}

// SnapshotCopy takes every module's copy now (modules that cannot, their
// bytes) and encodes Snapshot's format later.
func (f *fsm) SnapshotCopy() (func() ([]byte, error), error) {
	ids := make([]int, 0, len(f.modules))
	for id := range f.modules {
		ids = append(ids, int(id))
	}
	sort.Ints(ids)
	encoders := make([]func() ([]byte, error), len(ids))
	for i, id := range ids {
		m := f.modules[byte(id)]
		if c, ok := m.(copier); ok {
			e, err := c.SnapshotCopy()
			if err != nil {
				return nil, fmt.Errorf("txcoord: module %d snapshot: %w", id, err)
			}
			encoders[i] = e
			continue
		}
		b, err := m.Snapshot()
		if err != nil {
			return nil, fmt.Errorf("txcoord: module %d snapshot: %w", id, err)
		}
		encoders[i] = func() ([]byte, error) { return b, nil }
	}
	return func() ([]byte, error) {
		var out []byte
		for i, id := range ids {
			b, err := encoders[i]()
			if err != nil {
				return nil, fmt.Errorf("txcoord: module %d snapshot: %w", id, err)
			}
			out = append(out, byte(id))
			out = binary.BigEndian.AppendUint32(out, uint32(len(b)))
			out = append(out, b...)
		}
		return out, nil
	}, nil
}

func (f *fsm) Restore(data []byte) error {
	parts := map[byte][]byte{}
	for len(data) > 0 {
		if len(data) < 5 {
			return errors.New("txcoord: snapshot: truncated section header")
		}
		id, n := data[0], binary.BigEndian.Uint32(data[1:5])
		data = data[5:]
		if uint64(n) > uint64(len(data)) {
			return fmt.Errorf("txcoord: snapshot: module %d section of %d bytes, %d left", id, n, len(data))
		}
		if _, ok := f.modules[id]; !ok {
			return fmt.Errorf("txcoord: snapshot holds state of module %d, which this node does not run", id)
		}
		parts[id] = data[:n]
		data = data[n:]
	}
	for id, m := range f.modules {
		if err := m.Restore(parts[id]); err != nil {
			return fmt.Errorf("txcoord: module %d restore: %w", id, err)
		}
	}
	return nil
}
