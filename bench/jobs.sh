#!/usr/bin/env bash
# Async jobs through the real binaries, against Celery and asynq on the
# same Redis, in one run. Builds exed and the peers' programs
# (bench/peers, a module of its own), starts its own redis-server on a free
# port (no persistence), and runs, interleaved, REPS rounds of:
#
#   exed-memory   the exed binary, memory store (its executor plugin
#                 process runs the jobs)
#   exed-redis    the exed API and two `exed worker`s, Redis store and
#                 queue ([runner] broker_url)
#   celery        Celery (Debian's), Redis broker and result backend, one
#                 worker with two prefork processes (-c 2), a no-op task
#   asynq         two asynq servers (16 tasks at once each), a no-op task
#   asynq-http    the same two servers behind an HTTP front (asynqpeer
#                 front) answering exed's two requests of a job, each
#                 task's outcome kept (asynq.Retention) for the GET, and
#                 driven by exed's client: asynq doing what exed's row
#                 does for a job
#   http-floor    bench/peers/cmd/httpfloor: net/http answering exed's two
#                 requests of a job and doing nothing else, what the HTTP
#                 requests alone cost the client and a Go server here;
#                 FLOOR_WORK="0 25us 50us" adds rows of it spending that
#                 much more CPU per job (http-floor+25us, ...): the rate
#                 exed would reach here if its own work came to that
#
# Each drives N async jobs (exed: POST /ping on ["localhost"]) from 1 and
# from 32 concurrent clients, each client submitting one job at a time,
# then waits until every job has ended Done (succeeded). It reports jobs/s
# (first submit to last job seen done) and the CPU time per job of every
# process: the servers, workers and their children (plugin processes,
# prefork children), redis-server (from /proc/PID/stat, bench/peers/cmd/
# proctree) and the client (its own rusage). Prints one Markdown table of
# medians, then, when the floor ran, the CPU per job the targets leave at
# the floor's load (see bounds below), and, when exed-redis and
# asynq-http ran, one line setting them side by side with how many jobs
# each client had to follow (still running at their GET).
#
# Then the turnaround of a job alone: in each round, one client submits
# TURNAROUND jobs (500; 0 skips it) to each system the clients reach over
# HTTP (the exed rows, asynq-http, http-floor), following each to its end
# before the next (exedload -each), as an operator waiting on a job does.
# A second table gives its median and 99th percentile (medians over the
# rounds) and the CPU per job: what a system's way of taking jobs from
# its queue costs a lone job, against what it costs the throughput above.
#
#   WITH=exed-redis,asynq-http REPS=5 CLIENTS=32 bench/jobs.sh  # like for like
#
#   bench/jobs.sh                       # N=5000, REPS=3, 5-15 min
#   N=2000 REPS=5 CLIENTS="32" bench/jobs.sh
#   WITH=exed-memory,exed-redis bench/jobs.sh
#   BASELINE=main WITH=exed-memory,exed-redis bench/jobs.sh   # before/after
#   WITH=exed-memory,http-floor FLOOR_WORK="0 25us 50us 75us" bench/jobs.sh
#   PROFILE=3 WITH=exed-redis REPS=1 bench/jobs.sh   # + 3 s CPU, block and
#                                       # mutex profiles of every exed process
#                                       # (first round, most clients)
#
# Needs redis-server and, for the celery row, Debian's python3-celery and
# python3-redis, which it installs when missing (as root). Each run keeps
# its binaries and logs in /tmp/exed-jobs-*; remove them when done.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

N=${N:-5000}
REPS=${REPS:-3}
CLIENTS=${CLIENTS-1 32} # set but empty is an error below
WITH=${WITH-exed-memory,exed-redis,celery,asynq,asynq-http,http-floor}
FLOOR_WORK=${FLOOR_WORK:-0}
TURNAROUND=${TURNAROUND:-500}

# The settings are checked before anything is installed, built or started:
# a typo in WITH would otherwise leave a system out of a table that looks
# complete.
usage() { echo "bench/jobs.sh: $*" >&2; exit 2; }
count() { [[ $2 =~ ^[1-9][0-9]{0,8}$ ]] || usage "$1: want a whole number from 1 to 999,999,999"; }
count "N=$N" "$N"
count "REPS=$REPS" "$REPS"
# At most 7 digits after leading zeros: a longer one would wrap in $((...))
# and fail only after the rates have run.
[[ $TURNAROUND =~ ^0*([0-9]{1,7})$ ]] ||
	usage "TURNAROUND=$TURNAROUND: want a whole number below 10,000,000 (0 skips the turnaround runs)"
TURNAROUND=$((10#${BASH_REMATCH[1]})) # 00 is 0
[ -n "${CLIENTS// /}" ] || usage "CLIENTS is empty: want client counts, e.g. CLIENTS=\"1 32\""
for c in $CLIENTS; do count "CLIENTS=\"$CLIENTS\": entry $c" "$c"; done
IFS=, read -ra systems <<<"$WITH"
[ ${#systems[@]} -gt 0 ] || usage "WITH is empty: want some of exed-memory,exed-redis,celery,asynq,asynq-http,http-floor"
for s in "${systems[@]}"; do
	case $s in
	exed-memory | exed-redis | celery | asynq | asynq-http | http-floor) ;;
	*) usage "WITH: unknown system \"$s\": want some of exed-memory,exed-redis,celery,asynq,asynq-http,http-floor" ;;
	esac
done
for w in $FLOOR_WORK; do
	[[ $w == 0 || $w =~ ^[0-9]+(ns|us|µs|ms)$ ]] || usage "FLOOR_WORK entry \"$w\": want 0 or a duration such as 25us"
done
# The table is made from OUT: a file kept from an earlier run would mix
# that run's rows into this one's medians.
[ -z "${OUT:-}" ] || [ ! -s "$OUT" ] || usage "OUT=$OUT already holds results: name a new file"
MOST_CLIENTS=$(printf '%s\n' $CLIENTS | sort -n | tail -1)
if [ -n "${BASELINE:-}" ]; then
	git rev-parse --verify --quiet "$BASELINE^{commit}" >/dev/null ||
		usage "BASELINE=$BASELINE: not a git revision of this repository"
fi

PY=/usr/bin/python3 # Debian's Celery is a package of the system Python
missing=""
command -v redis-server >/dev/null || missing="$missing redis-server"
if [[ ,$WITH, == *,celery,* ]]; then
	$PY -c 'import celery' 2>/dev/null || missing="$missing python3-celery"
	$PY -c 'import redis' 2>/dev/null || missing="$missing python3-redis"
fi
if [ -n "$missing" ]; then
	echo "installing:$missing" >&2
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >&2
fi
WORK=$(mktemp -d -t exed-jobs-XXXXXX)
OUT=${OUT:-$WORK/results.txt}
BIN=$WORK/bin
mkdir -p "$BIN"

STARTED=() # every PID this script started and has not stopped yet
stop() {   # stop PID...: SIGTERM, then SIGKILL after 10 s
	local pid i
	for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "$@"; do
		for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	local keep=() p
	for p in "${STARTED[@]}"; do [[ " $* " == *" $p "* ]] || keep+=("$p"); done
	STARTED=("${keep[@]}")
}
cleanup() { [ ${#STARTED[@]} -eq 0 ] || stop "${STARTED[@]}"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

freeport() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

echo "building into $BIN" >&2
go build -o "$BIN/exed" ./examples/exed
# BASELINE=REV also measures exed as of that git revision (exed-memory@REV,
# exed-redis@REV), in the same rounds: before and after a change, same run.
if [ -n "${BASELINE:-}" ]; then
	mkdir -p "$WORK/baseline"
	git archive "$BASELINE" | tar -x -C "$WORK/baseline"
	(cd "$WORK/baseline" && go build -o "$BIN/exed-baseline" ./examples/exed)
fi
(cd bench/peers && go build -o "$BIN" ./cmd/...)

RPORT=$(freeport)
redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK" \
	--logfile "$WORK/redis.log" &
REDIS=$!
STARTED+=("$REDIS")
for i in $(seq 100); do redis-cli -p "$RPORT" ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
redis-cli -p "$RPORT" ping | grep -q PONG

printf 'localhost ansible_connection=local\n' >"$WORK/hosts"
# conf NAME [runner lines...]: an exed.conf on a free port
conf() {
	local name=$1 port
	shift
	port=$(freeport)
	cat >"$WORK/$name.conf" <<-CONF
		[api]
		listen_addr = 127.0.0.1
		listen_port = $port
		ui = false
		[runner]
		state_dir = $WORK/state
		queue_size = 100000
		max_jobs = 100000
		$(printf '%s\n' "$@")
		[log]
		error_log = $WORK/$name.log
		access_log = $WORK/$name.access.log
		[sshnative]
		inventory = $WORK/hosts
	CONF
	echo "http://127.0.0.1:$port"
}

# healthy URL: wait (at most 20 s) for /healthz to say ok
healthy() {
	local i
	for i in $(seq 200); do
		curl -fsS "$1/healthz" 2>/dev/null | grep -q '"ok"' && return 0
		sleep 0.1
	done
	echo "exed at $1 did not become healthy" >&2
	return 1
}

# measure SYSTEM CLIENTS ROUND PIDS -- CLIENT...: one run of the client,
# with the CPU of the PIDs' process trees and of redis-server around it
measure() {
	local sys=$1 c=$2 round=$3 pids=$4 before after rbefore rafter line
	shift 5
	before=$("$BIN/proctree" $pids "$REDIS")
	rbefore=$("$BIN/proctree" "$REDIS")
	line=$("$@")
	after=$("$BIN/proctree" $pids "$REDIS")
	rafter=$("$BIN/proctree" "$REDIS")
	echo "$sys c=$c round=$round $line servers_cpu_s=$(awk -v a="$after" -v b="$before" 'BEGIN{printf "%.2f", a-b}') redis_cpu_s=$(awk -v a="$rafter" -v b="$rbefore" 'BEGIN{printf "%.2f", a-b}') load=$(cut -d' ' -f1 /proc/loadavg)" | tee -a "$OUT" >&2
}

# profile NAME: with PROFILE set, fetch CPU profiles (PROFILE seconds
# long) of every exed process (server, workers, plugins) in the background,
# and block and mutex profiles just after, into $WORK/profiles
profile() {
	[ -n "${PROFILE:-}" ] || return 0
	local f name
	mkdir -p "$WORK/profiles"
	for f in "$WORK"/pprof/*.addr; do
		[ -e "$f" ] || continue
		name=$(basename "$f" .addr)
		kill -0 "${name##*-}" 2>/dev/null || continue # a process of an earlier system
		(curl -fsS -o "$WORK/profiles/$1.$name.cpu.pprof" "http://$(cat "$f")/debug/pprof/profile?seconds=$PROFILE" &&
			curl -fsS -o "$WORK/profiles/$1.$name.block.pprof" "http://$(cat "$f")/debug/pprof/block" &&
			curl -fsS -o "$WORK/profiles/$1.$name.mutex.pprof" "http://$(cat "$f")/debug/pprof/mutex") &
	done
}

run_exed() { # run_exed NAME ROUND URL PIDS
	local c
	"$BIN/exedload" -url "$3" -n 50 -c 4 -timeout 60s >/dev/null # warm-up
	for c in $CLIENTS; do
		# Profiled: the first round, at the most clients.
		[ "$2" != 1 ] || [ "$c" != "$MOST_CLIENTS" ] || profile "$1"
		measure "$1" "$c" "$2" "$4" -- "$BIN/exedload" -url "$3" -n "$N" -c "$c"
		wait_profiles
	done
	[ "$TURNAROUND" = 0 ] ||
		measure "$1" each "$2" "$4" -- "$BIN/exedload" -url "$3" -n "$TURNAROUND" -c 1 -each
}

exed_systems() { # exed_systems ROUND EXED SUFFIX: exed-memory and exed-redis
	local r=$1 exed=$2 sfx=$3 url api w1 w2
	if [[ ,$WITH, == *,exed-memory,* ]]; then
		redis-cli -p "$RPORT" flushall >/dev/null
		url=$(conf memory)
		"$exed" -c "$WORK/memory.conf" >"$WORK/memory.out" 2>&1 &
		api=$!
		STARTED+=("$api")
		healthy "$url"
		run_exed "exed-memory$sfx" "$r" "$url" "$api"
		stop "$api"
	fi
	if [[ ,$WITH, == *,exed-redis,* ]]; then
		redis-cli -p "$RPORT" flushall >/dev/null
		url=$(conf redis "broker_url = redis://127.0.0.1:$RPORT/0")
		"$exed" -c "$WORK/redis.conf" >"$WORK/redis-api.out" 2>&1 &
		api=$!
		"$exed" worker -c "$WORK/redis.conf" >"$WORK/redis-w1.out" 2>&1 &
		w1=$!
		"$exed" worker -c "$WORK/redis.conf" >"$WORK/redis-w2.out" 2>&1 &
		w2=$!
		STARTED+=("$api" "$w1" "$w2")
		healthy "$url"
		run_exed "exed-redis$sfx" "$r" "$url" "$api $w1 $w2"
		stop "$api" "$w1" "$w2"
	fi
}

# asynq_servers NAME: an empty Redis and the two asynq servers of the
# asynq rows, as w1 and w2 (round's), logging to $WORK/NAME1.out and 2
asynq_servers() {
	redis-cli -p "$RPORT" flushall >/dev/null
	"$BIN/asynqpeer" server -redis "127.0.0.1:$RPORT" >"$WORK/${1}1.out" 2>&1 &
	w1=$!
	"$BIN/asynqpeer" server -redis "127.0.0.1:$RPORT" >"$WORK/${1}2.out" 2>&1 &
	w2=$!
	STARTED+=("$w1" "$w2")
}

round() {
	local r=$1 w1 w2 c port i
	[ -z "${BASELINE:-}" ] || exed_systems "$r" "$BIN/exed-baseline" "@$BASELINE"
	exed_systems "$r" "$BIN/exed" ""
	if [[ ,$WITH, == *,celery,* ]]; then
		redis-cli -p "$RPORT" flushall >/dev/null
		export BENCH_REDIS=redis://127.0.0.1:$RPORT
		(cd bench/peers/celery && exec $PY -m celery -A noop worker -c 2 -P prefork -l WARNING \
			--without-gossip --without-mingle --without-heartbeat) >"$WORK/celery.out" 2>&1 &
		w1=$!
		STARTED+=("$w1")
		(cd bench/peers/celery && $PY noop.py -n 50 -c 4 -timeout 60 >/dev/null) # warm-up, waits for the worker
		for c in $CLIENTS; do
			measure celery "$c" "$r" "$w1" -- sh -c "cd bench/peers/celery && exec $PY noop.py -n $N -c $c"
		done
		stop "$w1"
	fi
	if [[ ,$WITH, == *,asynq,* ]]; then
		asynq_servers asynq
		"$BIN/asynqpeer" load -redis "127.0.0.1:$RPORT" -n 50 -c 4 -timeout 60s >/dev/null # warm-up
		for c in $CLIENTS; do
			measure asynq "$c" "$r" "$w1 $w2" -- "$BIN/asynqpeer" load -redis "127.0.0.1:$RPORT" -n "$N" -c "$c"
		done
		stop "$w1" "$w2"
	fi
	if [[ ,$WITH, == *,asynq-http,* ]]; then
		local front
		asynq_servers asynq-http
		port=$(freeport)
		"$BIN/asynqpeer" front -redis "127.0.0.1:$RPORT" -addr "127.0.0.1:$port" >"$WORK/asynq-front.out" 2>&1 &
		front=$!
		STARTED+=("$front")
		# Up once it answers at all (an unknown job is a 404).
		for i in $(seq 101); do
			curl -s -o /dev/null "http://127.0.0.1:$port/jobs/x" && break
			if [ "$i" = 101 ] || ! kill -0 "$front" 2>/dev/null; then
				echo "asynqpeer front did not come up on port $port: see $WORK/asynq-front.out" >&2
				return 1
			fi
			sleep 0.1
		done
		run_exed asynq-http "$r" "http://127.0.0.1:$port" "$w1 $w2 $front"
		stop "$w1" "$w2" "$front"
	fi
	if [[ ,$WITH, == *,http-floor,* ]]; then
		local work name
		for work in $FLOOR_WORK; do
			name=http-floor
			[ "$work" = 0 ] || name=http-floor+$work
			port=$(freeport)
			"$BIN/httpfloor" -addr "127.0.0.1:$port" -work "$work" >"$WORK/floor.out" 2>&1 &
			w1=$!
			STARTED+=("$w1")
			for i in $(seq 100); do curl -fsS "http://127.0.0.1:$port/jobs/x" >/dev/null 2>&1 && break; sleep 0.1; done
			run_exed "$name" "$r" "http://127.0.0.1:$port" "$w1"
			stop "$w1"
		done
	fi
}

# Profiling: every exed process serves net/http/pprof (debugpprof) and the
# first round's 32-client runs are profiled.
if [ -n "${PROFILE:-}" ]; then
	export EXED_PPROF_DIR=$WORK/pprof EXED_PPROF_RATE=${PROFILE_RATE:-10000}
	mkdir -p "$EXED_PPROF_DIR"
fi
wait_profiles() { # the profile fetches (every other child is waited for by stop)
	local f
	for f in $(jobs -p); do [[ " ${STARTED[*]} " == *" $f "* ]] || wait "$f" || true; done
}

LOAD_START=$(uptime)
for r in $(seq "$REPS"); do round "$r"; done
LOAD_END=$(uptime)
echo "raw output: $OUT (logs in $WORK)" >&2

echo "N=$N jobs per run, medians of $REPS interleaved rounds; $(nproc) CPUs; $(redis-server --version | cut -d' ' -f3)"
echo "load at start:${LOAD_START#*load}"
echo "load at end:  ${LOAD_END#*load}"
echo
awk -v n="$N" -v most="$MOST_CLIENTS" -v ncpu="$(nproc)" '
function val(k,   i) { for (i = 2; i <= NF; i++) if (index($i, k "=") == 1) return substr($i, length(k) + 2) }
function median(list,   a, m, i, j, t) {
	m = split(list, a, " ")
	for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
	return m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
}
function range(list,   a, m, i, lo, hi) {
	m = split(list, a, " "); lo = hi = a[1]
	for (i = 2; i <= m; i++) { if (a[i] < lo) lo = a[i]; if (a[i] > hi) hi = a[i] }
	return sprintf("%.0f-%.0f", lo, hi)
}
val("c") == "each" {
	k = $1
	if (!(k in tseen)) { tseen[k] = 1; torder[++tcount] = k }
	tn[k] = val("jobs")
	p50[k] = p50[k] " " val("turnaround_p50_ms"); p99[k] = p99[k] " " val("turnaround_p99_ms")
	tcpu[k] = tcpu[k] " " (val("servers_cpu_s") + val("cpu_s")) * 1000 / val("jobs")
	next
}
{
	k = $1 SUBSEP val("c")
	if (!(k in seen)) { seen[k] = 1; order[++count] = k }
	rate[k] = rate[k] " " val("jobs_per_s")
	srv = val("servers_cpu_s"); cli = val("cpu_s")
	cpu[k] = cpu[k] " " (srv + cli) * 1000 / n
	scpu[k] = scpu[k] " " srv * 1000 / n
	rcpu[k] = rcpu[k] " " val("redis_cpu_s") * 1000 / n
	fol[k] = fol[k] " " val("followed")
}
END {
	print "| system | clients | jobs/s (median) | range | CPU per job, all processes | of which servers, workers, Redis | of which Redis |"
	print "|---|---|---|---|---|---|---|"
	for (i = 1; i <= count; i++) {
		split(order[i], p, SUBSEP)
		printf "| %s | %s | %.0f | %s | %.3f ms | %.3f ms | %.3f ms |\n", p[1], p[2], median(rate[order[i]]),
			range(rate[order[i]]), median(cpu[order[i]]), median(scpu[order[i]]), median(rcpu[order[i]])
	}
	bounds()
	like_for_like()
	turnaround()
}
# turnaround: the table of the -each runs.
function turnaround(   i, k) {
	if (!tcount) return
	print ""
	printf "A job alone: one client, each of %d jobs followed to its end before the next; medians of the rounds:\n\n", tn[torder[1]]
	print "| system | turnaround p50 | turnaround p99 | CPU per job, all processes |"
	print "|---|---|---|---|"
	for (i = 1; i <= tcount; i++) {
		k = torder[i]
		printf "| %s | %.2f ms | %.2f ms | %.3f ms |\n", k, median(p50[k]), median(p99[k]), median(tcpu[k])
	}
}
# like_for_like: exed-redis against asynq doing the same for a job (the
# HTTP front, a kept outcome), at the most clients.
function like_for_like(   q, r) {
	q = "asynq-http" SUBSEP most; r = "exed-redis" SUBSEP most
	if (!((q in seen) && (r in seen))) return
	print ""
	printf "Like for like at %d clients: exed-redis %.0f jobs/s, %.3f ms a job, %.0f of %d jobs followed; asynq behind the same HTTP requests with kept outcomes (asynq-http) %.0f jobs/s, %.3f ms a job, %.0f followed: exed-redis at %.2fx its rate.\n",
		most, median(rate[r]), median(cpu[r]), median(fol[r]), n, median(rate[q]), median(cpu[q]), median(fol[q]), median(rate[r]) / median(rate[q])
}
# bounds: what the targets ask of exed, in CPU per job, beside what this
# run measured, at the most clients. At that load each system is bound by
# the CPUs it gets (jobs/s times CPU per job is how many it kept busy), so
# a rate is a budget: R jobs/s on U busy CPUs leaves U/R of CPU per job.
# U is what the floor kept busy, the most these HTTP clients reached here.
# The floor costs the two HTTP requests of a job, client and a bare Go
# server: every exed row pays it, and its own work on top.
function bounds(   f, a, m, r, u, fc, budget) {
	f = "http-floor" SUBSEP most; a = "asynq" SUBSEP most
	m = "exed-memory" SUBSEP most; r = "exed-redis" SUBSEP most
	if (!(f in seen)) return
	u = median(rate[f]) * median(cpu[f]) / 1000; fc = median(cpu[f])
	print ""
	printf "Bounds at %d clients: the floor kept %.2f of %d CPUs busy and its two requests cost %.3f ms a job.\n", most, u, ncpu, fc
	if (m in seen) {
		budget = u / 10000 * 1000
		printf "- exed-memory at 10,000 jobs/s on %.2f CPUs: at most %.3f ms a job, %.3f ms of it for exed\047s own work beyond the floor\047s; it spent %.3f ms (%.3f beyond).\n",
			u, budget, budget - fc, median(cpu[m]), median(cpu[m]) - fc
	}
	if ((r in seen) && (a in seen)) {
		budget = u / median(rate[a]) * 1000
		printf "- exed-redis at asynq\047s %.0f jobs/s on %.2f CPUs: at most %.3f ms a job; the floor\047s requests with Redis work as small as asynq\047s (%.3f) already cost %.3f, with exed\047s Redis as measured (%.3f) %.3f; it spent %.3f ms.\n",
			median(rate[a]), u, budget, median(rcpu[a]), fc + median(rcpu[a]), median(rcpu[r]), fc + median(rcpu[r]), median(cpu[r])
	}
}' "$OUT"
