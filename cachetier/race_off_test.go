//go:build !race

package cachetier

const raceEnabled = false
