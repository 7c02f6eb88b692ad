package bench

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/0ops/exed/internal/redistest"
	"github.com/0ops/exed/jobstore/memory"
	exeredis "github.com/0ops/exed/jobstore/redis"
	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"
)

// BenchmarkFollowFrom resumes the follow of an ended job of 10,000
// events over HTTP: from=0 streams them all, from=9990 the last ten.
// The time of a resumed follow should not grow with the events it skips
// (the memory store starts at the offset; the Redis store finds the
// entry in Redis and reads nothing before it).
func BenchmarkFollowFrom(b *testing.B) {
	const events = 10000
	for _, backend := range []string{"memory", "redis"} {
		var store exe.JobStore
		switch backend {
		case "memory":
			store = memory.New(memory.Options{})
		case "redis":
			srv := redistest.Start(b)
			rdb := goredis.NewClient(&goredis.Options{Addr: srv.Addr})
			b.Cleanup(func() { rdb.Close() })
			store = exeredis.New(rdb, exeredis.Options{Prefix: "b" + uuid.NewString()[:8] + ":"})
		}
		s := newStackOn(b, 1, store)
		ctx := context.Background()
		jid := uuid.NewString()
		if err := store.Create(ctx, &exe.Job{JID: jid, State: exe.JobRunning, StartAt: time.Now().Unix(),
			Request: exe.Request{Operate: exe.OpExecute, Targets: []string{"localhost"}, Execute: exe.ExecuteArgs{Cmd: "true"}}}); err != nil {
			b.Fatal(err)
		}
		batch := make([]exe.Event, 0, 500)
		for i := 1; i <= events; i++ {
			batch = append(batch, exe.Event{Host: fmt.Sprintf("host%d", i%100), Status: exe.HostChanged,
				Exec: &exe.ExecResult{Stdout: strings.Repeat("x", 100)}})
			if len(batch) == cap(batch) {
				if err := store.Append(ctx, jid, batch...); err != nil {
					b.Fatal(err)
				}
				batch = batch[:0]
			}
		}
		if err := store.Finish(ctx, jid, exe.JobDone, ""); err != nil {
			b.Fatal(err)
		}
		for _, from := range []int{0, events - 10} {
			b.Run(fmt.Sprintf("%s/from=%d", backend, from), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					res, err := s.client.Get(fmt.Sprintf("%s/jobs/%s?follow=1&from=%d", s.srv.URL, jid, from))
					if err != nil {
						b.Fatal(err)
					}
					lines := 0
					sc := bufio.NewScanner(res.Body)
					for sc.Scan() {
						lines++
					}
					res.Body.Close()
					if res.StatusCode != http.StatusOK || lines != events-from+2 {
						b.Fatalf("status %d, %d lines, want %d", res.StatusCode, lines, events-from+2)
					}
				}
			})
		}
	}
}
