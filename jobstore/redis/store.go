// Package redis is an exe.JobStore on Redis (go-redis v9), shared by any
// number of API servers and workers, and the exe.Dispatcher that runs
// their jobs across machines (see Dispatcher).
//
// # Use
//
// A store is a go-redis client and a key prefix; the client's pool size
// does not matter to follows, nor to a worker waiting for queued jobs,
// which block on connections of the store's own (Close closes them). Each process builds an exe.Engine on it with a
// Dispatcher of its own, which brings the store to the Engine (it works
// on the store's client and key prefix, so that jobs are queued and run
// where they are kept):
//
//	store := redis.New(rdb, redis.Options{})
//	defer store.Close()
//	// an API server whose jobs other processes run:
//	api, err := exe.NewEngine(exe.Config{Executor: x,
//		Dispatcher: redis.NewDispatcher(store, redis.DispatcherOptions{})})
//	// a worker (exed worker): an Engine that serves no API and runs them:
//	worker, err := exe.NewEngine(exe.Config{Executor: x,
//		Dispatcher: redis.NewDispatcher(store, redis.DispatcherOptions{RunJobs: true})})
//
// An API server with RunJobs runs its jobs itself, under leases, so that
// several such servers share one Redis without workers.
//
// # Keys
//
// Keys, all under Options.Prefix (default "exe:"):
//
//	job:{jid}     hash: req (the job as JSON), state, error, startat,
//	              endat, locks (lock keys held, one per line), worker
//	              (which runs it), lost (its error if that worker's
//	              lease lapses), created, appended and ended (tokens of
//	              the create, of the last append and of the call that
//	              finished the job: an end, an unrun end or the
//	              lost-lease failure, to recognise calls the client
//	              retried), filled
//	              (how many targets that unrun end or failure gave an
//	              event: the last ones before the end marker), cancel
//	              (its cancel was asked while it ran or was queued: read
//	              at take and at each lease renewal)
//	events:{jid}  stream: one entry per event (h = host, e = event JSON),
//	              then an end marker (end = 1) when the job finishes
//	jobs          sorted set: every job by creation order (List)
//	expiry        sorted set: finished jobs by expiry time (ms), to prune
//	              jobs from the list when their keys expire (on List, and
//	              a few on every finish)
//	counter       creation counter (the jobs scores)
//	lock:{host}   the jid of the running deploy or task job holding host
//	              (the key is exe.LockKey(host): localhost for its names);
//	              held past the job's end, expiring with its lease, when
//	              the job was ended without word from its worker (see
//	              FinishUnrun)
//	queue         stream of jids to run, read by the "workers" group; an
//	              entry is deleted when a worker takes its job
//	lease:{jid}   the worker running the job; expires unless renewed
//	started       set of running jobs a worker has started
//	workers       sorted set: every worker by when it was last seen
//	              (Redis ms), for health checks; a day without a sign
//	              forgets it
//	taken:{name}  the jobs a worker took by its last take, for a retry of
//	              that call; expires after the lease time
//	deleted:{jid} the token of the call that deleted the job, for a
//	              retry of it; expires after a minute
//	cancel        pub/sub channel of cancelled jids
//	wake:{id}     stream that interrupts a read that follows share
//	              when a new follow joins it; expires a minute after use
//
// A finished job's keys expire after Options.Retention. Redis restarted
// without persistence loses every job, event, lock and queued job:
// followers and workers see them vanish (not found) and carry on.
//
// A Redis that does not answer for a while (a restart with AOF, a stall,
// a network cut) loses nothing: an exe.Runner keeps a job's events and
// outcome and writes them, each once, when Redis is back; workers keep
// their leases (see recover.go for the rule that decides when a lapsed
// lease means a lost worker); follows wait and read on
// (Options.FollowOutage). A worker that cannot renew a lease for long
// enough that it may lapse stops the job itself first
// (DispatcherOptions.FenceMargin): a host lock is released only once the
// commands of the job that held it were stopped. Redis must keep lease
// keys until they expire: no eviction (maxmemory-policy noeviction).
package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/0ops/exed/exe"
	goredis "github.com/redis/go-redis/v9"
)

// Defaults for Options.
const (
	DefaultPrefix    = "exe:"
	DefaultRetention = 7 * 24 * time.Hour
	// DefaultFollowOutage outlasts a Redis restart or failover.
	DefaultFollowOutage = time.Minute
)

// Options configure a Store. A zero or negative duration takes its
// default.
type Options struct {
	// Prefix starts every key; default DefaultPrefix.
	Prefix string
	// Retention is how long a finished job is kept; default
	// DefaultRetention.
	Retention time.Duration
	// PollInterval bounds each blocking read that follows share, and is
	// how often a follow that saw nothing new checks that its job still
	// exists; default 500ms.
	PollInterval time.Duration
	// FollowOutage is how long a follow waits for Redis to answer again
	// before it ends with exe.ErrUnavailable; default DefaultFollowOutage.
	FollowOutage time.Duration
}

// Store is the Redis exe.JobStore.
type Store struct {
	rdb  goredis.UniversalClient
	opts Options
	// reads is the client of the blocking reads that follows share,
	// with a pool of its own (see New); ownReads when the store opened it.
	reads    goredis.UniversalClient
	ownReads bool
	hubs     hubs // shared follow reads
	// batch sends the calls of concurrent requests and jobs together
	// (see batcher).
	batch batcher
	// id and calls make the tokens that let a script tell a retried
	// call from a new one: unique across stores.
	id    string
	calls atomic.Uint64
}

// token is a new call's token.
func (s *Store) token() string { return s.id + strconv.FormatUint(s.calls.Add(1), 36) }

var (
	_ exe.JobStore       = (*Store)(nil)
	_ exe.AppendFinisher = (*Store)(nil)
	_ exe.AfterFinisher  = (*Store)(nil)
	_ exe.UnrunFinisher  = (*Store)(nil)
)

// followReadConns bounds the connections of a store's own client for the
// reads that follows share: one per read under way, each for up to
// hubStreams followed jobs.
const followReadConns = 4096

// New returns a Store on rdb. It does not close rdb; Close closes what
// the store opened itself.
//
// Follows wait in blocking reads, each holding a connection for up to
// PollInterval, one read for every 256 jobs followed at once, and a
// Dispatcher's worker waits for queued jobs in one more. Those reads
// must not take the connections rdb's other calls need, whatever rdb's
// pool size (go-redis defaults to 10 per CPU): so when rdb is a
// *goredis.Client or a *goredis.ClusterClient, the store opens a client
// of its own for them, with rdb's options and a pool sized for the reads
// (connections are opened as reads need them, and closed when idle). A
// UniversalClient of another kind (a Ring, a wrapper) serves the reads
// too: its pool must have room for them besides its other calls. Hooks
// added to rdb (AddHook) do not see the reads.
//
// Calls made while one of the store's round trips is on its way (job
// creates, reads, appends, finishes) are sent together in its next
// pipeline, so hooks added to rdb see them as pipelines (see batcher).
//
// rdb must not be nil: New panics, as goredis.NewClient does with nil
// options.
func New(rdb goredis.UniversalClient, opts Options) *Store {
	if rdb == nil || reflect.ValueOf(rdb).Kind() == reflect.Pointer && reflect.ValueOf(rdb).IsNil() {
		panic("jobstore/redis: New needs a go-redis client, not nil")
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.Retention <= 0 {
		opts.Retention = DefaultRetention
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 500 * time.Millisecond
	}
	if opts.FollowOutage <= 0 {
		opts.FollowOutage = DefaultFollowOutage
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	reads, own := readsClient(rdb)
	return &Store{rdb: rdb, opts: opts, reads: reads, ownReads: own, id: hex.EncodeToString(b) + ":", batch: batcher{rdb: rdb}}
}

// readsClient returns a client for follows' blocking reads with rdb's
// options and a pool of its own, and true; or rdb and false when it
// cannot copy rdb's options.
//
// The copy gets a push-notification processor of its own: rdb's options
// hold rdb's processor, on which rdb registered its handlers (RESP3
// maintenance notifications), and a second client registering them there
// again fails, which go-redis logs on every New.
func readsClient(rdb goredis.UniversalClient) (goredis.UniversalClient, bool) {
	switch c := rdb.(type) {
	case *goredis.Client:
		o := *c.Options()
		o.PoolSize, o.MinIdleConns, o.MaxIdleConns, o.MaxActiveConns = followReadConns, 0, 4, 0
		o.PipelinePoolSize = -1 // the reads are never pipelined
		o.PushNotificationProcessor = nil
		return goredis.NewClient(&o), true
	case *goredis.ClusterClient:
		o := *c.Options()
		o.PoolSize, o.MinIdleConns, o.MaxIdleConns, o.MaxActiveConns = followReadConns, 0, 4, 0
		o.PushNotificationProcessor = nil
		if o.MaintNotificationsConfig != nil { // NewClusterClient does not copy it
			m := *o.MaintNotificationsConfig
			o.MaintNotificationsConfig = &m
		}
		return goredis.NewClusterClient(&o), true
	}
	return rdb, false
}

// key is the key of parts under the prefix, joined by ":"; one
// allocation for the usual one or two parts.
func (s *Store) key(parts ...string) string {
	switch len(parts) {
	case 1:
		return s.opts.Prefix + parts[0]
	case 2:
		return s.opts.Prefix + parts[0] + ":" + parts[1]
	}
	return s.opts.Prefix + strings.Join(parts, ":")
}
func (s *Store) jobKey(jid string) string { return s.key("job", jid) }
func (s *Store) eventsKey(jid string) string {
	return s.key("events", jid)
}
func (s *Store) leaseKey(jid string) string { return s.key("lease", jid) }

// unavailable reports a Redis failure as exe.ErrUnavailable, so the API
// answers 503 with a message rather than an internal error. Its public
// text says what kind of failure it was; the error itself (an address, a
// server's reply) is kept as the cause, for the log.
func unavailable(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var reply goredis.Error
	if errors.As(err, &reply) {
		// Redis's own refusal (LOADING, OOM, READONLY, ...): its code
		// word says why and names nothing internal.
		code, _, _ := strings.Cut(reply.Error(), " ")
		return exe.WithCause(exe.ErrUnavailable, err, "job store: redis refused the command (%s)", code)
	}
	return exe.WithCause(exe.ErrUnavailable, err, "job store: redis is not reachable")
}

// Create implements exe.JobStore.
func (s *Store) Create(ctx context.Context, job *exe.Job) error {
	return s.create(ctx, job, "")
}

func (s *Store) create(ctx context.Context, job *exe.Job, queue string) error {
	// The method's bytes are json.Marshal's, which would only check and
	// copy them (compact, HTML escaped) once more: 5% of a submit's CPU.
	b, err := job.MarshalJSON()
	if err != nil {
		return err
	}
	mutex := "0"
	if job.Operate.Mutex() {
		mutex = "1"
	}
	args := []any{job.JID, b, job.StartAt, s.key("lock") + ":", mutex, s.token()}
	// The job locks each target's key once (two targets may share one:
	// exe.LockKey), and its hash keeps the keys it holds.
	keyed := make(map[string]bool, len(job.Targets))
	for _, t := range job.Targets {
		if k := exe.LockKey(t); !keyed[k] {
			keyed[k] = true
			args = append(args, k)
		}
	}
	keys := []string{s.jobKey(job.JID), s.key("jobs"), s.key("counter"), queue}
	res, err := s.script(ctx, createScript, keys, args).StringSlice()
	if err != nil {
		return unavailable(ctx, err)
	}
	switch res[0] {
	case "exists":
		return fmt.Errorf("job %s already exists", job.JID)
	case "conflict":
		// The key held: the error names the target this job gave it.
		host := res[1]
		for _, t := range job.Targets {
			if exe.LockKey(t) == host {
				host = t
				break
			}
		}
		ce := &exe.ConflictError{Host: host, JID: res[2]}
		if len(res) > 3 {
			if ms, err := strconv.ParseInt(res[3], 10, 64); err == nil && ms > 0 {
				ce.Held = time.Duration(ms) * time.Millisecond
			}
		}
		return ce
	}
	return nil
}

// decodeJob builds a job from its hash.
func decodeJob(jid string, h map[string]string) (*exe.Job, error) {
	job := &exe.Job{}
	// The stored job was written by json.Marshal: its own decoder, without
	// json.Unmarshal's first pass that checks the whole text.
	if err := job.UnmarshalJSON([]byte(h["req"])); err != nil {
		return nil, fmt.Errorf("job %s: stored job: %w", jid, err)
	}
	state, _ := strconv.Atoi(h["state"])
	job.State = exe.JobState(state)
	job.Error = h["error"]
	job.StartAt, _ = strconv.ParseInt(h["startat"], 10, 64)
	job.EndAt, _ = strconv.ParseInt(h["endat"], 10, 64)
	job.ReturnData = nil
	return job, nil
}

// jobFrom is the job read by an HGETALL of its hash.
func jobFrom(ctx context.Context, jid string, hash *goredis.MapStringStringCmd) (*exe.Job, error) {
	if err := hash.Err(); err != nil {
		return nil, unavailable(ctx, err)
	}
	if len(hash.Val()) == 0 {
		return nil, exe.ErrNotFound
	}
	return decodeJob(jid, hash.Val())
}

// Get implements exe.JobStore.
func (s *Store) Get(ctx context.Context, jid string, outputs bool) (*exe.Job, error) {
	var hash *goredis.MapStringStringCmd
	var events *goredis.XMessageSliceCmd
	var err error
	if outputs {
		// One snapshot of the job and its events.
		_, err = s.rdb.TxPipelined(ctx, func(p goredis.Pipeliner) error {
			hash = p.HGetAll(ctx, s.jobKey(jid))
			events = p.XRange(ctx, s.eventsKey(jid), "-", "+")
			return nil
		})
	} else {
		if err = s.batch.do(ctx, func(ctx context.Context, p goredis.Pipeliner) {
			hash = p.HGetAll(ctx, s.jobKey(jid))
		}); err == nil {
			err = hash.Err()
		}
	}
	if err != nil {
		return nil, unavailable(ctx, err)
	}
	job, err := jobFrom(ctx, jid, hash)
	if err != nil {
		return nil, err
	}
	if outputs {
		job.ReturnData = map[string][]exe.Event{}
		var seq int64
		for _, m := range events.Val() {
			ev, ok, err := decodeEvent(m, &seq)
			if err != nil {
				return nil, err
			}
			if ok {
				job.ReturnData[ev.Host] = append(job.ReturnData[ev.Host], ev)
			}
		}
	}
	return job, nil
}

// decodeEvent reads one stream entry; ok is false for the end marker.
func decodeEvent(m goredis.XMessage, seq *int64) (exe.Event, bool, error) {
	var ev exe.Event
	switch d := m.Values[decodedField].(type) {
	case exe.Event:
		ev = d
	case error:
		return ev, false, d
	default:
		e, isEvent := m.Values["e"].(string)
		if !isEvent {
			return exe.Event{}, false, nil
		}
		if err := json.Unmarshal([]byte(e), &ev); err != nil {
			return ev, false, fmt.Errorf("stored event %s: %w", m.ID, err)
		}
		ev.Host, _ = m.Values["h"].(string)
	}
	*seq++
	ev.Seq = *seq
	return ev, true, nil
}

// decodedField is where predecode keeps an entry's decoded event (or the
// error decoding it) among the entry's fields as read: a name no stored
// field has.
const decodedField = "\x00event"

// predecode decodes the events of entries that a hub hands to all its
// follows, once for all of them rather than once by each (1,000 follows of
// a job decoded each event 1,000 times); they share the event, which
// none modifies. It runs before the entries are handed on.
func predecode(msgs []goredis.XMessage) {
	for _, m := range msgs {
		e, isEvent := m.Values["e"].(string)
		if !isEvent {
			continue
		}
		var ev exe.Event
		if err := json.Unmarshal([]byte(e), &ev); err != nil {
			m.Values[decodedField] = fmt.Errorf("stored event %s: %w", m.ID, err)
			continue
		}
		ev.Host, _ = m.Values["h"].(string)
		m.Values[decodedField] = ev
	}
}

// List implements exe.JobStore: newest first, expired jobs pruned.
func (s *Store) List(ctx context.Context) ([]string, error) {
	if err := pruneScript.Run(ctx, s.rdb, []string{s.key("jobs"), s.key("expiry")}).Err(); err != nil {
		return nil, unavailable(ctx, err)
	}
	ids, err := s.rdb.ZRevRange(ctx, s.key("jobs"), 0, -1).Result()
	if err != nil {
		return nil, unavailable(ctx, err)
	}
	return ids, nil
}

// Append implements exe.JobStore: one script call for all events, so a
// batch costs one round trip. Events numbered by their writer (Seq set,
// consecutive from the first) are positions: those the stream already
// holds are skipped, so a batch sent again after a failure whose outcome
// was unknown is stored once.
func (s *Store) Append(ctx context.Context, jid string, events ...exe.Event) error {
	if len(events) == 0 {
		return nil
	}
	args := make([]any, 0, 2+2*len(events))
	args = append(args, s.token(), base(events))
	args, err := eventArgs(args, events)
	if err != nil {
		return err
	}
	res, err := s.script(ctx, appendScript, []string{s.jobKey(jid), s.eventsKey(jid)}, args).Text()
	if err != nil {
		return unavailable(ctx, err)
	}
	return statusErr(res)
}

// base is the number of events a job had before the first of events
// when their writer numbered them (Seq set, consecutive from the first),
// else -1.
func base(events []exe.Event) int64 {
	if seq := events[0].Seq; seq > 0 && events[len(events)-1].Seq == seq+int64(len(events))-1 {
		return seq - 1
	}
	return -1
}

// eventArgs appends each event's host and JSON to args.
func eventArgs(args []any, events []exe.Event) ([]any, error) {
	for _, ev := range events {
		// What is stored is read back as text. JSON would mend invalid
		// bytes itself, but the host is a stream field outside it.
		ev = ev.ToValidUTF8()
		b, err := ev.MarshalJSON() // json.Marshal's bytes, not checked again
		if err != nil {
			return nil, err
		}
		args = append(args, ev.Host, b)
	}
	return args, nil
}

func statusErr(res string) error {
	switch res {
	case "notfound":
		return exe.ErrNotFound
	case "finished":
		return exe.ErrFinished
	case "running":
		return exe.ErrRunning
	}
	return nil
}

// Finish implements exe.JobStore. The call go-redis sends again after
// its reply was lost finds the job ended by itself: nil, not
// exe.ErrFinished (its token).
func (s *Store) Finish(ctx context.Context, jid string, state exe.JobState, msg string) error {
	res, err := s.script(ctx, finishScript, s.finishKeys(jid),
		[]any{int(state), exe.ToValidUTF8(msg), time.Now().Unix(), s.opts.Retention.Milliseconds(), s.key("lock") + ":", jid, "", 0, 0, "", s.token()}).Text()
	if err != nil {
		return unavailable(ctx, err)
	}
	return statusErr(res)
}

// AppendFinish implements exe.AppendFinisher: one script call stores the
// events and ends the job. Events its writer did not number are stored
// by Append, then the job is finished: two calls. The same call made
// again by this store (the same events: the Runner's retry after a reply
// was lost) finds the job ended by it: nil, not exe.ErrFinished. One
// Runner runs a job in a process. Its token, the store's id, "#" and the
// last event's Seq, is never one of token()'s, which have no "#".
func (s *Store) AppendFinish(ctx context.Context, jid string, state exe.JobState, msg string, events ...exe.Event) error {
	if len(events) == 0 {
		return s.Finish(ctx, jid, state, msg)
	}
	b := base(events)
	if b < 0 {
		if err := s.Append(ctx, jid, events...); err != nil {
			return err
		}
		return s.Finish(ctx, jid, state, msg)
	}
	return s.appendFinish(ctx, jid, state, msg, b, events[len(events)-1].Seq, events)
}

// appendFinish runs appendFinishScript: events (base events before the
// first) then the end, with the token of the store's id, "#" and the Seq
// of the last event the job has with them (last).
func (s *Store) appendFinish(ctx context.Context, jid string, state exe.JobState, msg string, base, last int64, events []exe.Event) error {
	args := make([]any, 0, 8+2*len(events))
	args = append(args, int(state), exe.ToValidUTF8(msg), time.Now().Unix(), s.opts.Retention.Milliseconds(), s.key("lock")+":", jid, base, s.id+"#"+strconv.FormatInt(last, 10))
	args, err := eventArgs(args, events)
	if err != nil {
		return err
	}
	res, err := s.script(ctx, appendFinishScript, s.finishKeys(jid), args).Text()
	if err != nil {
		return unavailable(ctx, err)
	}
	return statusErr(res)
}

// FinishAfter implements exe.AfterFinisher: appendFinishScript with no
// events, whose token, as AppendFinish's, is the store's id, "#" and seq.
func (s *Store) FinishAfter(ctx context.Context, jid string, state exe.JobState, msg string, seq int64) error {
	if seq < 1 {
		return fmt.Errorf("finish job %s after event %d: events are numbered from 1", jid, seq)
	}
	return s.appendFinish(ctx, jid, state, msg, seq, seq, nil)
}

// FinishUnrun implements exe.UnrunFinisher, in one script (finishScript
// with "fill"), whatever the job's lease says. The event's JSON holds
// neither its Host nor its Seq: the script sets the host of each one,
// and answers the targets it gave one. Its token makes a call the client
// sends again after a lost reply get the same answer.
//
// A fill that is not SKIPPED says a command may still run (Engine.Cancel
// gave up waiting for a worker that started the job: cut off, or slow).
// Then, while the job's lease is live, its locks are not released: they
// expire when the lease would have lapsed, by which time the worker has
// stopped the job itself (DispatcherOptions.FenceMargin). Until then a
// mutex job on those hosts is refused with an exe.ConflictError whose
// Held says how long is left. A SKIPPED fill (nothing ran) releases them.
func (s *Store) FinishUnrun(ctx context.Context, jid, msg string, fill exe.Event) ([]string, error) {
	b, err := fill.ToValidUTF8().MarshalJSON()
	if err != nil {
		return nil, err
	}
	hold := ""
	if fill.Status != exe.HostSkipped {
		hold = "hold"
	}
	res, err := s.script(ctx, finishScript, s.finishKeys(jid),
		[]any{int(exe.JobFailure), exe.ToValidUTF8(msg), time.Now().Unix(), s.opts.Retention.Milliseconds(), s.key("lock") + ":", jid, "fill", 0, 0, b, s.token(), hold}).Result()
	if err != nil {
		return nil, unavailable(ctx, err)
	}
	return filledReply(res)
}

// filledReply reads finishScript's answer to a call that fills: {'ok',
// host, ...}, or a status that says why nothing was stored.
func filledReply(res any) ([]string, error) {
	switch r := res.(type) {
	case string:
		if err := statusErr(r); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("finish: unexpected answer %q", r)
	case []any:
		if len(r) > 0 && r[0] == "ok" {
			filled := make([]string, 0, len(r)-1)
			for _, h := range r[1:] {
				hs, ok := h.(string)
				if !ok {
					return nil, fmt.Errorf("finish: unexpected host %v", h)
				}
				filled = append(filled, hs)
			}
			return filled, nil
		}
	}
	return nil, fmt.Errorf("finish: unexpected answer %v", res)
}

// script runs one of batchedScripts through the store's batcher; the
// error of a call given up before it was sent (ctx) is the command's.
func (s *Store) script(ctx context.Context, script *goredis.Script, keys []string, args []any) *goredis.Cmd {
	var cmd *goredis.Cmd
	if err := s.batch.do(ctx, func(ctx context.Context, p goredis.Pipeliner) {
		cmd = script.EvalSha(ctx, p, keys, args...)
	}); err != nil {
		cmd = goredis.NewCmd(ctx)
		cmd.SetErr(err)
	}
	return cmd
}

func (s *Store) finishKeys(jid string) []string {
	return []string{s.jobKey(jid), s.eventsKey(jid), s.key("expiry"), s.key("started"), s.leaseKey(jid), s.key("jobs")}
}

// lostHostSuffix ends the msg of the FAILED event a job failed as lost gives
// each target that has no event: "worker lost: the remote command may still
// be running".
const lostHostSuffix = ": the remote command may still be running"

// failLapsed fails a job as lost (with the message its holder left, or
// msg) if its lease has still lapsed and Redis runs this within maxAge of
// checkedAt, the Redis time (ms) at which the lapse was seen: errLeased or
// errStale otherwise. Each target without an event gets a FAILED one
// saying its command may still run, in the same step: filled is those
// targets. Its token makes a call the client sends again after a lost
// reply get the same answer.
func (s *Store) failLapsed(ctx context.Context, jid, msg string, checkedAt int64, maxAge time.Duration) (filled []string, _ error) {
	res, err := finishScript.Run(ctx, s.rdb, s.finishKeys(jid),
		int(exe.JobFailure), exe.ToValidUTF8(msg), time.Now().Unix(), s.opts.Retention.Milliseconds(), s.key("lock")+":", jid,
		"guard", checkedAt, maxAge.Milliseconds(), int(exe.HostFailed), s.token(), lostHostSuffix).Result()
	if err != nil {
		return nil, unavailable(ctx, err)
	}
	switch res {
	case "leased":
		return nil, errLeased
	case "stale":
		return nil, errStale
	}
	return filledReply(res)
}

var (
	// errLeased: the job's holder still holds its lease.
	errLeased = errors.New("job is leased")
	// errStale: the call reached Redis too late to act on what was seen.
	errStale = errors.New("lapse seen too long ago")
)

// Delete implements exe.JobStore. The call go-redis sends again after
// its reply was lost finds the job deleted by itself: nil, not
// exe.ErrNotFound (its token, kept for a minute).
func (s *Store) Delete(ctx context.Context, jid string) error {
	res, err := deleteScript.Run(ctx, s.rdb,
		[]string{s.jobKey(jid), s.eventsKey(jid), s.key("jobs"), s.key("expiry"), s.key("deleted:" + jid)}, jid, s.token()).Text()
	if err != nil {
		return unavailable(ctx, err)
	}
	return statusErr(res)
}

// Follow implements exe.JobStore. It reads the job and the events already
// stored, then waits for the others on a hub shared with other follows
// (see follow.go); entries are handed on by stream id, so there is no gap and
// no duplicate between the stored events and the live ones. A follow from
// the n-th event first finds that event's entry in Redis (skipScript), so
// the events before it are neither read nor decoded here. While Redis
// does not answer, it waits and reads on from the last entry handed to fn
// once Redis is back, for up to Options.FollowOutage; a longer outage ends
// it with exe.ErrUnavailable.
func (s *Store) Follow(ctx context.Context, jid string, from int64, fn func(exe.Event) error) (*exe.Job, error) {
	return s.FollowBatches(ctx, jid, from, func(batch []exe.Event) error {
		for _, ev := range batch {
			if err := fn(ev); err != nil {
				return err
			}
		}
		return nil
	})
}

// FollowBatches implements exe.BatchFollower: a batch is the events of one
// read from Redis (a page of the backlog, or what the hub read for its
// follows at once).
func (s *Store) FollowBatches(ctx context.Context, jid string, from int64, fn func([]exe.Event) error) (*exe.Job, error) {
	key := s.eventsKey(jid)
	out := outage{max: s.opts.FollowOutage}
	f := follow{s: s, jid: jid, key: key, fn: fn, from: from}
	for f.seq < from {
		walk := min(from-f.seq, skipBatch)
		res, err := skipScript.Run(ctx, s.rdb, []string{key}, f.last.String(), walk).Slice()
		if err != nil {
			if err = unavailable(ctx, err); !out.wait(ctx, err) {
				return nil, err
			}
			continue
		}
		out.over()
		id, _ := res[0].(string)
		n, _ := res[1].(int64)
		f.last, f.seq = parseID(id), f.seq+n
		if n < walk {
			break // the events up to from are still to come: deliver skips them
		}
	}
	// readOn reads the entries after the last one handed to fn (or
	// skipped).
	readOn := func() ([]goredis.XMessage, error) {
		msgs, err := s.rdb.XRangeN(ctx, key, "("+f.last.String(), "+", pageSize).Result()
		return msgs, unavailable(ctx, err)
	}
	var msgs []goredis.XMessage
	for {
		var hash *goredis.MapStringStringCmd
		var page *goredis.XMessageSliceCmd
		err := s.batch.do(ctx, func(ctx context.Context, p goredis.Pipeliner) {
			hash = p.HGetAll(ctx, s.jobKey(jid))
			page = p.XRangeN(ctx, key, "("+f.last.String(), "+", pageSize)
		})
		if err != nil {
			return nil, err
		}
		if f.job, err = jobFrom(ctx, jid, hash); err == nil {
			msgs, err = page.Result()
			err = unavailable(ctx, err)
		}
		if err == nil {
			break
		}
		if !out.wait(ctx, err) {
			return nil, err
		}
	}
	var err error
	for {
		if err != nil {
			if !out.wait(ctx, err) {
				return nil, err
			}
			msgs, err = readOn()
			continue
		}
		out.over()
		done, derr := f.deliver(msgs)
		if derr != nil || done {
			return f.result(done, derr)
		}
		if len(msgs) == pageSize {
			msgs, err = readOn() // more of the backlog
			continue
		}
		// Caught up: wait on a hub for the rest.
		done, err = f.wait(ctx)
		if done || (err != nil && !errors.Is(err, exe.ErrUnavailable)) {
			return f.result(done, err)
		}
		if err == nil {
			// Dropped by the hub for reading too slowly: read on from
			// the last entry handed to fn.
			msgs, err = readOn()
		}
	}
}

// skipBatch bounds the events one skipScript call walks over, so a call
// holds Redis for a bounded time.
var skipBatch int64 = 2000 // a variable for tests

// outage tracks a follow's wait for Redis to answer again.
type outage struct {
	max      time.Duration
	since    time.Time // zero: Redis answers
	failures int
}

// wait sleeps before the next try after err, and reports whether to try
// again: only for an unavailable Redis, for up to max in all.
func (o *outage) wait(ctx context.Context, err error) bool {
	if !errors.Is(err, exe.ErrUnavailable) || ctx.Err() != nil {
		return false
	}
	if o.since.IsZero() {
		o.since = time.Now()
	}
	if time.Since(o.since) > o.max {
		return false
	}
	d := min(50*time.Millisecond<<min(o.failures, 5), time.Second)
	o.failures++
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// over notes that Redis answered.
func (o *outage) over() { o.since, o.failures = time.Time{}, 0 }

// follow is one Follow call's position.
type follow struct {
	s        *Store
	jid, key string
	job      *exe.Job
	fn       func([]exe.Event) error
	batch    []exe.Event // reused between calls of fn
	last     streamID    // the last entry handed on or skipped
	seq      int64       // the Seq of that entry's event
	from     int64       // events up to this Seq are skipped
}

func (f *follow) result(done bool, err error) (*exe.Job, error) {
	if err != nil {
		return nil, err
	}
	return f.job, nil
}

// deliver hands entries to fn in order; done is true at the end marker,
// which holds the job's outcome.
func (f *follow) deliver(msgs []goredis.XMessage) (done bool, err error) {
	f.batch = f.batch[:0]
	for _, m := range msgs {
		if _, isEvent := m.Values["e"]; isEvent && f.seq < f.from {
			f.last = parseID(m.ID)
			f.seq++ // skipped, undecoded
			continue
		}
		seq := f.seq
		ev, ok, err := decodeEvent(m, &seq)
		if err != nil {
			return false, errors.Join(err, f.flush())
		}
		if !ok {
			if err := f.flush(); err != nil {
				return false, err
			}
			f.last = parseID(m.ID)
			state, _ := strconv.Atoi(fmt.Sprint(m.Values["state"]))
			f.job.State, f.job.Error = exe.JobState(state), fmt.Sprint(m.Values["error"])
			f.job.EndAt, _ = strconv.ParseInt(fmt.Sprint(m.Values["endat"]), 10, 64)
			return true, nil
		}
		f.batch = append(f.batch, ev)
		f.last, f.seq = parseID(m.ID), seq
	}
	return false, f.flush()
}

// flush hands the decoded events to fn. f.last and f.seq already name the
// last of them: a follow that fails here ends, so none is read again.
func (f *follow) flush() error {
	if len(f.batch) == 0 {
		return nil
	}
	err := f.fn(f.batch)
	clear(f.batch) // let the events' output go
	f.batch = f.batch[:0]
	return err
}

// wait takes entries from a hub until the end marker, an error, or the hub
// dropping the follow (done and err both unset).
func (f *follow) wait(ctx context.Context) (done bool, err error) {
	h, hf := f.s.hubs.join(f.s, f.key, f.last)
	defer h.leave(hf)
	quiet := time.NewTimer(f.s.opts.PollInterval)
	defer quiet.Stop()
	for {
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-hf.ready:
			msgs, readErr, dropped := hf.take()
			if done, err := f.deliver(msgs); err != nil || done {
				return done, err
			}
			if readErr != nil {
				return false, unavailable(ctx, readErr)
			}
			if dropped {
				return false, nil
			}
		case <-quiet.C:
			// Nothing new for a while: the job may have expired, been
			// deleted, or been lost with Redis's data.
			n, err := f.s.rdb.Exists(ctx, f.s.jobKey(f.jid)).Result()
			if err != nil {
				return false, unavailable(ctx, err)
			}
			if n == 0 {
				return false, exe.ErrNotFound
			}
		}
		quiet.Reset(f.s.opts.PollInterval)
	}
}

// Health implements exe.HealthChecker.
func (s *Store) Health(ctx context.Context) error {
	return unavailable(ctx, s.rdb.Ping(ctx).Err())
}

// Close implements exe.JobStore: it closes the client the store opened
// for follows (see New); the caller closes its own.
func (s *Store) Close() error {
	if !s.ownReads {
		return nil
	}
	return s.reads.Close()
}
