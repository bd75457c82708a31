//go:build chaosdebug

package session

import (
	"os"
	"strings"
	"sync/atomic"
)

var debugCommits atomic.Uint64

// debugDropCommit breaks durability on purpose, in builds with -tags
// chaosdebug only, when STRATA_CHAOSDEBUG names drop-commit: one COMMIT in
// 10 is sent to the shard as ROLLBACK while the client is told it
// committed. The chaos package's tests use it to show that the bank
// checker catches the lost transfers.
func debugDropCommit() bool {
	return strings.Contains(os.Getenv("STRATA_CHAOSDEBUG"), "drop-commit") && debugCommits.Add(1)%10 == 0
}
