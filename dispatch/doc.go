// Package dispatch groups the implementations of exe.Dispatcher: local, the
// in-process worker pool (the embedded default), and the Redis dispatcher
// that lives beside the Redis job store.
package dispatch
