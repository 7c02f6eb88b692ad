#!/usr/bin/env bash
# Inventory comparison: inventory.Load and GET /target (HTTP API, sshnative
# executor) on generated inventories of N hosts in INI and YAML (each host
# with two variables, in one big group and in racks of 100) and in INI
# nested (200 groups under zones, regions and an estate group), against
# ansible-inventory --list on the same files. Prints one Markdown table.
#
#   bench/inventory.sh                       # N = 1000 10000 100000, ~10 min
#   N="1000 10000" bench/inventory.sh
#   ANSIBLE=no bench/inventory.sh            # exed only
#
# Installs Debian's ansible when missing (as root).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${ANSIBLE:-yes}" != no ] && ! command -v ansible-inventory >/dev/null; then
	echo "installing: ansible" >&2
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ansible >&2
fi

N=${N:-1000 10000 100000}
OUT=${OUT:-$(mktemp -t exed-inventory-XXXXXX.txt)}
ansible_flag=-inventory.ansible
[ "${ANSIBLE:-yes}" = no ] && ansible_flag=-inventory.ansible=false

export EXE_REQUIRE_INTEGRATION=1
go test -run '^$' -bench '^BenchmarkInventory(Load|Target)$' -benchtime 2s -timeout 0 ./bench/ \
	-args -inventory.n="${N// /,}" | tee "$OUT" >&2
go test -run '^$' -bench '^BenchmarkInventoryAnsible$' -benchtime 1x -timeout 0 ./bench/ \
	-args -inventory.n="${N// /,}" "$ansible_flag" | tee -a "$OUT" >&2
echo "raw output: $OUT" >&2

awk '
function secs(ns) { return ns / 1e9 }
function fmt(s) { return s >= 1 ? sprintf("%.2f s", s) : (s >= 0.001 ? sprintf("%.1f ms", s * 1000) : sprintf("%.0f µs", s * 1e6)) }
/^BenchmarkInventoryLoad\// {
	split($1, p, "/"); sub(/-[0-9]+$/, "", p[3]); load[p[2], p[3]] = secs($3); sizes[p[3]] = 1
}
/^BenchmarkInventoryAnsible\// {
	split($1, p, "/"); sub(/-[0-9]+$/, "", p[3]); ans[p[2], p[3]] = secs($3)
}
/^BenchmarkInventoryTarget\// {
	name = $1; sub(/^BenchmarkInventoryTarget\//, "", name); sub(/-[0-9]+$/, "", name)
	n = name; sub(/\/.*/, "", n); pat = name; sub(/^[0-9]+\//, "", pat)
	tgt[n, pat] = secs($3); if (!(pat in seenpat)) { seenpat[pat] = 1; pats[++np] = pat }
}
END {
	print "| hosts | format | exed load | ansible-inventory --list | ansible / exed |"
	print "|---|---|---|---|---|"
	for (n in sizes) ns[++k] = n + 0
	for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (ns[j] < ns[i]) { t = ns[i]; ns[i] = ns[j]; ns[j] = t }
	split("ini yml nested", fms, " ")
	for (i = 1; i <= k; i++) for (f = 1; f <= 3; f++) {
		fm = fms[f]; n = ns[i]
		a = ((fm, n) in ans) ? fmt(ans[fm, n]) : "-"
		r = ((fm, n) in ans) ? sprintf("%.0fx", ans[fm, n] / load[fm, n]) : "-"
		printf "| %d | %s | %s | %s | %s |\n", n, fm, fmt(load[fm, n]), a, r
	}
	print ""
	printf "| GET /target"; for (i = 1; i <= k; i++) printf " | %d hosts", ns[i]; print " |"
	printf "|---"; for (i = 1; i <= k; i++) printf "|---"; print "|"
	for (q = 1; q <= np; q++) {
		printf "| `%s`", pats[q]
		for (i = 1; i <= k; i++) printf " | %s", ((ns[i], pats[q]) in tgt) ? fmt(tgt[ns[i], pats[q]]) : "-"
		print " |"
	}
}' "$OUT"
