package redis

import goredis "github.com/redis/go-redis/v9"

// The store's multi-key transitions, each one atomic in Redis. Lock keys are
// built inside the scripts from the prefix, so the store needs a single
// Redis (or a primary with replicas), not a Redis Cluster.

// createScript stores a new Running job; for mutex operations it first
// checks that no target is locked, then locks them all. With a queue key,
// it also queues the job for the workers, in the same step. Each call
// carries a token, kept in the job: the same token again is the call
// retried by the client after its reply was lost, which took effect.
// A conflict answers the lock key, its holder and its PTTL: -1 while the
// holder runs, the ms it is still held after the holder was ended
// without word from its worker (finishScript's "hold").
// KEYS: job, jobs (zset), counter, queue or "". ARGV: jid, job JSON,
// startat, lock prefix, mutex ("1"/"0"), token, the targets' lock keys
// (exe.LockKey, each once)...
var createScript = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then
	if redis.call('HGET', KEYS[1], 'created') == ARGV[6] then return {'ok'} end
	return {'exists'}
end
local locks = ''
if ARGV[5] == '1' then
	for i = 7, #ARGV do
		local holder = redis.call('GET', ARGV[4] .. ARGV[i])
		if holder then return {'conflict', ARGV[i], holder, tostring(redis.call('PTTL', ARGV[4] .. ARGV[i]))} end
	end
	for i = 7, #ARGV do
		redis.call('SET', ARGV[4] .. ARGV[i], ARGV[1])
		locks = locks .. ARGV[i] .. '\n'
	end
end
redis.call('HSET', KEYS[1], 'req', ARGV[2], 'state', '1', 'error', '', 'startat', ARGV[3], 'endat', '0', 'locks', locks, 'created', ARGV[6])
local n = redis.call('INCR', KEYS[3])
redis.call('ZADD', KEYS[2], n, ARGV[1])
if KEYS[4] ~= '' then redis.call('XADD', KEYS[4], '*', 'jid', ARGV[1]) end
return {'ok'}
`)

// appendScript adds events to a Running job's stream, in order. A call
// with a base (the number of events the job had before the first one, as
// its writer numbers them) skips the events the stream already holds: the
// call retried after its reply was lost, or after a timeout that Redis
// outlived, stores each event once. A call without one (base -1) carries
// a token instead, kept as the job's last append: the same token again is
// the call retried by the client, and adds nothing.
// KEYS: job, events. ARGV: token, base or -1, host, event JSON, host,
// event JSON, ...
var appendScript = goredis.NewScript(`
local st = redis.call('HGET', KEYS[1], 'state')
if not st then return 'notfound' end
if st ~= '1' then return 'finished' end
local first = 3
if ARGV[2] == '-1' then
	if redis.call('HGET', KEYS[1], 'appended') == ARGV[1] then return 'ok' end
	redis.call('HSET', KEYS[1], 'appended', ARGV[1])
else
	local have = redis.call('XLEN', KEYS[2]) - tonumber(ARGV[2])
	if have > 0 then first = first + 2 * have end
end
for i = first, #ARGV, 2 do
	redis.call('XADD', KEYS[2], '*', 'h', ARGV[i], 'e', ARGV[i + 1])
end
return 'ok'
`)

// finishScript ends a Running job: outcome, end time, locks released, an
// end marker on its stream (followers stop there), and every key of the job
// set to expire after the retention period. Guarded, it is the lost-lease
// recovery: it finishes the job only if its lease has lapsed, and only if
// Redis runs it within max age ms of the Redis time at which the caller
// saw the lease lapsed (a call held up by an outage decides nothing), and
// with the message its holder left in the job's "lost" field, if any.
// A job failed so gets, in the same step, an event for each of its targets
// that has none: status ARGV[10] (FAILED) and msg "<lost message>" +
// ARGV[12] (": the remote command may still be running"), since nobody
// knows how far its holder got on those hosts. Hosts that have events keep
// them as they are.
// With "fill" instead of "guard" (a job no worker will finish, ended by
// whoever asks: FinishUnrun), each target that has no event gets the
// event JSON ARGV[10] in the same step, whatever the lease. With "fill"
// and ARGV[12] "hold" (the filler says a command may still run: a worker
// started the job and did not report how it ended), a lease still live
// keeps the job's locks: each is set to expire when the lease would
// lapse, by which time its holder, even one cut off from Redis, has
// stopped the job's commands (see DispatcherOptions.FenceMargin).
// Guarded or with "fill", it answers {'ok', host, ...}: the targets it
// gave an event, in the job's target order, so that its caller reports
// what was stored rather than what it read before; their number is kept
// as the job's "filled". ARGV[11], the caller's token, is kept as the
// job's "ended": the same token again, on a finished job, is the call
// retried after its reply was lost, which took effect, and gets the same
// answer: 'ok', or, guarded or with "fill", the targets read back from
// the entries before the end marker (the filled events are the last ones
// this call added before it).
// The end marker carries the outcome, so a follower needs no further read.
// KEYS: job, events, expiry (zset), started (set), lease, jobs (zset).
// ARGV: state, msg, endat, retention ms, lock prefix, jid, "guard" to
// finish only if the lease lapsed, "fill", or an empty string; checked at
// (Redis ms) and max age ms (guard); host event status (guard) or event
// JSON (fill); token; host event msg suffix (guard) or "hold" (fill).
var finishScript = goredis.NewScript(`
local f = redis.call('HMGET', KEYS[1], 'state', 'locks', 'ended', 'filled')
local st, locks = f[1], f[2]
local filling = ARGV[7] == 'fill' or ARGV[7] == 'guard'
if not st then return 'notfound' end
if st ~= '1' then
	if ARGV[11] and ARGV[11] ~= '' and f[3] == ARGV[11] then
		if not filling then return 'ok' end
		local n = tonumber(f[4]) or 0
		local reply = {'ok'}
		if n > 0 then
			-- Newest first: the end marker, then the n events filled.
			local tail = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', n + 1)
			for i = #tail, 2, -1 do
				local e = tail[i][2]
				for j = 1, #e, 2 do
					if e[j] == 'h' then table.insert(reply, e[j + 1]) end
				end
			end
		end
		return reply
	end
	return 'finished'
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local msg, ended, fill, hold = ARGV[2], ARGV[11] or '', nil, 0
if ARGV[7] == 'guard' then
	if redis.call('EXISTS', KEYS[5]) == 1 then return 'leased' end
	if now - tonumber(ARGV[8]) > tonumber(ARGV[9]) then return 'stale' end
	msg = redis.call('HGET', KEYS[1], 'lost') or msg
	fill = cjson.encode({status = tonumber(ARGV[10]), msg = msg .. ARGV[12]})
elseif ARGV[7] == 'fill' then
	fill = ARGV[10]
	if ARGV[12] == 'hold' then hold = redis.call('PTTL', KEYS[5]) end
end
local reply = 'ok'
if fill then
	reply = {'ok'}
	local ok, req = pcall(cjson.decode, redis.call('HGET', KEYS[1], 'req') or '')
	if ok and type(req) == 'table' and type(req.targets) == 'table' then
		local seen = {}
		for _, e in ipairs(redis.call('XRANGE', KEYS[2], '-', '+')) do
			for i = 1, #e[2], 2 do
				if e[2][i] == 'h' then seen[e[2][i + 1]] = true end
			end
		end
		for _, h in ipairs(req.targets) do
			if type(h) == 'string' and not seen[h] then
				seen[h] = true
				redis.call('XADD', KEYS[2], '*', 'h', h, 'e', fill)
				table.insert(reply, h)
			end
		end
	end
	redis.call('HSET', KEYS[1], 'filled', #reply - 1)
end
` + finishTail)

// finishTail is the end of finishScript and appendFinishScript: it
// finishes the Running job (checked by the caller) with state ARGV[1],
// message msg and end time ARGV[3], and the caller's token ended,
// releases its locks (the job's locks field, read by the caller with its
// state in one HMGET; prefix ARGV[5], held by jid ARGV[6]), or, when
// hold is more than 0 ms, sets them to expire then, marks the end
// of its stream, drops its lease and started mark, sets its keys to
// expire after ARGV[4] ms from now, and answers the caller's reply.
// KEYS as finishScript's.
const finishTail = `
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'error', msg, 'endat', ARGV[3], 'ended', ended)
if locks then
	for h in string.gmatch(locks, '[^\n]+') do
		local k = ARGV[5] .. h
		if redis.call('GET', k) == ARGV[6] then
			if hold > 0 then redis.call('PEXPIRE', k, hold) else redis.call('DEL', k) end
		end
	end
end
redis.call('XADD', KEYS[2], '*', 'end', '1', 'state', ARGV[1], 'error', msg, 'endat', ARGV[3])
redis.call('DEL', KEYS[5])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[4]), ARGV[6])
redis.call('SREM', KEYS[4], ARGV[6])
-- Each finish also drops up to two expired jobs from the lists, so they
-- keep pace with new jobs even when nobody lists jobs.
for _, j in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, 2)) do
	redis.call('ZREM', KEYS[6], j)
	redis.call('ZREM', KEYS[3], j)
end
return reply
`

// appendFinishScript is appendScript then finishScript in one step, for a
// job whose last events are still to be stored when its operation
// returns: one call stores them and ends the job. The events are
// numbered by their writer: those the stream already holds are skipped
// (see appendScript), so a call retried after its reply was lost stores
// each event once. The caller's token (its store's id and the Seq of
// its last event) is kept in the job ("ended"): the same token again, on
// a finished job, is the call retried after its reply was lost, which
// took effect.
// KEYS: as finishScript's. ARGV: state, msg, endat, retention ms, lock
// prefix, jid, base (the number of events the job had before the first
// one), token, host, event JSON, host, event JSON, ...
var appendFinishScript = goredis.NewScript(`
local f = redis.call('HMGET', KEYS[1], 'state', 'locks', 'ended')
local st, locks = f[1], f[2]
if not st then return 'notfound' end
if st ~= '1' then
	if f[3] == ARGV[8] then return 'ok' end
	return 'finished'
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local msg, ended, reply, hold = ARGV[2], ARGV[8], 'ok', 0
local first = 9
local have = redis.call('XLEN', KEYS[2]) - tonumber(ARGV[7])
if have > 0 then first = first + 2 * have end
for i = first, #ARGV, 2 do
	redis.call('XADD', KEYS[2], '*', 'h', ARGV[i], 'e', ARGV[i + 1])
end
` + finishTail)

// pruneScript drops expired jobs from the job list (their keys expire by
// themselves). KEYS: jobs, expiry.
var pruneScript = goredis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 1000)
for _, j in ipairs(gone) do
	redis.call('ZREM', KEYS[1], j)
	redis.call('ZREM', KEYS[2], j)
end
return #gone
`)

// deleteScript removes a finished job. It leaves the caller's token
// under KEYS[5] for a minute: the same token again, on a job that is
// gone, is the call retried after its reply was lost, which took effect.
// KEYS: job, events, jobs, expiry, deleted mark. ARGV: jid, token.
var deleteScript = goredis.NewScript(`
local st = redis.call('HGET', KEYS[1], 'state')
if not st then
	if redis.call('GET', KEYS[5]) == ARGV[2] then return 'ok' end
	return 'notfound'
end
if st == '1' then return 'running' end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('SET', KEYS[5], ARGV[2], 'PX', 60000)
return 'ok'
`)

// startScript marks a queued job as started by a worker and takes its
// lease; a job that ended (cancelled while queued) or was already started
// is not started again: at most once. It returns the job's hash, which
// the worker runs without reading it again. The queue message is
// acknowledged and deleted in the same step, so it is never delivered
// again once the job started, and the queue holds only waiting jobs. A
// job found started by this same worker from this same message (its id
// kept as the job's "msg") is this call again, retried by the client
// after its reply was lost: it returns the job as the first call did. A
// job started from another message (the job queued twice, say by a
// Dispatch retried after its reply was lost) is 'started', even for the
// worker that runs it: at most once. The job keeps the error recovery
// gives it if the worker's lease lapses ("lost").
// KEYS: job, lease, started (set), queue. ARGV: worker, lease ms, jid,
// group, message id, lost message.
var startScript = goredis.NewScript(`
redis.call('XACK', KEYS[4], ARGV[4], ARGV[5])
redis.call('XDEL', KEYS[4], ARGV[5])
local st = redis.call('HGET', KEYS[1], 'state')
if not st then return 'notfound' end
if st ~= '1' then return 'finished' end
local by = redis.call('HGET', KEYS[1], 'worker')
if by == ARGV[1] and redis.call('HGET', KEYS[1], 'msg') == ARGV[5] then
	return redis.call('HGETALL', KEYS[1])
end
if by then return 'started' end
redis.call('HSET', KEYS[1], 'worker', ARGV[1], 'lost', ARGV[6], 'msg', ARGV[5])
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
redis.call('SADD', KEYS[3], ARGV[3])
return redis.call('HGETALL', KEYS[1])
`)

// renewScript extends a lease its holder still holds. A lease that lapsed
// while its job still runs, started by this holder, is taken again: the
// holder could not reach Redis for a while (an outage), and nobody failed
// the job meanwhile (see recoverer for why nobody did). It returns 1 when
// renewed, 2 when taken again, 0 when the job is no longer the holder's
// (finished, failed as lost, gone); 2 more (3, 4) when the job's cancel
// was asked (cancelScript), which the holder may not have heard.
// KEYS: lease, job. ARGV: worker, lease ms.
var renewScript = goredis.NewScript(`
local holder = redis.call('GET', KEYS[1])
local held = 0
if holder == ARGV[1] then
	redis.call('PEXPIRE', KEYS[1], ARGV[2])
	held = 1
elseif not holder and redis.call('HGET', KEYS[2], 'state') == '1' and redis.call('HGET', KEYS[2], 'worker') == ARGV[1] then
	redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
	held = 2
end
if held > 0 and redis.call('HEXISTS', KEYS[2], 'cancel') == 1 then return held + 2 end
return held
`)

// cancelScript asks for the cancel of a job. It marks the hash of a job
// not ended, queued or running (field cancel), which a worker reads when
// it takes the job (it does not run it) and at each lease renewal
// (renewScript), then publishes the job's ID on the cancel channel, which
// reaches the workers at once. A worker whose connection to Redis was down
// when the message was published never gets it: the mark still stops the
// job, at its first renewal once the worker reaches Redis again. It
// returns 1 when a worker runs the job under a lease, 2 when a worker
// started the job and its lease has lapsed while the job still runs (the
// worker died or is cut off, and no recovery has failed the job yet), 0
// otherwise (queued, ended or gone).
// KEYS: job, lease. ARGV: cancel channel, jid.
var cancelScript = goredis.NewScript(`
local running = redis.call('HGET', KEYS[1], 'state') == '1'
if running then
	redis.call('HSET', KEYS[1], 'cancel', '1')
end
redis.call('PUBLISH', ARGV[1], ARGV[2])
if redis.call('HEXISTS', KEYS[1], 'worker') == 0 then return 0 end
if redis.call('EXISTS', KEYS[2]) == 1 then return 1 end
if running then return 2 end
return 0
`)

// lapsedScript is a recovery round's look: it returns Redis's time (ms),
// then the running jobs whose lease has lapsed. With a worker name, it
// also notes that worker as seen now (the workers set, which health
// checks read), and forgets workers not seen for a day.
// KEYS: started (set), workers (zset). ARGV: key prefix, worker or "".
var lapsedScript = goredis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[2] ~= '' then
	redis.call('ZADD', KEYS[2], now, ARGV[2])
	redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - 86400000)
end
local out = {now}
for _, jid in ipairs(redis.call('SMEMBERS', KEYS[1])) do
	if redis.call('EXISTS', ARGV[1] .. 'lease:' .. jid) == 0 then
		table.insert(out, jid)
	end
end
return out
`)

// lastSeenScript returns how long ago (ms) the most recently seen worker
// was seen, or -1 when none ever was. KEYS: workers (zset).
var lastSeenScript = goredis.NewScript(`
local last = redis.call('ZREVRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #last == 0 then return -1 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return now - tonumber(last[2])
`)

// takeScript reads up to count waiting jobs for a worker and starts each
// one as startScript does, all in one step: under load a worker takes a
// batch of jobs in one round trip. It does not block; a worker that finds
// the queue empty waits with a blocking read. The jobs it took are kept
// under the call's token until the lease time: the same token again is
// this call, retried by the client after its reply was lost, and gets the
// same jobs rather than new ones.
// KEYS: queue, started, taken. ARGV: group, worker, count, lease ms, key
// prefix, token, lost message. It returns jid, job hash, jid, job hash, ...
var takeScript = goredis.NewScript(`
local out = {}
local prev = redis.call('GET', KEYS[3])
local mark = ARGV[6] .. '\n'
if prev and string.sub(prev, 1, #mark) == mark then
	for jid in string.gmatch(string.sub(prev, #mark + 1), '[^\n]+') do
		local job = ARGV[5] .. 'job:' .. jid
		if redis.call('HGET', job, 'state') == '1' and redis.call('HGET', job, 'worker') == ARGV[2] then
			table.insert(out, jid)
			table.insert(out, redis.call('HGETALL', job))
		end
	end
	return out
end
local res = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', ARGV[3], 'STREAMS', KEYS[1], '>')
if not res then return out end
local taken = mark
local ids = {}
for _, m in ipairs(res[1][2]) do
	table.insert(ids, m[1])
end
-- Acknowledged and deleted together, a hundred at a time (unpack's
-- bound), before any job is started: in the same step all the same.
for i = 1, #ids, 100 do
	local page = {unpack(ids, i, math.min(i + 99, #ids))}
	redis.call('XACK', KEYS[1], ARGV[1], unpack(page))
	redis.call('XDEL', KEYS[1], unpack(page))
end
for _, m in ipairs(res[1][2]) do
	local jid
	for i = 1, #m[2], 2 do
		if m[2][i] == 'jid' then jid = m[2][i + 1] end
	end
	if jid then
		local job = ARGV[5] .. 'job:' .. jid
		local f = redis.call('HMGET', job, 'state', 'worker')
		if f[1] == '1' and not f[2] then
			redis.call('HSET', job, 'worker', ARGV[2], 'lost', ARGV[7])
			redis.call('SET', ARGV[5] .. 'lease:' .. jid, ARGV[2], 'PX', ARGV[4])
			redis.call('SADD', KEYS[2], jid)
			table.insert(out, jid)
			table.insert(out, redis.call('HGETALL', job))
			taken = taken .. jid .. '\n'
		end
	end
end
if #out > 0 then redis.call('SET', KEYS[3], taken, 'PX', ARGV[4]) end
return out
`)

// skipScript finds where a follow from the n-th event starts: it walks
// the job's stream after entry ARGV[1] over at most ARGV[2] events, and
// returns the id of the last one and how many it walked, fewer when the
// stream holds no more events (yet) or reaches the end marker, which it
// never walks over. Only ids leave Redis: skipped events are neither
// sent nor decoded. The caller bounds ARGV[2] (skipBatch), so one call
// holds Redis for a bounded time however far the follow skips; it reads
// 100 entries at a time, since XRANGE loads their events (each up to the
// output cap) into the script's memory.
// KEYS: events. ARGV: entry id to walk from (exclusive), events to walk.
var skipScript = goredis.NewScript(`
local last, n, count = ARGV[1], tonumber(ARGV[2]), 0
while count < n do
	local page = redis.call('XRANGE', KEYS[1], '(' .. last, '+', 'COUNT', math.min(n - count, 100))
	if #page == 0 then break end
	for _, e in ipairs(page) do
		if e[2][1] ~= 'h' then return {last, count} end
		last = e[1]
		count = count + 1
	end
end
return {last, count}
`)
