# Brings service $1 to state $2 (started, stopped, restarted, reloaded).
# Prints "changed" or "ok" on stdout; the service manager's own output goes
# to stderr. Uses systemd when it runs the host, else service(8), else the
# init script itself. The name arrives as an argument, never as code.
name=$1
action=$2
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	ctl() { systemctl "$1" "$name"; }
	active() { systemctl is-active --quiet "$name"; }
elif command -v service >/dev/null 2>&1; then
	ctl() { service "$name" "$1"; }
	active() { service "$name" status >/dev/null 2>&1; }
elif [ -x "/etc/init.d/$name" ]; then
	ctl() { "/etc/init.d/$name" "$1"; }
	active() { "/etc/init.d/$name" status >/dev/null 2>&1; }
else
	echo "no service manager found (systemd, service or /etc/init.d/$name)" >&2
	exit 3
fi
case $action in
started)
	if active; then echo ok; exit 0; fi
	ctl start >&2 || exit
	;;
stopped)
	if ! active; then echo ok; exit 0; fi
	ctl stop >&2 || exit
	;;
restarted) ctl restart >&2 || exit ;;
reloaded) ctl reload >&2 || exit ;;
*)
	echo "unknown action: $action" >&2
	exit 2
	;;
esac
echo changed
