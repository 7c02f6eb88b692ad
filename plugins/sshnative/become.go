package sshnative

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
)

// become is how a host's commands escalate privileges, as Ansible's
// become plugins of the same name do: sudo or su to user, with the
// password, when there is one, written to their stdin when they prompt
// for it (never on a command line, never logged, never to a command that
// did not ask: it is held back until the prompt shows, and the command's
// own stdin until the command has started as user).
type become struct {
	method   string // "sudo" or "su"
	user     string // "" for sudo's default (root)
	exe      []string
	flags    []string
	password string
	// passwordVar names where a missing password would be set, for
	// messages.
	passwordVar string
}

// becomeMethods are the methods sshnative implements.
var becomeMethods = map[string]bool{"sudo": true, "su": true}

// failedError is a host whose commands cannot run as the inventory asks
// (an unsupported become method): the host is FAILED, never run as
// someone else.
type failedError struct{ err error }

func (e *failedError) Error() string { return e.err.Error() }
func (e *failedError) Unwrap() error { return e.err }

// newBecome returns how commands escalate on a host with settings c whose
// login user, as Ansible knows it, is remoteUser (""; unknown); nil when
// they do not: become is off, or the become user is the login user
// (Ansible's default, allow_same_user false). An error is a *failedError.
func newBecome(c connSettings, remoteUser string) (*become, error) {
	if !escalates(c, remoteUser) {
		return nil, nil
	}
	if !becomeMethods[c.BecomeMethod] {
		return nil, &failedError{fmt.Errorf("become method %q is not supported by sshnative (it supports sudo and su); the command was not run", c.BecomeMethod)}
	}
	b := &become{method: c.BecomeMethod, user: c.BecomeUser, password: c.BecomePassword, passwordVar: "ansible_become_password"}
	var err error
	if b.exe, err = splitShellWords(c.BecomeExe); err != nil || len(b.exe) == 0 {
		return nil, &failedError{fmt.Errorf("ansible_become_exe %q is not a command", c.BecomeExe)}
	}
	if b.flags, err = splitShellWords(c.BecomeFlags); err != nil {
		return nil, &failedError{fmt.Errorf("ansible_become_flags %q: %v", c.BecomeFlags, err)}
	}
	if b.method == "sudo" && b.password != "" {
		b.flags = interactiveSudoFlags(b.flags)
	}
	return b, nil
}

// escalates tells whether commands escalate on a host with settings c
// whose login user is remoteUser (see newBecome).
func escalates(c connSettings, remoteUser string) bool {
	return c.Become && (c.BecomeUser != remoteUser || remoteUser == "")
}

// shortNFlag is a group of short flags with n among them.
var shortNFlag = regexp.MustCompile(`^(-\w*)n(\w*.*)`)

// interactiveSudoFlags drops -n (--non-interactive) so that sudo asks
// for the password, exactly as Ansible's sudo plugin rewrites the flags
// when a password is set.
func interactiveSudoFlags(flags []string) []string {
	var out []string
	for _, f := range flags {
		if f == "-n" || f == "--non-interactive" {
			continue
		}
		if !strings.HasPrefix(f, "--") {
			f = shortNFlag.ReplaceAllString(f, "${1}${2}")
		}
		out = append(out, f)
	}
	return out
}

// newPrompt returns the prompt sudo is told to print, unique per command
// so that no output can be taken for it.
func newPrompt() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "[sudo via exed, key=" + hex.EncodeToString(b) + "] password:"
}

// wrap returns the command line that runs inner (a POSIX sh script)
// as the become user: "exec sudo FLAGS -p PROMPT -u USER /bin/sh -c
// INNER", or "exec su FLAGS USER -c '/bin/sh -c INNER'" (su runs the
// command with the user's login shell, as for Ansible).
func (b *become) wrap(inner, prompt string) string {
	var w strings.Builder
	w.WriteString("exec")
	for _, x := range b.exe {
		w.WriteString(" " + shellQuote(x))
	}
	for _, f := range b.flags {
		w.WriteString(" " + shellQuote(f))
	}
	switch b.method {
	case "sudo":
		w.WriteString(" -p " + shellQuote(prompt))
		if b.user != "" {
			w.WriteString(" -u " + shellQuote(b.user))
		}
		w.WriteString(" /bin/sh -c " + shellQuote(inner))
	case "su":
		if b.user != "" {
			w.WriteString(" " + shellQuote(b.user))
		}
		w.WriteString(" -c " + shellQuote("/bin/sh -c "+shellQuote(inner)))
	}
	return w.String()
}

// pgidPrologue sets __exe_pg to the process group of the shell that
// runs the command as the become user. sudo and su keep the login
// shell's group (or, with a terminal, start a session of their own), so
// the group is read, not assumed: /proc where there is one, else the
// shell's own pid.
const pgidPrologue = `__exe_pg=$$
if { read -r __exe_l </proc/$$/stat; } 2>/dev/null; then set -- ${__exe_l##*) }; __exe_pg=$3; fi
`

// suPrompt is how su asks for a password in any language, as Ansible's su
// plugin recognises it: a line that ends in a colon (ASCII or full-width)
// and optional space, with no newline after it.
var suPrompt = regexp.MustCompile(`(?:^|\n)[^\n]*[:：] ?$`)

// isPrompt tells whether output held back before the command started
// ends in the become method's password prompt.
func (b *become) isPrompt(pending []byte, prompt string) bool {
	if b.method == "sudo" {
		return bytes.HasSuffix(bytes.TrimRight(pending, " "), []byte(prompt))
	}
	return suPrompt.Match(pending)
}

// dropPrompt removes the prompt from output held back.
func (b *become) dropPrompt(pending []byte, prompt string) []byte {
	if b.method == "sudo" {
		if i := bytes.LastIndex(pending, []byte(prompt)); i >= 0 {
			return pending[:i]
		}
		return pending
	}
	if i := bytes.LastIndexByte(pending, '\n'); i >= 0 {
		return pending[:i+1]
	}
	return nil
}

// becomeError is a command that never started because becoming the
// user failed: the host is FAILED with why.
type becomeError struct{ msg string }

func (e *becomeError) Error() string { return e.msg }

// failure explains a session that ended before the command started as
// the become user: prompts is how many times the password was asked for,
// stderr what sudo or su printed.
func (b *become) failure(prompts int, stderr string, status int) error {
	who := b.user
	if who == "" {
		who = "root"
	}
	head := fmt.Sprintf("become %s with %s failed", who, b.method)
	detail := firstLine(stderr)
	switch {
	case prompts > 0 && b.password == "":
		return &becomeError{fmt.Sprintf("%s: %s asked for a password and none is set (%s); the command was not run", head, b.method, b.passwordVar)}
	case prompts > 1:
		return &becomeError{fmt.Sprintf("%s: the password was refused (%s); the command was not run", head, b.passwordVar)}
	case b.method == "sudo" && strings.Contains(stderr, "a password is required"):
		return &becomeError{fmt.Sprintf("%s: sudo needs a password and none is set (%s); the command was not run", head, b.passwordVar)}
	case detail != "":
		return &becomeError{fmt.Sprintf("%s (exit %d): %s; the command was not run", head, status, detail)}
	}
	return &becomeError{fmt.Sprintf("%s (exit %d); the command was not run", head, status)}
}
