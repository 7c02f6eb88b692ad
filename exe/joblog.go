package exe

import (
	"math"
	"time"

	"github.com/hashicorp/go-hclog"
)

// The job log: every job gets an Info line "job started" from the Runner
// that begins it and one "job ended" line from whoever ends it, in the
// process where that happens (an API server, or a worker with a shared
// queue), so that a log shipper sees each job's life whichever process ran
// it. Both carry the same keys, whatever the log's format:
//
//	jid        the job's ID
//	user       Job.User: who submitted it ("" without authentication)
//	operation  ping, facter, service, execute, deploy or task
//	targets    the number of target hosts
//
// "job ended" adds the outcome and whether the job had run:
//
//	state             Done or Failure (JobState.String)
//	error             Job.Error: "" when done
//	started           false for a job that ended before it ran (cancelled
//	                  while queued, queued at shutdown)
//	duration_seconds  how long the Runner ran it, to the millisecond; only
//	                  on lines of the Runner that ran it
//
// A job the Runner could not end itself (a cancel that did not wait for
// it, a shutdown that failed it) is logged "job ended" by what ended it,
// and the Runner's own end, when it comes, "job run ended; the job had
// already ended", with the outcome in force. A job whose process died is
// failed by the lost-lease recovery of the Redis dispatcher, which logs
// it with its jid.

// jobKeys are the key/value pairs that name a job in the job log.
func jobKeys(job *Job) []any {
	return []any{"jid", job.JID, "user", job.User, "operation", string(job.Operate), "targets", len(job.Targets)}
}

// logJobEnded writes a "job ended" line (msg) for job, ended state with
// text errText; ran is how long its Runner ran it, negative when no
// Runner ran it here.
func logJobEnded(log hclog.Logger, msg string, job *Job, state JobState, errText string, started bool, ran time.Duration) {
	kv := append(jobKeys(job), "state", state.String(), "error", errText, "started", started)
	if ran >= 0 {
		kv = append(kv, "duration_seconds", math.Round(ran.Seconds()*1000)/1000)
	}
	log.Info(msg, kv...)
}
