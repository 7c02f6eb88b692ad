//go:build race

package sshnative

// raceEnabled: the race detector slows resolving several times over,
// which the growth test would measure instead of sshnative.
const raceEnabled = true
