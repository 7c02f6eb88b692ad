package redis

import (
	"context"
	"errors"
	"time"

	"github.com/0ops/exed/exe"
	"github.com/hashicorp/go-hclog"
	goredis "github.com/redis/go-redis/v9"
)

// RecovererOptions configure a Recoverer.
type RecovererOptions struct {
	// Lease is the lease of the workers whose jobs it recovers; default
	// DefaultLease.
	Lease time.Duration
	// Every is how often it looks for lapsed leases; default (and at
	// most) Lease/4.
	Every time.Duration
	// Worker, when set, is a worker's name that each look notes as seen
	// (Dispatcher.Health reads it). Empty for a process that takes no
	// jobs.
	Worker string
	// LostMessage is the error of a recovered job whose holder left none;
	// default "worker lost".
	LostMessage string
	Logger      hclog.Logger
}

// Recoverer fails the running jobs whose holder's lease lapsed (the
// holder died, or lost Redis for longer than a lease) with the message
// the holder left ("worker lost", "server lost"), which releases their
// locks. Every Worker runs one; so should every process that serves the
// API over a Redis store, so that jobs do not stay Running while no
// worker is alive. Any number may run at once: a job is failed once.
//
// Leases lapse by Redis's clock, and an outage of Redis stops every
// holder's renewals at once: when Redis answers again, leases that would
// have been renewed have lapsed, although their holders are alive and
// retrying (see Worker: they take a lapsed lease of a job still theirs
// again). So a Recoverer fails a lapsed lease only after it has itself
// been in touch with Redis without a break for a whole lease: a look
// every Every, none failing, none slower than Every/2, none more than
// 2*Every after the last. An outage long enough to make a lease lapse
// (two thirds of a lease or more, since holders renew every third)
// breaks that touch for every Recoverer it reaches, and its holders get a
// whole lease after it to renew. A holder cut off alone (a partition, a
// stopped process) is failed within about Lease plus Every of its last
// renewal. The failing call also checks, in Redis, that it runs within
// Every/2 of the look that saw the lapse, so a call held up by an outage
// decides nothing. A Recoverer that starts (a restarted server) fails
// nothing during its first lease.
type Recoverer struct {
	rdb  goredis.UniversalClient
	s    *Store
	opts RecovererOptions
	log  hclog.Logger
}

// NewRecoverer returns a Recoverer of s's jobs.
func NewRecoverer(rdb goredis.UniversalClient, s *Store, opts RecovererOptions) *Recoverer {
	if opts.Lease <= 0 {
		opts.Lease = DefaultLease
	}
	if opts.Every <= 0 || opts.Every > opts.Lease/4 {
		opts.Every = opts.Lease / 4
	}
	if opts.LostMessage == "" {
		opts.LostMessage = exe.ErrWorkerLost.Error()
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	return &Recoverer{rdb: rdb, s: s, opts: opts, log: opts.Logger}
}

// Run looks for lapsed leases every Every until ctx ends.
func (r *Recoverer) Run(ctx context.Context) {
	slow := r.opts.Every / 2
	var lastOK, since time.Time // the last look in time; the start of the touch
	failing := false
	t := time.NewTicker(r.opts.Every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		res, err := lapsedScript.Run(ctx, r.rdb, []string{r.s.key("started"), r.s.key("workers")}, r.s.opts.Prefix, r.opts.Worker).Slice()
		end := time.Now()
		if err != nil {
			if ctx.Err() == nil && !failing {
				r.log.Warn("lost-lease recovery: redis unavailable; retrying", "error", err)
			}
			failing, lastOK = true, time.Time{}
			continue
		}
		if lastOK.IsZero() || end.Sub(start) > slow || end.Sub(lastOK) > 2*r.opts.Every {
			if !since.IsZero() {
				r.log.Info("lost-lease recovery: out of touch with redis for a while; failing lapsed leases again after a lease", "lease", r.opts.Lease)
			}
			since = end
		}
		failing, lastOK = false, end
		if end.Sub(since) < r.opts.Lease || len(res) < 2 {
			continue
		}
		now, _ := res[0].(int64)
		for _, v := range res[1:] {
			jid, _ := v.(string)
			err := r.s.failLapsed(ctx, jid, r.opts.LostMessage, now, slow)
			switch {
			case err == nil:
				r.log.Warn("job failed: the lease of the process running it lapsed", "jid", jid)
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
}
