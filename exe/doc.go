// Package exe holds exed's domain: jobs and their per-host events, the
// operations an executor performs, and the interfaces that the rest of the
// module implements (Executor, Task, JobStore, Dispatcher).
//
// Engine ties them together. Sync calls (Engine.Run) go straight to the
// executor with a deadline; async calls (Engine.Submit) are stored in the
// JobStore before their job ID is returned, then handed to a Dispatcher whose
// workers execute them through a Runner, which appends every event to the
// store as it arrives and finishes the job with its outcome.
//
// The package depends only on the standard library and hclog, so that
// executor and task plugins, stores and transports can all import it.
package exe
