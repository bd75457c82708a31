package idserver

import (
	"errors"
	"fmt"
	"time"
)

// Layout is a snowflake ID's bit layout: from the top, a zero sign bit,
// TimeBits of milliseconds since Epoch, WorkerBits of worker ID and
// SequenceBits of sequence within the millisecond. The three add up to 63.
type Layout struct {
	EpochMs      int64 `json:"epoch_ms"` // unix milliseconds
	TimeBits     int   `json:"time_bits"`
	WorkerBits   int   `json:"worker_bits"`
	SequenceBits int   `json:"sequence_bits"`
}

// DefaultEpoch is the default layout's epoch, 2025-01-01T00:00:00Z.
var defaultEpoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// DefaultLayout is 41 bits of milliseconds (about 69 years from
// 2025-01-01), 10 bits of worker (1024 workers), 12 bits of sequence
// (4096 IDs per millisecond per worker).
func DefaultLayout() Layout {
	return Layout{EpochMs: defaultEpoch.UnixMilli(), TimeBits: 41, WorkerBits: 10, SequenceBits: 12}
}

// Validate checks the bit counts.
func (l Layout) Validate() error {
	var errs []error
	if l.TimeBits < 20 {
		errs = append(errs, fmt.Errorf("TimeBits %d is below 20 (17 minutes)", l.TimeBits))
	}
	if l.WorkerBits < 1 || l.WorkerBits > 20 {
		errs = append(errs, fmt.Errorf("WorkerBits %d is not in [1, 20]", l.WorkerBits))
	}
	if l.SequenceBits < 1 || l.SequenceBits > 22 {
		errs = append(errs, fmt.Errorf("SequenceBits %d is not in [1, 22]", l.SequenceBits))
	}
	if s := l.TimeBits + l.WorkerBits + l.SequenceBits; s != 63 {
		errs = append(errs, fmt.Errorf("TimeBits+WorkerBits+SequenceBits is %d, want 63", s))
	}
	if l.EpochMs < 0 {
		errs = append(errs, fmt.Errorf("EpochMs %d is before 1970", l.EpochMs))
	}
	return errors.Join(errs...)
}

func (l Layout) String() string {
	return fmt.Sprintf("epoch %s, %d/%d/%d bits", time.UnixMilli(l.EpochMs).UTC().Format(time.RFC3339), l.TimeBits, l.WorkerBits, l.SequenceBits)
}

// Workers is the number of worker IDs.
func (l Layout) Workers() uint64 { return 1 << l.WorkerBits }

// MaxSequence is the largest sequence number in one millisecond.
func (l Layout) MaxSequence() uint64 { return 1<<l.SequenceBits - 1 }

// End is the first unix millisecond the layout cannot encode.
func (l Layout) End() int64 { return l.EpochMs + 1<<l.TimeBits }

// Compose builds an ID; unixMs must be in [EpochMs, End()).
func (l Layout) Compose(unixMs int64, worker, seq uint64) uint64 {
	return uint64(unixMs-l.EpochMs)<<(l.WorkerBits+l.SequenceBits) | worker<<l.SequenceBits | seq
}

// Decoded is a snowflake ID taken apart.
type Decoded struct {
	ID       uint64
	UnixMs   int64
	Worker   uint64
	Sequence uint64
}

// Time is the ID's timestamp.
func (d Decoded) Time() time.Time { return time.UnixMilli(d.UnixMs).UTC() }

// Decode takes an ID apart; IDs with the sign bit set are invalid.
func (l Layout) Decode(id uint64) (Decoded, error) {
	if id > MaxID {
		return Decoded{}, invalidf("%d is not a snowflake ID: above %d", id, uint64(MaxID))
	}
	return Decoded{
		ID:       id,
		UnixMs:   int64(id>>(l.WorkerBits+l.SequenceBits)) + l.EpochMs,
		Worker:   id >> l.SequenceBits & (1<<l.WorkerBits - 1),
		Sequence: id & l.MaxSequence(),
	}, nil
}
