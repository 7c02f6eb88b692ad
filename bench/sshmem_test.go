package bench

import (
	"runtime"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// BenchmarkPooledConnectionMemory is the memory one pooled SSH connection
// holds in the executor's process: heap in use plus goroutine stacks,
// after a collection, with 200 connections pooled by one execute job on
// 200 aliases of a loopback sshd, less the same once the executor has
// closed them (KiB/conn, and the goroutines they ran), against the same
// for 200 bare x/crypto/ssh clients that ran one command each
// (bare-KiB/conn): the floor of any executor built on that library.
func BenchmarkPooledConnectionMemory(b *testing.B) {
	const n = 200
	f := newSSHFleet(b, n)
	defer f.server.Stop()
	for i := 0; i < b.N; i++ {
		// Each figure is the memory in use with the connections open less
		// that once they are closed: the job, the API and the executor
		// stay in both.
		x := f.executor(b)
		srv, eng := api(b, x)
		executeAll(b, srv, eng, f.targets)
		goroutines, open := runtime.NumGoroutine(), inUse()
		x.Close()
		exed := open - inUse()
		goroutines -= runtime.NumGoroutine()
		srv.Close()

		clients := make([]*ssh.Client, n)
		bareLoop(b, f, clients)
		open = inUse()
		for _, c := range clients {
			if c != nil {
				c.Close()
			}
		}
		bare := open - inUse()
		b.ReportMetric(float64(exed)/n/1024, "KiB/conn")
		b.ReportMetric(float64(goroutines)/n, "goroutines/conn")
		b.ReportMetric(float64(bare)/n/1024, "bare-KiB/conn")
	}
}

// inUse is the heap in use plus the goroutine stacks, after the garbage
// collector has run and goroutines that were ending have ended.
func inUse() int64 {
	var m runtime.MemStats
	for range 3 {
		runtime.GC()
		time.Sleep(20 * time.Millisecond) // let closed connections' goroutines exit; a measurement, not a synchronisation
	}
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse + m.StackInuse)
}
