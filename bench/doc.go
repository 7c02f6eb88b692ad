// Package bench holds exed's end-to-end benchmarks: they start the real
// server stack on loopback and measure it from an HTTP client, the way
// operators use it. Run them with make bench; bench/README.md records the
// numbers measured on the reference machine.
package bench
