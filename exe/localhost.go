package exe

// localhostNames are Ansible's C.LOCALHOST. A target of one of these names
// that no inventory host has names Ansible's localhost: the first
// localhost-like host the inventory lists, else the implicit localhost,
// which is named after the first of these names a pattern uses.
var localhostNames = map[string]bool{"localhost": true, "127.0.0.1": true, "::1": true}
