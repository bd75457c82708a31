//go:build race

package cachetier

const raceEnabled = true
