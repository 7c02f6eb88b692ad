// Package jobstore groups the implementations of exe.JobStore: memory (the
// embedded default) and, in its own package, Redis. Every implementation
// passes the conformance suite in jobstore/storetest.
package jobstore
