//go:build chaosdebug

package rwsplit

import (
	"os"
	"strings"
)

// debugSkipReadYourWrites breaks read-your-writes on purpose, in builds
// with -tags chaosdebug only, when STRATA_CHAOSDEBUG names skip-ryw: a
// session read no longer waits for the session's writes. The chaos
// package's tests use it to show that the ryw checker catches the stale
// reads that follow.
func debugSkipReadYourWrites() bool {
	return strings.Contains(os.Getenv("STRATA_CHAOSDEBUG"), "skip-ryw")
}
