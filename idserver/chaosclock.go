package idserver

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"
)

// ChaosClock is the OS clock plus an offset that a chaos drill moves from
// outside the process, to show what a clock step (NTP, a VM resumed, an
// operator's date command) does to snowflake IDs. A node runs with one only
// when told to (Config.ChaosClock, `strata idserver --chaos-clock`); its
// HTTP API then serves /debug/chaos/clock.
//
// The offset moves everything the node reads from its clock: snowflake
// timestamps, the worker lease's local end, the timestamps the leader
// stamps on snowflake commands, the segment step timing. (A real step of
// the wall clock leaves Go's monotonic readings alone; here the lease's
// local end moves too, so a forward jump may make a node drop its worker
// early, which is the safe direction.)
type ChaosClock struct {
	offset atomic.Int64 // nanoseconds
}

// Now is the OS clock plus the offset.
func (c *ChaosClock) Now() time.Time { return time.Now().Add(c.Offset()) }

// Offset is the current offset from the OS clock.
func (c *ChaosClock) Offset() time.Duration { return time.Duration(c.offset.Load()) }

// Set makes the clock read the OS clock plus d (negative: behind).
func (c *ChaosClock) Set(d time.Duration) { c.offset.Store(int64(d)) }

// ServeHTTP answers GET /debug/chaos/clock with {"offset_ms": N} and
// PUT /debug/chaos/clock?offset=D (a Go duration: -3s, 1500ms, 0) by
// setting the offset (from the OS clock, not from the current offset).
func (c *ChaosClock) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
	case http.MethodPut, http.MethodPost:
		d, err := time.ParseDuration(r.URL.Query().Get("offset"))
		if err != nil {
			writeJSONError(w, http.StatusBadRequest, fmt.Errorf("offset: want a duration such as -3s or 1500ms: %v", err))
			return
		}
		c.Set(d)
	default:
		w.Header().Set("Allow", "GET, PUT")
		writeJSONError(w, http.StatusMethodNotAllowed, fmt.Errorf("%s: use GET or PUT", r.Method))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]int64{"offset_ms": c.Offset().Milliseconds()})
}
