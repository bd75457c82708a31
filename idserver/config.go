package idserver

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Limits that are part of the API, documented in the README.
const (
	// MaxID is the largest ID either mode issues: IDs fit a signed 64-bit
	// integer (MySQL BIGINT, Java long).
	MaxID = 1<<63 - 1
	// MaxTagLen is the longest tag, in bytes.
	MaxTagLen = 64
)

// Config is the ID service's configuration. Start from DefaultConfig.
type Config struct {
	// DefaultStart and DefaultStep are what a tag gets when it is created on
	// first use. Step is the smallest range the leader reserves at once.
	DefaultStart uint64
	DefaultStep  uint64
	// MaxStep bounds the dynamic step: the leader doubles a tag's step while
	// its ranges last less than StepTarget, multiplies it by four when a
	// caller had to wait for a range, and halves it (down to the tag's own
	// step) while ranges last more than 4*StepTarget. Ranges that last
	// seconds ride out slow Raft round trips (a disk that stalls on fsync)
	// without callers waiting. A larger MaxStep means fewer round trips
	// under heavy load and bigger gaps when a leader dies (up to two steps
	// per tag are lost then).
	MaxStep    uint64
	StepTarget time.Duration
	// MaxTags bounds how many tags the cluster holds, so that a client
	// inventing tags cannot grow the replicated state without end.
	MaxTags int
	// MaxHTTPCount and MaxGRPCCount are the largest count one request may
	// ask for (the JSON list of a large HTTP answer is costly; gRPC answers
	// with ranges).
	MaxHTTPCount uint64
	MaxGRPCCount uint64

	// Lease is how long a leader serves from its cached ranges after a
	// quorum last confirmed its leadership (the start of a successful
	// Barrier, Apply or VerifyLeader). It must be at most half the Raft
	// HeartbeatTimeout (NodeConfig.Validate checks): a new leader cannot be
	// elected until a quorum has heard nothing from the old one for that
	// long, so the old one stops serving before the new one can start; the
	// other half is margin. The leader renews it every Lease/3 in the
	// background. A leader that is the only voter needs no renewal: no
	// other node can be elected.
	Lease time.Duration
	// ApplyTimeout bounds each Raft round trip the service makes.
	ApplyTimeout time.Duration

	// Snowflake configures snowflake mode.
	Snowflake SnowflakeConfig

	// Registerer receives the service's metrics and Gatherer serves them on
	// /metrics. Both nil: the server makes its own registry.
	Registerer prometheus.Registerer
	Gatherer   prometheus.Gatherer
	// Logger; nil means slog.Default().
	Logger *slog.Logger

	// ChaosClock, when set, is the clock the node reads instead of the
	// OS's, and the HTTP API serves /debug/chaos/clock to move it. For
	// chaos drills only; nil (the default) in production.
	ChaosClock *ChaosClock
}

// SnowflakeConfig configures snowflake mode. Every node of a cluster must
// use the same layout; the first node to lease a worker records it in the
// replicated state and a node with another layout is refused.
type SnowflakeConfig struct {
	// Disabled turns snowflake mode off on this node (its API answers 503).
	Disabled bool
	Layout   Layout
	// WorkerTTL is how long a worker lease lasts without renewal; a node
	// renews it with every timestamp reservation. Must be at least twice
	// Reserve so a node stops issuing (at the end of its reservation) well
	// before its lease can pass to another node.
	WorkerTTL time.Duration
	// Reserve is how far ahead of the clock a node commits the timestamps
	// it may use; it commits again when less than half is left. Larger
	// means fewer Raft round trips and, after a restart that keeps the
	// same worker, a longer wait (the node picks a fresh worker when one is
	// free instead).
	Reserve time.Duration
	// MaxBackwardWait is how far back the clock may step for the node to
	// wait it out; further back, requests fail with a ClockBackwardsError.
	MaxBackwardWait time.Duration
}

// DefaultConfig returns the defaults documented in the README.
func DefaultConfig() Config {
	return Config{
		DefaultStart: 1,
		DefaultStep:  1000,
		MaxStep:      1 << 20,
		StepTarget:   2 * time.Second,
		MaxTags:      10000,
		MaxHTTPCount: 10000,
		MaxGRPCCount: 1 << 20,
		Lease:        200 * time.Millisecond,
		ApplyTimeout: 3 * time.Second,
		Snowflake: SnowflakeConfig{
			Layout:          DefaultLayout(),
			WorkerTTL:       10 * time.Second,
			Reserve:         3 * time.Second,
			MaxBackwardWait: 5 * time.Millisecond,
		},
	}
}

// Validate reports every field that is wrong, each named.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("idserver: config: %s: %s", field, fmt.Sprintf(format, args...)))
	}
	if c.DefaultStart < 1 || c.DefaultStart > MaxID {
		bad("DefaultStart", "%d is not in [1, %d]", c.DefaultStart, uint64(MaxID))
	}
	if c.DefaultStep < 1 {
		bad("DefaultStep", "must be at least 1")
	}
	if c.MaxStep < c.DefaultStep {
		bad("MaxStep", "%d is below DefaultStep %d", c.MaxStep, c.DefaultStep)
	}
	if c.MaxStep > 1<<40 {
		bad("MaxStep", "%d is above 2^40: a leader change would waste that many IDs", c.MaxStep)
	}
	if c.StepTarget <= 0 {
		bad("StepTarget", "must be positive")
	}
	if c.MaxTags < 1 {
		bad("MaxTags", "must be at least 1")
	}
	if c.MaxHTTPCount < 1 {
		bad("MaxHTTPCount", "must be at least 1")
	}
	if c.MaxGRPCCount < 1 {
		bad("MaxGRPCCount", "must be at least 1")
	}
	if c.Lease < time.Millisecond {
		bad("Lease", "%v is below 1ms", c.Lease)
	}
	if c.ApplyTimeout < time.Millisecond {
		bad("ApplyTimeout", "%v is below 1ms", c.ApplyTimeout)
	}
	if (c.Registerer == nil) != (c.Gatherer == nil) {
		bad("Registerer", "set both Registerer and Gatherer, or neither")
	}
	sf := c.Snowflake
	if err := sf.Layout.Validate(); err != nil {
		bad("Snowflake.Layout", "%v", err)
	}
	if sf.Reserve < 10*time.Millisecond {
		bad("Snowflake.Reserve", "%v is below 10ms", sf.Reserve)
	}
	if sf.WorkerTTL < 2*sf.Reserve {
		bad("Snowflake.WorkerTTL", "%v is below twice Reserve (%v)", sf.WorkerTTL, sf.Reserve)
	}
	if sf.MaxBackwardWait < 0 || sf.MaxBackwardWait > time.Second {
		bad("Snowflake.MaxBackwardWait", "%v is not in [0, 1s]", sf.MaxBackwardWait)
	}
	return errors.Join(errs...)
}
