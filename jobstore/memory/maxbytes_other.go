//go:build !linux

package memory

// memoryLimit is unknown here: DefaultMaxBytes falls back to a fixed
// budget.
func memoryLimit() int64 { return 0 }
