package binlogtail

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Config configures the tailer of one shard.
type Config struct {
	// Shard names the shard in logs and in the Txns delivered.
	Shard string
	// Primary returns the shard's current primary (host:port). It is asked
	// at start, after every disconnect and every CheckInterval; when its
	// answer changes the tailer moves to the new primary.
	Primary func(ctx context.Context) (string, error)
	// User and Password log in; the user needs REPLICATION SLAVE and read
	// access to information_schema.
	User, Password string
	// ServerID identifies this tailer to the primary as a replica; it must
	// differ from every server's and every other tailer's. 0 picks one at
	// random.
	ServerID uint32
	// StartPos is a MariaDB GTID position (e.g. "0-1-42") to start after;
	// empty starts at the primary's current position.
	StartPos string
	// CheckInterval is how often the primary is re-asked.
	CheckInterval time.Duration
	// ProbeInterval is how often lag is probed (see the package comment).
	ProbeInterval time.Duration
	// Heartbeat asks the primary for a heartbeat when it has no events, so
	// a dead connection is noticed within about twice this.
	Heartbeat time.Duration
	// RetryBackoff is the pause between failed connection attempts.
	RetryBackoff time.Duration
	Logger       *slog.Logger
}

// DefaultConfig has the intervals; Shard, Primary and User are the caller's.
func DefaultConfig() Config {
	return Config{
		CheckInterval: 250 * time.Millisecond,
		ProbeInterval: 100 * time.Millisecond,
		Heartbeat:     time.Second,
		RetryBackoff:  100 * time.Millisecond,
	}
}

// Validate names every field that is wrong.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("binlogtail: config: %s: %s", field, fmt.Sprintf(format, args...)))
	}
	if c.Primary == nil {
		bad("Primary", "required")
	}
	if c.User == "" {
		bad("User", "required")
	}
	if c.CheckInterval <= 0 {
		bad("CheckInterval", "must be positive, got %v", c.CheckInterval)
	}
	if c.ProbeInterval <= 0 {
		bad("ProbeInterval", "must be positive, got %v", c.ProbeInterval)
	}
	if c.Heartbeat <= 0 {
		bad("Heartbeat", "must be positive, got %v", c.Heartbeat)
	}
	if c.RetryBackoff <= 0 {
		bad("RetryBackoff", "must be positive, got %v", c.RetryBackoff)
	}
	if c.StartPos != "" {
		if _, err := parsePos(c.StartPos); err != nil {
			bad("StartPos", "%v", err)
		}
	}
	return errors.Join(errs...)
}
