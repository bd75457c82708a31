//go:build chaosdebug

package xa

import (
	"os"
	"strings"
	"sync/atomic"
)

var debugCommits atomic.Uint64

// debugLeavePrepared, in builds with -tags chaosdebug only, when
// STRATA_CHAOSDEBUG names xa-leave-prepared: one two-phase commit in 10
// (the first, the 11th, ...: a short drill makes only a few) skips phase two after its commit decision is recorded (its branches stay
// prepared, detached), as if the proxy had died right after the decision;
// the client is told it committed, which is true once the decision is
// durable. Recovery must then finish the branches.
func debugLeavePrepared() bool {
	return strings.Contains(os.Getenv("STRATA_CHAOSDEBUG"), "xa-leave-prepared") && debugCommits.Add(1)%10 == 1
}

// debugSkipRecovery, in builds with -tags chaosdebug only, when
// STRATA_CHAOSDEBUG names skip-xa-recovery: the resolver's passes do
// nothing. With xa-leave-prepared, the chaos package's tests use it to
// show that the xa check (branches left in doubt) and the bank checker
// (acknowledged transfers not applied) catch a stack without recovery.
func debugSkipRecovery() bool {
	return strings.Contains(os.Getenv("STRATA_CHAOSDEBUG"), "skip-xa-recovery")
}
