//go:build !chaosdebug

package session

// debugDropCommit is always false in normal builds: see chaosdebug_on.go,
// the drills' deliberately broken build.
func debugDropCommit() bool { return false }
