//go:build !chaosdebug

package rwsplit

// debugSkipReadYourWrites is always false in normal builds: see
// chaosdebug_on.go, the drill's deliberately broken build.
func debugSkipReadYourWrites() bool { return false }

// debugStrongOnReplicas is always false in normal builds.
func debugStrongOnReplicas() bool { return false }
