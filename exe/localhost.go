package exe

// localhostNames are Ansible's C.LOCALHOST. A target of one of these names
// that no inventory host has names Ansible's localhost: the first
// localhost-like host the inventory lists, else the implicit localhost,
// which is named after the first of these names a pattern uses.
var localhostNames = map[string]bool{"localhost": true, "127.0.0.1": true, "::1": true}

// LockKey is the key under which a mutex job (deploy, task) holds host in
// its JobStore: the host's name, except that Ansible's names of localhost
// (localhost, 127.0.0.1, ::1) share the key "localhost". Without a
// localhost-like host in the inventory they all name the implicit
// localhost, whose name is whichever of them a request names first (see
// Executor.Match): a deploy on "localhost" and one on "127.0.0.1" would
// otherwise run at once on the same machine. An inventory that lists two
// of them as hosts of their own (Ansible warns of a duplicate
// localhost-like entry) has their mutex jobs conflict too.
func LockKey(host string) string {
	if localhostNames[host] {
		return "localhost"
	}
	return host
}
