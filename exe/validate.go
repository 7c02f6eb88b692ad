package exe

import (
	"net/netip"
	"strings"
	"unicode/utf8"
)

var (
	hostNameRule = newNameRule(alnum+"_", alnum+"_.-", 253)
	// A service name is an argument of systemctl, service(8) or an init
	// script, all of which read a leading '-' as an option ("--help" exits
	// 0 having restarted nothing), so it may not start with one.
	serviceNameRule = newNameRule(alnum+"@._:", alnum+"@._:-", 256)
	// Role and tag names become file names (roles/<role>/tags/<tag>.sh) and
	// command-line values, so they are held to a strict alphabet.
	roleNameRule = newNameRule(alnum+"_", alnum+"_.-", 128)
	taskTypeRule = newNameRule(lowerDigits, lowerDigits+"_-", 64)
)

const (
	lowerDigits = "abcdefghijklmnopqrstuvwxyz0123456789"
	alnum       = lowerDigits + "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
)

// nameRule is a name's alphabet: 1 to max bytes, the first one of first,
// the others of rest. Checked a byte at a time, not by a regexp: every
// target of every request goes through it.
type nameRule struct {
	first, rest [256]bool
	max         int
}

func newNameRule(first, rest string, max int) *nameRule {
	r := &nameRule{max: max}
	for i := range len(first) {
		r.first[first[i]] = true
	}
	for i := range len(rest) {
		r.rest[rest[i]] = true
	}
	return r
}

// match reports whether s follows the rule.
func (r *nameRule) match(s string) bool {
	if len(s) == 0 || len(s) > r.max || !r.first[s[0]] {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !r.rest[s[i]] {
			return false
		}
	}
	return true
}

// ValidHostName reports whether name is acceptable as a target: an inventory
// name made of letters, digits, '_', '.' and '-', or an IPv6 address as
// Ansible inventories name hosts (::1, 2001:db8::10, fe80::1%eth0). Other
// pattern characters (* ? [ ] , ! & ~) are never part of a host name, and
// Ansible's pattern rules keep an IPv6 address whole, so a comma-separated
// list of valid names is matched as an exact union.
func ValidHostName(name string) bool {
	if name == AnnounceHost {
		return false
	}
	if hostNameRule.match(name) {
		return true
	}
	a, err := netip.ParseAddr(name)
	return err == nil && a.Is6() && len(name) <= 253 && !strings.ContainsAny(name, ",*?[]!&~ \t")
}

// ValidServiceName reports whether name is a service name exed accepts:
// 1 to 256 of [A-Za-z0-9@._:-], the characters of systemd unit names, not
// starting with '-' (service managers read that as an option).
func ValidServiceName(name string) bool { return serviceNameRule.match(name) }

// Validate checks the request's shape and arguments and normalises it:
// targets are de-duplicated (first occurrence wins). It returns an
// ErrInvalid error naming the offending field; it does not look at the
// inventory or at task schemas (Engine does).
func (r *Request) Validate() error {
	if !r.Operate.Valid() {
		return Errorf(ErrInvalid, "unknown operation %q", r.Operate)
	}
	if len(r.Targets) == 0 {
		return Errorf(ErrInvalid, "targets: at least one host is required")
	}
	if r.Timeout < 0 {
		return Errorf(ErrInvalid, "timeout: must not be negative")
	}
	if r.Forks < 0 {
		return Errorf(ErrInvalid, "forks: must be a positive integer (hosts at once; 0 or absent: the server's concurrency)")
	}
	if r.Forks > 0 && r.Operate == OpTask {
		return Errorf(ErrInvalid, "forks: tasks pace their hosts themselves (as a rolling restart's batch size does); forks applies to ping, facter, service, execute and deploy")
	}
	seen := make(map[string]bool, len(r.Targets))
	uniq := r.Targets[:0:0]
	for _, h := range r.Targets {
		if !ValidHostName(h) {
			return Errorf(ErrInvalid, "targets: %q is not a valid host name", truncate(h, 64))
		}
		if !seen[h] {
			seen[h] = true
			uniq = append(uniq, h)
		}
	}
	r.Targets = uniq
	switch r.Operate {
	case OpService:
		if r.Service.Name == "" {
			return Errorf(ErrInvalid, "name: a service name is required")
		}
		if !ValidServiceName(r.Service.Name) {
			return Errorf(ErrInvalid, "name: %q is not a valid service name (1-256 of A-Z a-z 0-9 @ . _ : -, not starting with -)", truncate(r.Service.Name, 64))
		}
		if r.Service.State < ServiceStarted || r.Service.State > ServiceRestarted {
			return Errorf(ErrInvalid, "state: must be 0 (started), 1 (stopped) or 2 (restarted)")
		}
	case OpExecute:
		if strings.TrimSpace(r.Execute.Cmd) == "" {
			return Errorf(ErrInvalid, "cmd: a command is required")
		}
		if strings.IndexByte(r.Execute.Cmd, 0) >= 0 {
			return Errorf(ErrInvalid, "cmd: must not contain NUL bytes")
		}
		// The command is stored and sent to executors as JSON text, which
		// would silently turn such bytes into U+FFFD: another command.
		if !utf8.ValidString(r.Execute.Cmd) {
			return Errorf(ErrInvalid, `cmd: not valid UTF-8; write other bytes as shell escapes (printf '\351')`)
		}
	case OpDeploy:
		if r.Deploy.Role == "" {
			return Errorf(ErrInvalid, "role: a role name is required")
		}
		if !roleNameRule.match(r.Deploy.Role) {
			return Errorf(ErrInvalid, "role: %q is not a valid role name (letters, digits, _ . -)", truncate(r.Deploy.Role, 64))
		}
		for _, tag := range r.Deploy.Partial {
			if !roleNameRule.match(tag) {
				return Errorf(ErrInvalid, "partial: %q is not a valid tag name (letters, digits, _ . -)", truncate(tag, 64))
			}
		}
	case OpTask:
		if r.Task.Type == "" {
			return Errorf(ErrInvalid, "tasktype: a task type is required")
		}
		if !taskTypeRule.match(r.Task.Type) {
			return Errorf(ErrInvalid, "tasktype: %q is not a valid task type", truncate(r.Task.Type, 64))
		}
		if r.Task.Name == "" {
			r.Task.Name = r.Task.Type
		}
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
