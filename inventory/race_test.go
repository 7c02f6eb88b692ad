//go:build race

package inventory_test

// raceEnabled: the race detector slows loading about tenfold, which the
// growth tests would measure instead of exed.
const raceEnabled = true
