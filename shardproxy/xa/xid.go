package xa

import (
	"errors"
	"fmt"
	"strconv"

	"vitess.io/vitess/go/mysql/sqlerror"
)

// FormatID is the XA format id of every XID Strata makes ("STRA").
const FormatID = 0x53545241

// XID is one branch of a distributed transaction: the coordinator's
// transaction id and the shard.
type XID struct {
	TxID  uint64
	Shard string
}

// maxBqual is MariaDB's limit on a branch qualifier.
const maxBqual = 64

// CheckShardName reports whether a shard name can be a bqual.
func CheckShardName(shard string) error {
	if shard == "" || len(shard) > maxBqual {
		return fmt.Errorf("xa: shard name %q must be 1 to %d bytes to name an XA branch", shard, maxBqual)
	}
	for i := 0; i < len(shard); i++ {
		if c := shard[i]; c == '\'' || c == '\\' || c < 0x20 {
			return fmt.Errorf("xa: shard name %q holds a character an XID cannot", shard)
		}
	}
	return nil
}

// String is the XID as XA statements take it: 'gtrid','bqual',format.
func (x XID) String() string {
	return "'" + strconv.FormatUint(x.TxID, 10) + "','" + x.Shard + "'," + strconv.Itoa(FormatID)
}

// Start, End, Prepare, Commit, CommitOnePhase and Rollback are the XA
// statements for the branch.
func (x XID) Start() string          { return "XA START " + x.String() }
func (x XID) End() string            { return "XA END " + x.String() }
func (x XID) Prepare() string        { return "XA PREPARE " + x.String() }
func (x XID) Commit() string         { return "XA COMMIT " + x.String() }
func (x XID) CommitOnePhase() string { return "XA COMMIT " + x.String() + " ONE PHASE" }
func (x XID) Rollback() string       { return "XA ROLLBACK " + x.String() }

// ParseRecovered reads one row of XA RECOVER (formatID, gtrid_length,
// bqual_length, data); ok is false for an XID that is not Strata's.
func ParseRecovered(formatID, gtridLen, bqualLen, data string) (XID, bool) {
	f, err1 := strconv.ParseInt(formatID, 10, 64)
	g, err2 := strconv.Atoi(gtridLen)
	b, err3 := strconv.Atoi(bqualLen)
	if err1 != nil || err2 != nil || err3 != nil || f != FormatID || g < 1 || b < 1 || g+b != len(data) {
		return XID{}, false
	}
	id, err := strconv.ParseUint(data[:g], 10, 64)
	if err != nil || id == 0 {
		return XID{}, false
	}
	return XID{TxID: id, Shard: data[g:]}, true
}

// errXANotA is MariaDB's XAER_NOTA: an unknown XID, or one still
// attached to the session that prepared it.
const errXANotA = 1397

// errNumber is the server's error number in err, 0 if none.
func errNumber(err error) int {
	var se *sqlerror.SQLError
	if errors.As(err, &se) {
		return int(se.Number())
	}
	return 0
}
