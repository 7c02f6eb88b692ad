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
//     depends on nothing but the standard library, hclog and uuid. Its
//     documentation is the manual: embedding, writing an executor or a
//     task, errors, lifecycle.
//   - jobstore/memory: the in-process JobStore; jobstore/redis: the
//     JobStore and Dispatcher on Redis, for several servers and workers.
//   - executor, task: the plugin SDKs (go-plugin): Serve for a plugin's
//     main, Start to run a plugin binary; loader: discovery, start and
//     configuration of plugins, for the server and embedders alike.
//   - inventory: Ansible inventories and host patterns; section: a
//     plugin's config section.
//   - plugins/sshnative, plugins/ansible: executors; plugins/rollingrestart:
//     a task.
//   - transport/http: the HTTP API of API.md as an http.Handler; auth: its
//     credentials.
//   - prometheus: Prometheus metrics of the Engine, the API, the plugin
//     processes and the sshnative executor, through the observer
//     interfaces of exe, transport/http and plugins/sshnative.
//   - jobstore/storetest, dispatchtest, executortest: the conformance
//     suites every store, dispatcher and executor passes.
//   - examples/exed: the reference server; examples/embed: a service that
//     embeds exed.
//
// A Go program embeds exed by building an exe.Engine from these parts and
// mounting transport/http on its own *http.ServeMux; see Example and
// examples/embed.
package exed
