//go:build !chaosdebug

package idserver

// debugReissue is always false in normal builds: see chaosdebug_on.go,
// the drill's deliberately broken build.
func debugReissue() bool { return false }

// debugIgnoreBackwards is always false in normal builds.
func debugIgnoreBackwards() bool { return false }
