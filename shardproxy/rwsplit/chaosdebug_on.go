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

// debugStrongOnReplicas breaks strong consistency on purpose (chaosdebug
// builds, STRATA_CHAOSDEBUG names strong-on-replicas): strong reads go to
// the replicas like eventual ones, so the register (linearizability) and
// cache (freshness) checkers must catch the stale reads.
func debugStrongOnReplicas() bool {
	return strings.Contains(os.Getenv("STRATA_CHAOSDEBUG"), "strong-on-replicas")
}
