//go:build !chaosdebug

package shardproxy

// debugDropCommit is always false in normal builds: see chaosdebug_on.go,
// the drills' deliberately broken build.
func debugDropCommit() bool { return false }
