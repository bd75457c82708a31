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
