package idserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"google.golang.org/grpc/codes"
)

// Sentinel errors, matched with errors.Is. Each maps to one HTTP status and
// one gRPC code (see httpStatus and grpcCode).
var (
	// ErrInvalid is bad input: an empty or over-long tag, a count of 0 or
	// past the maximum, a malformed number.
	ErrInvalid = errors.New("idserver: invalid argument")
	// ErrTagExists is CreateTag on a tag that already exists.
	ErrTagExists = errors.New("idserver: tag already exists")
	// ErrExhausted is a tag whose next range would pass the largest ID, a
	// cluster with its maximum number of tags, or no free snowflake worker.
	ErrExhausted = errors.New("idserver: exhausted")
	// ErrUnavailable is a transient failure: no leader, a leader that is
	// still starting, a lost lease, a clock that is behind. Retry, on
	// another node if need be.
	ErrUnavailable = errors.New("idserver: unavailable")
	// ErrClosed is any call after Close.
	ErrClosed = errors.New("idserver: closed")
)

// invalidf wraps ErrInvalid with the reason.
func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// NotLeaderError is returned for segment requests a node cannot serve
// because it is not the ready leader. Leader is the leader's gRPC address
// when known.
type NotLeaderError struct {
	Leader string
	Reason string
}

func (e *NotLeaderError) Error() string {
	msg := "idserver: not the leader"
	if e.Reason != "" {
		msg += " (" + e.Reason + ")"
	}
	if e.Leader == "" {
		return msg + "; leader unknown"
	}
	return msg + "; leader is at " + e.Leader
}

// Is makes a NotLeaderError an ErrUnavailable.
func (e *NotLeaderError) Is(target error) bool { return target == ErrUnavailable }

// ClockBackwardsError is returned by snowflake mode when the clock is
// further behind the last issued timestamp than the node waits.
type ClockBackwardsError struct {
	Behind   int64 // milliseconds
	MaxWait  int64 // milliseconds the node would have waited
	ResumeAt int64 // unix ms the clock must reach
}

func (e *ClockBackwardsError) Error() string {
	return fmt.Sprintf("idserver: snowflake: clock is %dms behind the last issued timestamp (more than the %dms this node waits); refusing to issue IDs until the clock reaches unix ms %d",
		e.Behind, e.MaxWait, e.ResumeAt)
}

// Is makes a ClockBackwardsError an ErrUnavailable: another node can serve.
func (e *ClockBackwardsError) Is(target error) bool { return target == ErrUnavailable }

func httpStatus(err error) int {
	switch {
	case errors.Is(err, ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, ErrTagExists):
		return http.StatusConflict
	case errors.Is(err, ErrUnavailable), errors.Is(err, ErrClosed):
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

func grpcCode(err error) codes.Code {
	switch {
	case errors.Is(err, ErrInvalid):
		return codes.InvalidArgument
	case errors.Is(err, ErrTagExists):
		return codes.AlreadyExists
	case errors.Is(err, ErrExhausted):
		return codes.ResourceExhausted
	case errors.Is(err, ErrUnavailable), errors.Is(err, ErrClosed):
		return codes.Unavailable
	case errors.Is(err, context.Canceled):
		return codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded
	default:
		return codes.Internal
	}
}
