//go:build !race

package sshnative

const raceEnabled = false
