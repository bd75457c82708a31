//go:build chaosdebug

package idserver

import (
	"os"
	"strings"
	"sync/atomic"
)

var debugTakes atomic.Uint64

// debugReissue breaks uniqueness on purpose, in builds with -tags
// chaosdebug only, when STRATA_CHAOSDEBUG names reissue-ids: one take in
// 50 hands out its range without consuming it, so the next take issues the
// same IDs again. The chaos package's tests use it to show that the ids
// checker catches duplicates.
func debugReissue() bool {
	return strings.Contains(os.Getenv("STRATA_CHAOSDEBUG"), "reissue-ids") && debugTakes.Add(1)%50 == 0
}

// debugIgnoreBackwards breaks snowflake order and uniqueness on purpose, in
// builds with -tags chaosdebug only, when STRATA_CHAOSDEBUG names
// ignore-clock-backwards: a clock that went back is followed, as a naive
// generator does, instead of waited out or refused. The chaos package's
// tests use it to show that the ids checker catches the duplicates and
// the out-of-order IDs a clock_skew fault then causes.
func debugIgnoreBackwards() bool {
	return strings.Contains(os.Getenv("STRATA_CHAOSDEBUG"), "ignore-clock-backwards")
}
