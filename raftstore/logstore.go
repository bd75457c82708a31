package raftstore

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
	"go.etcd.io/bbolt"
)

// Log stores (Config.LogStore).
const (
	// LogStoreBolt keeps the log and stable store in one bolt file,
	// DataDir/raft.db: two fsyncs per append (bolt's pages, then its meta
	// page).
	LogStoreBolt = "bolt"
	// LogStoreWAL keeps them in hashicorp/raft-wal's segment files under
	// DataDir/wal: one fsync per append, so an entry commits in about half
	// the disk time. raft-wal calls itself experimental; Strata uses it
	// where commit latency is the product (the transaction coordinator).
	LogStoreWAL = "wal"
)

// walSegmentSize is each WAL segment's preallocated size: the default
// 64 MiB is a lot per node for a log that snapshots every few thousand
// small entries.
const walSegmentSize = 8 << 20

// logStore is the log and stable store a node runs on.
type logStore interface {
	raft.LogStore
	raft.StableStore
	Close() error
}

// openLogStore opens the store DataDir already holds, or creates the kind
// cfg.LogStore names: a directory keeps the store it was created with.
func openLogStore(cfg Config, logger *slog.Logger) (logStore, error) {
	boltPath := filepath.Join(cfg.DataDir, "raft.db")
	walDir := filepath.Join(cfg.DataDir, "wal")
	kind := cfg.LogStore
	if kind == "" {
		kind = LogStoreBolt
	}
	_, boltErr := os.Stat(boltPath)
	_, walErr := os.Stat(walDir)
	switch {
	case boltErr == nil && walErr == nil:
		return nil, fmt.Errorf("raftstore: %s holds both raft.db and wal/: remove the one not in use", cfg.DataDir)
	case boltErr == nil:
		kind = LogStoreBolt
	case walErr == nil:
		kind = LogStoreWAL
	case !errors.Is(boltErr, fs.ErrNotExist):
		return nil, fmt.Errorf("raftstore: %w", boltErr)
	case !errors.Is(walErr, fs.ErrNotExist):
		return nil, fmt.Errorf("raftstore: %w", walErr)
	}
	if kind == LogStoreBolt {
		store, err := raftboltdb.New(raftboltdb.Options{
			Path: boltPath,
			// Without a timeout a second process on the same directory would
			// wait for the file lock forever.
			BoltOptions: &bbolt.Options{Timeout: time.Second},
		})
		if err != nil {
			return nil, fmt.Errorf("raftstore: open %s (in use by another node?): %w", boltPath, err)
		}
		return store, nil
	}
	// raft-wal's own meta file lock waits forever: take one that fails at
	// once instead, so a second node on the directory is refused as with
	// bolt.
	lock, err := lockDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(walDir, 0o750); err != nil {
		lock.Close()
		return nil, fmt.Errorf("raftstore: %w", err)
	}
	// raft-wal's Close leaves its meta store open (and its file locked):
	// the store is made here so that Close can close it.
	meta := &metadb.BoltMetaDB{}
	w, err := wal.Open(walDir, wal.WithMetaStore(meta), wal.WithSegmentSize(walSegmentSize), wal.WithLogger(newHclogAdapter(logger, cfg.RaftLogLevel)))
	if err != nil {
		meta.Close()
		lock.Close()
		return nil, fmt.Errorf("raftstore: open %s: %w", walDir, err)
	}
	return &walStore{WAL: w, meta: meta, lock: lock}, nil
}

type walStore struct {
	*wal.WAL
	meta *metadb.BoltMetaDB
	lock *os.File
}

func (w *walStore) Close() error {
	err := errors.Join(w.WAL.Close(), w.meta.Close())
	w.lock.Close()
	return err
}

// lockDir takes an exclusive lock on DataDir/LOCK, failing at once if
// another process or node holds it. Closing the file releases it.
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, "LOCK")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		return nil, fmt.Errorf("raftstore: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("raftstore: lock %s (in use by another node?): %w", path, err)
	}
	return f, nil
}
