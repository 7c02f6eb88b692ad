package sshnative

import (
	"encoding/binary"
	"sync"
)

// shared holds, for one inventory, one copy of each part of the hosts'
// setups that hosts of a group have alike: their become, their ssh
// arguments and their endpoints' trust. Each is found by what it is made
// from, so that a host alike to one set up before costs a lookup, not
// splitting and parsing the same strings again, and 100,000 hosts do not
// hold 100,000 copies. Safe for concurrent use.
type shared struct {
	mu      sync.Mutex
	becomes map[becomeInput]becomeResult
	args    map[argsInput]argsResult
	trusts  map[string]*trust // by trust.appendKey
}

func newShared() *shared {
	return &shared{becomes: map[becomeInput]becomeResult{}, args: map[argsInput]argsResult{}, trusts: map[string]*trust{}}
}

// becomeInput is what newBecome makes a become from, once it escalates.
type becomeInput struct {
	method, user, exe, flags, password string
}

type becomeResult struct {
	b   *become
	err error
}

// become is newBecome's answer, the same copy for every host that
// escalates the same way. s nil: a copy of its own.
func (s *shared) become(c connSettings, remoteUser string) (*become, error) {
	if !escalates(c, remoteUser) || s == nil {
		return newBecome(c, remoteUser)
	}
	in := becomeInput{c.BecomeMethod, c.BecomeUser, c.BecomeExe, c.BecomeFlags, c.BecomePassword}
	s.mu.Lock()
	r, ok := s.becomes[in]
	s.mu.Unlock()
	if ok {
		return r.b, r.err
	}
	b, err := newBecome(c, remoteUser)
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.becomes[in]; ok {
		return r.b, r.err // set up alike at the same time
	}
	s.becomes[in] = becomeResult{b, err}
	return b, err
}

// argsInput is what argsOf builds a host's ssh arguments from.
type argsInput struct {
	sshArgs, commonArgs, extraArgs, keyFile, timeout, user string
	port                                                   int
	// hostKeyChecking is 0 unset, 1 on, 2 off.
	hostKeyChecking int8
}

type argsResult struct {
	a   *sshArgs
	err error
}

// maxSharedArgs bounds how many distinct argument sets are kept: hosts
// with settings of their own (a port each) would otherwise keep one per
// host. Past it, a host's arguments are built for it alone.
const maxSharedArgs = 1024

// args is r.argsOf's answer, shared by every host with the same settings
// (up to maxSharedArgs distinct ones): read it, never change it. s nil:
// built anew.
func (s *shared) argsOf(r *resolver, c connSettings, remoteUser string) (*sshArgs, error) {
	if s == nil {
		return r.argsOf(c, remoteUser)
	}
	in := argsInput{sshArgs: c.SSHArgs, commonArgs: c.SSHCommonArgs, extraArgs: c.SSHExtraArgs,
		keyFile: c.PrivateKeyFile, timeout: c.Timeout, user: remoteUser, port: c.Port}
	if c.HostKeyChecking != nil {
		in.hostKeyChecking = 2
		if *c.HostKeyChecking {
			in.hostKeyChecking = 1
		}
	}
	s.mu.Lock()
	res, ok := s.args[in]
	s.mu.Unlock()
	if ok {
		return res.a, res.err
	}
	a, err := r.argsOf(c, remoteUser)
	s.mu.Lock()
	defer s.mu.Unlock()
	if res, ok := s.args[in]; ok {
		return res.a, res.err
	}
	if len(s.args) < maxSharedArgs {
		s.args[in] = argsResult{a, err}
	}
	return a, err
}

// trust returns the copy of t that endpoints share. s nil: a copy of
// its own.
func (s *shared) trust(t trust) *trust {
	if s == nil {
		p := new(trust)
		*p = t
		return p
	}
	var buf [256]byte
	k := t.appendKey(buf[:0])
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.trusts[string(k)]; ok {
		return p
	}
	p := new(trust)
	*p = t
	s.trusts[string(k)] = p
	return p
}

// appendKey appends what identifies t: two trusts with the same key act
// the same. Each list and string is prefixed with its length, so that no
// two differ only in where one entry ends.
func (t *trust) appendKey(b []byte) []byte {
	b = appendStrings(b, t.identities)
	b = appendStrings(b, t.knownHosts)
	b = appendString(b, t.strict)
	b = append(b, boolByte(t.identitiesOnly), boolByte(t.hashKnownHosts))
	b = binary.AppendVarint(b, int64(t.connectTimeout))
	return binary.AppendVarint(b, int64(t.keepAlive))
}

func appendStrings(b []byte, list []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(list)))
	for _, s := range list {
		b = appendString(b, s)
	}
	return b
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}
