package fleet

import (
	"errors"

	"vitess.io/vitess/go/mysql/sqlerror"
)

// Sentinel errors, checked with errors.Is. The errors the fleet returns are
// *Error values that wrap them and name the shard.
var (
	ErrUnknownShard  = errors.New("fleet: unknown shard")
	ErrUnknownServer = errors.New("fleet: unknown server")
	// ErrPrimaryDown: the shard's primary is ejected; writes (and reads
	// that need the primary) fail at once instead of hanging.
	ErrPrimaryDown = errors.New("fleet: primary down")
	// ErrNoReplica: no replica qualifies for a read and Config.NoReplica is
	// FailRead.
	ErrNoReplica = errors.New("fleet: no replica available")
	// ErrHoldTimeout and ErrHoldFull: a query held during a switchover
	// waited longer than Config.HoldTimeout, or Config.HoldMax were already
	// waiting.
	ErrHoldTimeout = errors.New("fleet: held too long")
	ErrHoldFull    = errors.New("fleet: too many held queries")
	// ErrBusy: another switchover or failover of the shard is running.
	ErrBusy = errors.New("fleet: switchover in progress")
	// ErrClosed: the fleet was closed.
	ErrClosed = errors.New("fleet: closed")
)

// Error is a routing or admin failure on one shard.
type Error struct {
	Shard string
	Err   error  // one of the sentinels, or the underlying failure
	Msg   string // what happened, for people
}

func (e *Error) Error() string { return "strata: shard " + e.Shard + ": " + e.Msg }
func (e *Error) Unwrap() error { return e.Err }

// SQLError turns an error from the fleet into the MySQL error a client
// should see: ER_UNKNOWN_ERROR (1105, HY000) with the fleet's message, which
// names the shard. Other errors are returned unchanged.
func SQLError(err error) error {
	var fe *Error
	if !errors.As(err, &fe) {
		return err
	}
	return sqlerror.NewSQLError(sqlerror.ERUnknownError, sqlerror.SSUnknownSQLState, fe.Error())
}
