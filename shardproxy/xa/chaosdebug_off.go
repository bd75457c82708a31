//go:build !chaosdebug

package xa

// debugLeavePrepared and debugSkipRecovery are always false in normal
// builds: see chaosdebug_on.go, the drills' deliberately broken build.
func debugLeavePrepared() bool { return false }
func debugSkipRecovery() bool  { return false }
