// Package client is a Go client of exed's HTTP API (docs/API.md): one
// typed method per endpoint, the API's errors as *Error, and Follow, a
// job's events as a Go iterator that survives dropped connections.
//
//	c, err := client.New("http://127.0.0.1:16808", client.WithToken(os.Getenv("EXED_TOKEN")))
//	jid, err := c.SubmitExecute(ctx, []string{"web1", "web2"}, "uptime")
//	stream := c.Follow(ctx, jid, client.FollowOptions{})
//	for ev, err := range stream.Events() {
//		if err != nil { ... }
//		fmt.Println(ev.Host, ev.Status, ev.Exec.Stdout)
//	}
//	fmt.Println(stream.Job().State) // Done, or Failure with Job().Error
//
// # Types
//
// Requests, jobs and events are exe's types (exe.Request, exe.Job,
// exe.Event, exe.TaskInfo), whose JSON forms are the API's wire forms both
// ways; enums keep their wire numbers (exe.HostChanged is 5). Events the
// client returns have Host set (the key they came under) and, from a
// follow, Seq: the event's number in its job, from 1.
//
// Sync calls (Ping, Facter, Service, Execute, RunSync) are the API's GETs:
// they run in the API process and return one event per host. Submit and
// the Submit* methods are its POSTs: they store a job and return its ID;
// deploy and tasks exist only this way.
//
// # Errors
//
// A non-2xx answer is an *Error with the status code and the server's
// {"message"}: 400 bad input (nothing ran), 401/403 credentials, 404 an
// unknown host or job, 409 a conflict (a deploy holding a host, a job
// already finished or still running), 501 an operation the executor
// lacks, 503 a full queue or an unreachable store. Transport failures are
// net/http's errors.
//
// # Following a job
//
// Follow streams a job as GET /jobs/{jid}?follow=1 does: every event in
// order, then the job as it ended. A connection that drops, or a server
// that ends the stream early (it shuts down; its store is unreachable),
// is followed again with from=<events received>, after a backoff, so the
// range sees each event once; FollowOptions bound the retries. A server
// that ignores from (older than the API's from parameter) would send
// the first events again after a reconnection.
//
// # Where and as whom
//
// The base URL may carry the path prefix an embedding service mounts the
// API under ("https://ops.example.com/exe/"). WithToken sends a bearer
// token; WithCAFile and WithClientCert set up TLS to a server with
// [api] tls_cert and, for mutual TLS, tls_client_ca.
package client
