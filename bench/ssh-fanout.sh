#!/usr/bin/env bash
# SSH fan-out comparison: `true` on N inventory aliases of one loopback sshd
# (internal/sshtest: throwaway keys, MaxStartups/MaxSessions raised, a test
# user whose /bin/sh login reads no rc files), for exed end to end (cold and
# warm), a bare x/crypto/ssh loop, ansible -m command, ansible -m raw, and
# parallel-ssh with OpenSSH's default key exchange and with curve25519, all
# with parallelism 50, in one run. Prints one Markdown table of medians.
#
#   bench/ssh-fanout.sh                 # N = 50 200 500
#   N="50 200 500 1000" REPS=5 bench/ssh-fanout.sh
#   WITH=exed,bare N=1000 bench/ssh-fanout.sh
#
# Needs root (sshd, the test user) and Debian's openssh-server, ansible and
# pssh, which it installs when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=""
[ -x /usr/sbin/sshd ] || missing="$missing openssh-server"
command -v ansible >/dev/null || missing="$missing ansible"
command -v parallel-ssh >/dev/null || missing="$missing pssh"
if [ -n "$missing" ]; then
	echo "installing:$missing" >&2
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >&2
fi

N=${N:-50 200 500}
REPS=${REPS:-5}
WITH=${WITH:-exed,bare,ansible-command,ansible-raw,pssh,pssh-curve25519}
OUT=${OUT:-$(mktemp -t exed-fanout-XXXXXX.txt)}

export EXE_REQUIRE_INTEGRATION=1 # a missing sshd fails, not skips
go test -run '^$' -bench '^BenchmarkSSHFanout$' -benchtime 1x -timeout 0 ./bench/ \
	-args -fanout.n="${N// /,}" -fanout.reps="$REPS" -fanout.with="$WITH" | tee "$OUT" >&2
echo "raw output: $OUT" >&2

awk '
/^BenchmarkSSHFanout\/N=/ {
	split($1, part, "/"); n = substr(part[2], 3); who = part[3]; sub(/-[0-9]+$/, "", who)
	for (i = 2; i < NF; i++) if ($(i+1) == "s/median") t[n, who] = $i
	if (!(n in seen)) { seen[n] = 1; order[++count] = n }
}
function cell(n, who) { return ((n, who) in t) ? sprintf("%.2f s", t[n, who]) : "-" }
function ratio(n, a, b) { return ((n, a) in t && (n, b) in t && t[n, b] > 0) ? sprintf("%.2fx", t[n, a] / t[n, b]) : "-" }
END {
	print "| N | exed cold | bare cold | exed/bare | exed warm | bare warm | exed/bare | ansible command | ansible raw | parallel-ssh | parallel-ssh curve25519 | ansible command / exed cold |"
	print "|---|---|---|---|---|---|---|---|---|---|---|---|"
	for (i = 1; i <= count; i++) {
		n = order[i]
		printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", n,
			cell(n, "exed-cold"), cell(n, "bare-cold"), ratio(n, "exed-cold", "bare-cold"),
			cell(n, "exed-warm"), cell(n, "bare-warm"), ratio(n, "exed-warm", "bare-warm"),
			cell(n, "ansible-command"), cell(n, "ansible-raw"), cell(n, "pssh"), cell(n, "pssh-curve25519"),
			ratio(n, "ansible-command", "exed-cold")
	}
}' "$OUT"
