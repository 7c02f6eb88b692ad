// Package exed is the root of the exed module: a library and a thin reference
// server for remote execution on fleets of hosts.
//
// Operators and other services call an HTTP API to list hosts, ping them,
// gather facts, manage services, run commands, deploy roles and run long tasks
// such as a rolling restart, either synchronously on one host or as
// asynchronous jobs whose per-host results can be followed live.
//
// The module is laid out by dependency:
//
//   - exe: the domain types and interfaces (Job, Event, Executor, Task,
//     JobStore, Dispatcher), the Engine that ties them together, and the
//     in-process LocalDispatcher that runs asynchronous jobs by default. It
//     depends on nothing but the standard library and hclog.
//   - jobstore/memory: the in-process JobStore; jobstore/storetest: the
//     conformance suite every JobStore passes.
//   - jobstore/redis: the JobStore and Dispatcher on Redis, for several
//     servers and workers.
//   - plugins/sshnative: the default executor (local connection for
//     localhost; SSH for remote hosts).
//   - transport/http: the HTTP API of API.md as a plain http.Handler.
//   - examples/exed: the reference server.
//
// A Go program embeds exed by building an exe.Engine from these parts and
// mounting transport/http on its own *http.ServeMux.
package exed
