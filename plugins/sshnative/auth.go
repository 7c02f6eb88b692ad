package sshnative

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// keyring holds the private keys connections authenticate with, and
// offers them per host in OpenSSH's spirit. As ssh reads its identity
// files for every connection, a key file is stat'ed for every connection
// and read again when it changed (see fileStamp): a key rotated in place
// is used, and a key file removed is no longer, from the next connection
// on. A key that cannot be used (missing file, passphrase, not a key) is
// skipped, not fatal: the host's other keys, the configured ones and
// ssh-agent's are tried, and the message of a failed login says which
// keys were tried and which could not be.
type keyring struct {
	// global are the keys tried for every host ([sshnative]
	// private_key_file); defaults are ssh's (~/.ssh/id_ed25519, id_ecdsa,
	// id_rsa), tried when neither the host nor global names any key.
	global, defaults []string
	agentSock        string // "" without ssh-agent

	mu   sync.Mutex
	keys map[string]*loadedKey // by path
}

// loadedKey is a private key file as last read.
type loadedKey struct {
	signer ssh.Signer
	stamp  fileStamp // taken before it was read
	at     time.Time // when
	racy   bool      // the stamp may hide a change (see racyWindow)
}

func newKeyring(opts SSHOptions) *keyring {
	k := &keyring{global: opts.KeyFiles, keys: map[string]*loadedKey{}}
	if home, err := os.UserHomeDir(); err == nil {
		for _, name := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
			k.defaults = append(k.defaults, filepath.Join(home, ".ssh", name))
		}
	}
	if !opts.NoAgent {
		k.agentSock = os.Getenv("SSH_AUTH_SOCK")
	}
	return k
}

// load returns the signer of a private key file, or why it cannot be
// used and, when known, its public key (an encrypted key's, from the file
// or path.pub), by which ssh-agent may hold it.
func (k *keyring) load(path string) (ssh.Signer, ssh.PublicKey, string) {
	at := time.Now()
	stamp := stampOf(path)
	k.mu.Lock()
	l, ok := k.keys[path]
	if ok && (l.stamp != stamp || l.racy && !l.at.After(at)) {
		delete(k.keys, path) // changed, or gone: read it again
		ok = false
	}
	k.mu.Unlock()
	if ok {
		return l.signer, l.signer.PublicKey(), ""
	}
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, "no such file"
		}
		return nil, nil, err.Error()
	}
	s, err := ssh.ParsePrivateKey(b)
	if err == nil {
		k.mu.Lock()
		k.keys[path] = &loadedKey{signer: s, stamp: stamp, at: at, racy: racy([]fileStamp{stamp}, at)}
		k.mu.Unlock()
		return s, s.PublicKey(), ""
	}
	var pass *ssh.PassphraseMissingError
	if errors.As(err, &pass) {
		pub := pass.PublicKey
		if pub == nil {
			if b, err := os.ReadFile(path + ".pub"); err == nil {
				pub, _, _, _, _ = ssh.ParseAuthorizedKey(b)
			}
		}
		return nil, pub, "passphrase-protected, and ssh-agent does not hold it"
	}
	return nil, nil, "not a private key: " + strings.TrimPrefix(err.Error(), "ssh: ")
}

// keysTried says which keys a login offered and which could not be used,
// for the message of a failed login.
type keysTried struct {
	offered  []string
	unusable []string
}

func (t *keysTried) String() string {
	var parts []string
	if len(t.offered) > 0 {
		parts = append(parts, "keys tried: "+strings.Join(t.offered, ", "))
	} else {
		parts = append(parts, "no key could be offered")
	}
	if len(t.unusable) > 0 {
		parts = append(parts, "could not use: "+strings.Join(t.unusable, ", "))
	}
	return strings.Join(parts, "; ")
}

// authFor returns the public key authentication for e: its own keys in
// order (a key ssh-agent holds is used through the agent, so an encrypted
// one works), then the global keys (or ssh's default ones when no key is
// configured at all), then ssh-agent's other keys unless IdentitiesOnly.
// done releases the agent connection once the handshake is over.
func (k *keyring) authFor(e *endpoint) (auth []ssh.AuthMethod, tried *keysTried, done func()) {
	tried = &keysTried{}
	done = func() {}
	var agentKeys []*agent.Key
	var agentSigners []ssh.Signer
	if k.agentSock != "" {
		if c, err := net.Dial("unix", k.agentSock); err == nil {
			ac := agent.NewClient(c)
			agentKeys, _ = ac.List()
			agentSigners, _ = ac.Signers()
			done = func() { c.Close() }
			if len(agentKeys) != len(agentSigners) {
				agentKeys, agentSigners = nil, nil
			}
		} else {
			tried.unusable = append(tried.unusable, fmt.Sprintf("ssh-agent (%v)", err))
		}
	}
	usedAgent := make([]bool, len(agentSigners))
	fromAgent := func(pub ssh.PublicKey) ssh.Signer {
		if pub == nil {
			return nil
		}
		for i, ak := range agentKeys {
			if bytes.Equal(ak.Marshal(), pub.Marshal()) {
				usedAgent[i] = true
				return agentSigners[i]
			}
		}
		return nil
	}
	files := append([]string(nil), e.identities...)
	for _, f := range k.global {
		if !contains(files, f) {
			files = append(files, f)
		}
	}
	quiet := map[string]bool{} // ssh's defaults: a missing one is no news
	if len(files) == 0 {
		for _, f := range k.defaults {
			files = append(files, f)
			quiet[f] = true
		}
	}
	var signers []ssh.Signer
	for _, f := range files {
		s, pub, problem := k.load(f)
		if s == nil {
			s = fromAgent(pub)
			if s != nil {
				tried.offered = append(tried.offered, f+" (through ssh-agent)")
				signers = append(signers, s)
				continue
			}
			if !(quiet[f] && problem == "no such file") {
				tried.unusable = append(tried.unusable, f+" ("+problem+")")
			}
			continue
		}
		if as := fromAgent(pub); as != nil {
			s = as
		}
		tried.offered = append(tried.offered, f)
		signers = append(signers, s)
	}
	if !e.identitiesOnly {
		for i, s := range agentSigners {
			if usedAgent[i] {
				continue
			}
			name := agentKeys[i].Comment
			if name == "" {
				name = agentKeys[i].Type()
			}
			tried.offered = append(tried.offered, "ssh-agent key "+name)
			signers = append(signers, s)
		}
	}
	if len(signers) > 0 {
		auth = []ssh.AuthMethod{ssh.PublicKeys(signers...)}
	}
	return auth, tried, done
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
