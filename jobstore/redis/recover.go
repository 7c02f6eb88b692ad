package redis

import (
	"context"
	"errors"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/hashicorp/go-hclog"
	goredis "github.com/redis/go-redis/v9"
)

// recoverer fails the running jobs whose holder's lease lapsed (the
// holder died, or lost Redis for longer than a lease) with the message
// the holder left ("worker lost", "server lost"), which releases their
// locks. Every worker runs one; so does every Dispatcher of a process
// that runs no jobs, so that jobs do not stay Running while no worker is
// alive. Any number may run at once: a job is failed once.
//
// Leases lapse by Redis's clock, and an outage of Redis stops every
// holder's renewals at once: when Redis answers again, leases that would
// have been renewed have lapsed, although their holders are alive and
// retrying (see worker: they take a lapsed lease of a job still theirs
// again). So a recoverer fails a lapsed lease only after it has itself
// been in touch with Redis without a break for a whole lease: a look
// every RecoverEvery, none failing, none slower than RecoverEvery/2, none
// more than 2*RecoverEvery after the last. An outage long enough to make
// a lease lapse (two thirds of a lease or more, since holders renew every
// third) breaks that touch for every recoverer it reaches, and its
// holders get a whole lease after it to renew, and to store how their
// jobs ended (those the outage made them stop, see below). A holder cut
// off alone (a partition, a stopped process) is failed within about
// Lease plus RecoverEvery of its last renewal. The failing call also
// checks, in Redis, that it runs within RecoverEvery/2 of the look that
// saw the lapse, so a call held up by an outage decides nothing. A
// recoverer that starts (a restarted server) fails nothing during its
// first lease.
//
// The failing call acts only on a lease that has lapsed in Redis (the
// script checks it, by Redis's clock, in the step that releases the
// locks), and a holder that is alive but cut off has stopped the job's
// commands by then: it fences itself FenceMargin before its lease may
// lapse, by its own clock from the send time of its last confirmed
// renewal (see DispatcherOptions.FenceMargin). So the locks of a lost job
// are released once its commands were stopped, or once its holder died
// (the next executor on its state directory ends what it left running);
// a holder frozen whole (SIGSTOP, a paused VM) stops nothing.
type recoverer struct {
	rdb  goredis.UniversalClient
	s    *Store
	opts DispatcherOptions
	// worker, when set, is the name of the worker that runs it: each
	// look notes it as seen (Dispatcher.Health reads it).
	worker string
	log    hclog.Logger
	// obs is told of each job it fails: the Engine's Observer.
	obs exe.Observer
}

// newRecoverer returns a recoverer of s's jobs with opts' Lease,
// RecoverEvery and LostMessage (already defaulted by NewDispatcher),
// which tells the Observer of runner (the Engine's) of the jobs it fails.
func newRecoverer(rdb goredis.UniversalClient, s *Store, opts DispatcherOptions, worker string, runner exe.JobRunner) *recoverer {
	return &recoverer{rdb: rdb, s: s, opts: opts, worker: worker, log: opts.Logger, obs: observerOf(runner)}
}

// observerOf is the Observer of the Engine's Runner (exe.Runner.Observer):
// a job the recovery fails ends outside any Runner, and is reported to it
// here, so that every job's end is counted once.
func observerOf(runner exe.JobRunner) exe.Observer {
	if r, ok := runner.(*exe.Runner); ok && r.Observer != nil {
		return r.Observer
	}
	return exe.NoObserver{}
}

// run looks for lapsed leases every RecoverEvery until ctx ends.
func (r *recoverer) run(ctx context.Context) {
	slow := r.opts.RecoverEvery / 2
	var lastOK, since time.Time // the last look in time; the start of the touch
	failing := false
	every(ctx, r.opts.RecoverEvery, func() bool {
		start := time.Now()
		res, err := lapsedScript.Run(ctx, r.rdb, []string{r.s.key("started"), r.s.key("workers")}, r.s.opts.Prefix, r.worker).Slice()
		end := time.Now()
		if err != nil {
			if ctx.Err() == nil && !failing {
				r.log.Warn("lost-lease recovery: redis unavailable; retrying", "error", err)
			}
			failing, lastOK = true, time.Time{}
			return true
		}
		if lastOK.IsZero() || end.Sub(start) > slow || end.Sub(lastOK) > 2*r.opts.RecoverEvery {
			if !since.IsZero() {
				r.log.Info("lost-lease recovery: out of touch with redis for a while; failing lapsed leases again after a lease", "lease", r.opts.Lease)
			}
			since = end
		}
		failing, lastOK = false, end
		if end.Sub(since) >= r.opts.Lease && len(res) >= 2 {
			now, _ := res[0].(int64)
			r.failLapsed(ctx, res[1:], now, slow)
		}
		return true
	})
}

// observe tells the Observer of a job failed as lost: the FAILED event
// the failing gave each of filled (the targets that had none when it
// failed, as the failing's own write answered, not as a read before or
// after it would see them), then its end. The job is read (without its
// events) for its operation only, which never changes; a read that fails
// leaves it uncounted.
func (r *recoverer) observe(ctx context.Context, jid string, filled []string) {
	if _, none := r.obs.(exe.NoObserver); none {
		return
	}
	job, err := r.s.Get(ctx, jid, false)
	if err != nil {
		r.log.Debug("lost-lease recovery: job not counted in metrics", "jid", jid, "error", err)
		return
	}
	for range filled {
		r.obs.HostResult(job.Operate, exe.HostFailed)
	}
	r.obs.JobEnded(job.Operate, exe.JobFailure)
}

// failLapsed fails the jobs whose lapse a look at Redis's time now saw.
func (r *recoverer) failLapsed(ctx context.Context, jids []any, now int64, slow time.Duration) {
	for _, v := range jids {
		jid, _ := v.(string)
		filled, err := r.s.failLapsed(ctx, jid, r.opts.LostMessage, now, slow)
		switch {
		case err == nil:
			r.log.Warn("job failed: the lease of the process running it lapsed", "jid", jid)
			r.observe(ctx, jid, filled)
		case errors.Is(err, exe.ErrNotFound):
			r.rdb.SRem(ctx, r.s.key("started"), jid)
		case errors.Is(err, errStale):
			// Held up on the way: the next look decides.
		case errors.Is(err, errLeased), errors.Is(err, exe.ErrFinished):
		default:
			r.log.Debug("lost-lease recovery", "jid", jid, "error", err)
		}
	}
}
