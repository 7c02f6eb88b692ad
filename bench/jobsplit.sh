#!/usr/bin/env bash
# Where a job's CPU goes on the Redis path, per process: the exed API and
# two `exed worker`s on one redis-server (no persistence), as bench/jobs.sh
# runs exed-redis, N async pings from C clients (bench/peers/cmd/exedload).
# For each run it prints the CPU per job of the API, the workers (their own
# and their plugins'), redis-server and the client (/proc/PID/stat), the
# context switches per job (/proc/PID/task/*/status), Redis's commands
# per job and their time in µs per job (INFO commandstats; a script's time
# includes its commands') and its reads from client sockets per job
# (INFO stats: about one per round trip, however many commands it
# carries). With BASELINE=REV it also runs exed as of that git revision,
# alternating with this tree, REPS rounds.
#
#   BASELINE=main REPS=5 N=3000 bench/jobsplit.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-3000}
C=${C:-32}
REPS=${REPS:-3}
# Checked before anything is built or started, as bench/jobs.sh does.
usage() { echo "bench/jobsplit.sh: $*" >&2; exit 2; }
for v in "N=$N" "C=$C" "REPS=$REPS"; do
	[[ ${v#*=} =~ ^[1-9][0-9]{0,8}$ ]] || usage "$v: want a whole number from 1 to 999,999,999"
done
if [ -n "${BASELINE:-}" ]; then
	git rev-parse --verify --quiet "$BASELINE^{commit}" >/dev/null ||
		usage "BASELINE=$BASELINE: not a git revision of this repository"
fi
WORK=$(mktemp -d -t exed-jobsplit-XXXXXX)
BIN=$WORK/bin
mkdir -p "$BIN"
go build -o "$BIN/exed" ./examples/exed
(cd bench/peers && go build -o "$BIN" ./cmd/exedload ./cmd/proctree)
SYSTEMS=(exed)
if [ -n "${BASELINE:-}" ]; then
	mkdir -p "$WORK/baseline"
	git archive "$BASELINE" | tar -x -C "$WORK/baseline"
	(cd "$WORK/baseline" && go build -o "$BIN/exed-baseline" ./examples/exed)
	SYSTEMS=(exed-baseline exed)
fi
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PIDS=()
cleanup() { [ ${#PIDS[@]} -eq 0 ] || { kill "${PIDS[@]}" 2>/dev/null || true; wait "${PIDS[@]}" 2>/dev/null || true; }; }
trap cleanup EXIT

own() { awk '{print $14+$15}' "/proc/$1/stat"; } # ticks of the process itself
csw() {                                          # context switches of PIDs' live threads
	local t=0 p
	for p in "$@"; do t=$((t + $(cat /proc/"$p"/task/*/status 2>/dev/null | awk '/ctxt_switches/{s+=$2} END{print s+0}'))); done
	echo "$t"
}

run() { # run NAME: one run of the system built as $BIN/NAME
	local d=$WORK/$1-$RANDOM rp ap r a w1 w2 url b a2 line
	mkdir -p "$d"
	rp=$(freeport)
	ap=$(freeport)
	redis-server --port "$rp" --bind 127.0.0.1 --save '' --appendonly no --dir "$d" --logfile "$d/redis-server.log" &
	r=$!
	PIDS+=("$r")
	for _ in $(seq 100); do redis-cli -p "$rp" ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
	printf 'localhost ansible_connection=local\n' >"$d/hosts"
	cat >"$d/exed.conf" <<-CONF
		[api]
		listen_addr = 127.0.0.1
		listen_port = $ap
		ui = false
		[runner]
		state_dir = $d/state
		queue_size = 100000
		max_jobs = 100000
		broker_url = redis://127.0.0.1:$rp/0
		[log]
		error_log = $d/error.log
		access_log = $d/access.log
		[sshnative]
		inventory = $d/hosts
	CONF
	"$BIN/$1" -c "$d/exed.conf" >"$d/api.out" 2>&1 &
	a=$!
	"$BIN/$1" worker -c "$d/exed.conf" >"$d/w1.out" 2>&1 &
	w1=$!
	"$BIN/$1" worker -c "$d/exed.conf" >"$d/w2.out" 2>&1 &
	w2=$!
	PIDS+=("$a" "$w1" "$w2")
	url=http://127.0.0.1:$ap
	for _ in $(seq 200); do curl -fsS "$url/healthz" 2>/dev/null | grep -q '"ok"' && break; sleep 0.1; done
	"$BIN/exedload" -url "$url" -n 200 -c 4 >/dev/null # warm-up
	redis-cli -p "$rp" config resetstat >/dev/null
	b="$("$BIN/proctree" "$a") $(own "$a") $("$BIN/proctree" "$w1" "$w2") $(own "$w1") $(own "$w2") $("$BIN/proctree" "$r") $(csw "$w1" "$w2") $(csw "$a") $(csw "$r")"
	line=$("$BIN/exedload" -url "$url" -n "$N" -c "$C")
	a2="$("$BIN/proctree" "$a") $(own "$a") $("$BIN/proctree" "$w1" "$w2") $(own "$w1") $(own "$w2") $("$BIN/proctree" "$r") $(csw "$w1" "$w2") $(csw "$a") $(csw "$r")"
	awk -v sys="$1" -v n="$N" -v line="$line" -v la="$(cut -d' ' -f1 /proc/loadavg)" -v b="$b" -v a="$a2" 'BEGIN {
		split(b, B, " "); split(a, A, " "); split(line, L, " ")
		for (i in L) { split(L[i], kv, "="); v[kv[1]] = kv[2] }
		api = A[1] - B[1]; apio = (A[2] - B[2]) / 100; w = A[3] - B[3]; wo = (A[4] - B[4] + A[5] - B[5]) / 100; r = A[6] - B[6]
		printf "%s jobs_per_s=%s load=%s ms/job: api %.3f (own %.3f) workers %.3f (own %.3f) redis %.3f client %.3f total %.3f; context switches/job: workers %.1f api %.1f redis %.1f\n",
			sys, v["jobs_per_s"], la, api * 1000 / n, apio * 1000 / n, w * 1000 / n, wo * 1000 / n, r * 1000 / n,
			v["cpu_s"] * 1000 / n, (api + w + r + v["cpu_s"]) * 1000 / n, (A[7] - B[7]) / n, (A[8] - B[8]) / n, (A[9] - B[9]) / n
	}'
	redis-cli -p "$rp" info commandstats | awk -F'[:,=]' -v n="$N" '/^cmdstat_/ { printf "  %s %.2f/job %.1fus", substr($1, 9), $3 / n, $5 / n } END { print "" }'
	# Reads Redis made from its clients' sockets: its round trips, pipelines counted once.
	redis-cli -p "$rp" info stats | tr -d '\r' | awk -F: -v n="$N" '/^total_reads_processed:/ { printf "  redis reads %.2f/job\n", $2 / n }'
	kill "$a" "$w1" "$w2" "$r"
	wait "$a" "$w1" "$w2" "$r" 2>/dev/null || true
	PIDS=()
}

for _ in $(seq "$REPS"); do
	for s in "${SYSTEMS[@]}"; do run "$s"; done
done
echo "logs in $WORK" >&2
