# Prints this host's facts as one JSON object on stdout. POSIX sh, no
# arguments; every probe falls back quietly when a tool or file is missing.
# Facts are gathered as "type<TAB>key<TAB>value" lines (s: string, n: number,
# a: array element) and turned into JSON, escaped, by one awk at the end, so
# the whole run costs a handful of processes.
h=$(hostname 2>/dev/null || uname -n)
f=$(hostname -f 2>/dev/null) || f=$h
[ -n "$f" ] || f=$h
cpus=$(getconf _NPROCESSORS_ONLN 2>/dev/null || nproc 2>/dev/null)
{
	printf 's\thostname\t%s\n' "$h"
	printf 's\tfqdn\t%s\n' "$f"
	printf 's\tsystem\t%s\ns\tkernel\t%s\ns\tarchitecture\t%s\n' "$(uname -s)" "$(uname -r)" "$(uname -m)"
	printf 'n\tprocessor_count\t%s\n' "$cpus"
	[ -r /etc/os-release ] && awk -F= '
		$1 == "ID" || $1 == "VERSION_ID" || $1 == "PRETTY_NAME" {
			v = $0; sub(/^[^=]*=/, "", v); gsub(/^["'\'']|["'\'']$/, "", v)
			k = $1 == "ID" ? "distribution" : $1 == "VERSION_ID" ? "distribution_version" : "distribution_pretty"
			printf "s\t%s\t%s\n", k, v
		}' /etc/os-release
	[ -r /proc/meminfo ] && awk '/^MemTotal:/ { printf "n\tmemtotal_mb\t%d\n", $2 / 1024 }' /proc/meminfo
	[ -r /proc/uptime ] && awk '{ printf "n\tuptime_seconds\t%d\n", $1 }' /proc/uptime
	if command -v ip >/dev/null 2>&1; then
		ip -o -4 addr show 2>/dev/null | awk '{ split($4, a, "/"); printf "a\tipv4_addresses\t%s\n", a[1] }'
	elif [ -r /proc/net/fib_trie ]; then
		awk '/32 host LOCAL/ { print "a\tipv4_addresses\t" ip } { ip = $2 }' /proc/net/fib_trie | sort -u
	fi
} | awk -F '\t' '
	function str(v) {
		gsub(/[\001-\037]/, "", v); gsub(/\\/, "\\\\", v); gsub(/"/, "\\\"", v)
		return "\"" v "\""
	}
	$1 == "s" { out = out sep str($2) ":" str($3); sep = "," }
	$1 == "n" && $3 ~ /^[0-9]+$/ { out = out sep str($2) ":" $3; sep = "," }
	$1 == "a" { arr = arr (arr == "" ? "" : ",") str($3) }
	END { printf "{%s%s\"ipv4_addresses\":[%s]}\n", out, sep, arr }'
