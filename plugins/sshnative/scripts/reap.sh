# Ends the process groups of commands exed lost track of: commands whose
# process died, or that were cancelled or lost their connection.
#
# $1 is how long to wait after each signal, in tenths of a second; the other
# arguments are run IDs. Every command exed runs exports
# EXE_RUN_ID=<run id>:<pgid>, where pgid is its shell's $$, which leads the
# command's process group. So the processes the command started carry the
# ID in their environment, and its shell carries it (as the text
# EXE_RUN_ID=<run id>:$$) in its command line. A group is signalled only
# while a process still in it carries one of the IDs: a group number reused
# by an unrelated process is left alone, and so is a daemon the command
# started in a session of its own, as a cancel would.
#
# Prints "SIGNAL PGID" for each signal sent. Exit status: 0 when no such
# group is left, 1 when some outlived SIGKILL (processes of another user),
# 3 when the host has no /proc to search.
wait=$1
shift
[ -r /proc/self/environ ] || exit 3
ids=" $* "
groups() {
	grep -a -o -H 'EXE_RUN_ID=[0-9a-z.]*:[0-9$]*' /proc/[0-9]*/environ /proc/[0-9]*/cmdline 2>/dev/null |
		while IFS=: read -r file var pgid; do
			case $ids in *" ${var#EXE_RUN_ID=} "*) ;; *) continue ;; esac
			pid=${file#/proc/}
			pid=${pid%%/*}
			[ "$pgid" = '$$' ] && pgid=$pid
			{ read -r stat <"/proc/$pid/stat"; } 2>/dev/null || continue
			# The fields after the command name: state, ppid, pgrp.
			set -- ${stat##*) }
			[ "$3" = "$pgid" ] && echo "$pgid"
		done | sort -u
}
# alive prints the groups of $left that still hold a process that is not a
# zombie (a zombie has ended; its parent has yet to collect it).
alive() {
	for f in /proc/[0-9]*/stat; do
		{ read -r stat <"$f"; } 2>/dev/null || continue
		set -- ${stat##*) }
		[ "$1" = Z ] && continue
		case " $left " in *" $3 "*) echo "$3" ;; esac
	done | sort -u
}
step=1
left=$(groups)
for sig in HUP TERM KILL; do
	[ -n "$left" ] || exit 0
	for g in $left; do
		kill -s "$sig" -- "-$g" 2>/dev/null && echo "$sig $g"
	done
	waited=0
	while [ "$waited" -lt "$wait" ]; do
		left=$(alive)
		[ -n "$left" ] || exit 0
		# sleep 0.1 is not POSIX: where it fails, whole seconds.
		if [ "$step" != 1 ] || ! sleep 0.1 2>/dev/null; then
			step=10
			sleep 1
		fi
		waited=$((waited + step))
	done
done
[ -z "$(alive)" ]
