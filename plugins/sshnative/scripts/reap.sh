# Ends the process groups of commands exed lost track of: commands whose
# process died, or that were cancelled or lost their connection.
#
# $1 is how long to wait after each signal, in tenths of a second; the other
# arguments are run IDs. Every command exed runs exports
# EXE_RUN_ID=<run id>:<pgid>, where pgid is its shell's $$, which leads the
# command's session and its first process group (sshd, and exed locally,
# start the shell with setsid). So the processes the command started carry
# the ID in their environment, and its shell carries it (as the text
# EXE_RUN_ID=<run id>:$$) in its command line. A group is signalled only
# while a process still in it carries one of the IDs and sits in the
# command's session (or, as written by older versions, in its group): the
# groups commands move to (GNU timeout, setpgid(0, 0)) are ended with the
# command, while a group number reused by an unrelated process is left
# alone, and so is a daemon the command started in a session of its own, as
# a cancel would.
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
			# The fields after the command name: state, ppid, pgrp, session.
			set -- ${stat##*) }
			[ "$1" = Z ] && continue
			[ "$3" = "$pgid" ] || [ "$4" = "$pgid" ] && echo "$3"
		done | sort -u
}
# alive prints the groups of $left that still hold a process that is not a
# zombie (a zombie has ended; its parent has yet to collect it).
alive() {
	l=" $(echo $left) " # one line
	for f in /proc/[0-9]*/stat; do
		{ read -r stat <"$f"; } 2>/dev/null || continue
		set -- ${stat##*) }
		[ "$1" = Z ] && continue
		case $l in *" $3 "*) echo "$3" ;; esac
	done | sort -u
}
step=1
left=
for sig in HUP TERM KILL; do
	# Groups made since the last look (a process that moved meanwhile) are
	# ended too; those already found stay until they have no process left.
	left=$({
		alive
		groups
	} | sort -u)
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
