package sshnative

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// sshArgs is what an ssh command line sets, read as OpenSSH's ssh reads
// its arguments: for each keyword the first value given wins (over
// ssh_config too), IdentityFile adds up, -F replaces the configuration
// files.
type sshArgs struct {
	opts       map[string]string // lower-case keyword -> first value
	identities []string          // -i and -o IdentityFile, in order
	configFile string            // -F; "" when not given
	// ignored are arguments sshnative does not apply and that do not
	// change where or as whom a command runs ("-o Ciphers=aes256-ctr").
	ignored []string
	// refused are arguments that would change where or as whom a command
	// runs and that sshnative cannot apply ("-o ProxyCommand=...", "-W").
	refused []string
}

// appliedKeywords are the ssh_config keywords sshnative applies, from the
// command line and from ssh_config files alike.
var appliedKeywords = map[string]bool{
	"hostname": true, "port": true, "user": true, "identityfile": true, "identitiesonly": true,
	"proxyjump": true, "userknownhostsfile": true, "globalknownhostsfile": true,
	"stricthostkeychecking": true, "connecttimeout": true, "serveraliveinterval": true,
}

// harmlessKeywords are keywords sshnative does not apply because they
// change neither where nor as whom a command runs, nor which host key is
// trusted, nor which keys are offered: connection sharing, compression,
// logging, forwarding, the authentication methods tried besides keys
// (sshnative uses keys only). Ansible's own defaults (-C -o
// ControlMaster=auto -o ControlPersist=60s) are among them.
// UpdateHostKeys (ssh learns more keys of a host it already trusts),
// VerifyHostKeyDNS and NoHostAuthenticationForLocalhost (ssh trusts a key
// known_hosts does not hold) only make sshnative stricter: a host they
// would let in is refused with the host key error naming known_hosts.
var harmlessKeywords = map[string]bool{
	"controlmaster": true, "controlpersist": true, "controlpath": true, "compression": true,
	"serveralivecountmax": true, "tcpkeepalive": true, "connectionattempts": true,
	"kbdinteractiveauthentication": true, "challengeresponseauthentication": true,
	"preferredauthentications": true, "passwordauthentication": true,
	"gssapiauthentication": true, "gssapidelegatecredentials": true, "gssapikeyexchange": true,
	"hostbasedauthentication": true, "batchmode": true, "loglevel": true, "forwardagent": true,
	"forwardx11": true, "forwardx11trusted": true, "sendenv": true, "hashknownhosts": true,
	"addkeystoagent": true, "updatehostkeys": true, "visualhostkey": true,
	"requesttty": true, "escapechar": true, "exitonforwardfailure": true, "clearallforwardings": true,
	"nohostauthenticationforlocalhost": true, "verifyhostkeydns": true, "ipqos": true,
	"numberofpasswordprompts": true, "addressfamily": true,
}

// refusal is an ssh_config keyword sshnative does not implement and that
// changes where or as whom a command runs, which host key is accepted or
// which client keys are offered: ignoring it would make sshnative connect
// where, or trust or offer what, ssh would not.
type refusal struct {
	name string // as OpenSSH's ssh_config(5) spells it
	// allowed tells the values that change nothing sshnative does not do
	// ("none", "no"); nil: every value is refused.
	allowed func(value string) bool
	// why is what ssh does with it, for messages.
	why string
}

// oneOf allows the values given, in any case.
func oneOf(values ...string) func(string) bool {
	return func(v string) bool {
		for _, a := range values {
			if strings.EqualFold(v, a) {
				return true
			}
		}
		return false
	}
}

// refusedKeywords are the refusals, by lower-case keyword; the rules are
// OpenSSH 9's ssh_config(5).
var refusedKeywords = map[string]refusal{
	"proxycommand":         {"ProxyCommand", oneOf("none"), "ssh would connect through it"},
	"remotecommand":        {"RemoteCommand", oneOf("none"), "ssh would run it instead of the command"},
	"hostkeyalias":         {"HostKeyAlias", nil, "ssh would look the host key up under that name"},
	"canonicalizehostname": {"CanonicalizeHostname", oneOf("no"), "ssh would connect to, and check the key of, another name"},
	"tunnel":               {"Tunnel", oneOf("no"), "ssh would open a tunnel device"},
	"localforward":         {"LocalForward", nil, "ssh would forward a port"},
	"remoteforward":        {"RemoteForward", nil, "ssh would forward a port"},
	"dynamicforward":       {"DynamicForward", nil, "ssh would forward a port"},
	"revokedhostkeys": {"RevokedHostKeys", oneOf("none"),
		"ssh refuses the host keys that file lists, and every host key when it cannot read it"},
	"knownhostscommand": {"KnownHostsCommand", oneOf("none"),
		"ssh would trust the host keys the command prints"},
	"casignaturealgorithms": {"CASignatureAlgorithms", nil,
		"ssh accepts host certificates signed with those algorithms only"},
	// "+list" adds to and "^list" reorders ssh's default: neither makes
	// ssh refuse a host key sshnative accepts.
	"hostkeyalgorithms": {"HostKeyAlgorithms", func(v string) bool { return strings.HasPrefix(v, "+") || strings.HasPrefix(v, "^") },
		"ssh accepts host keys of those algorithms only"},
	"checkhostip": {"CheckHostIP", oneOf("no", "false"),
		"ssh also checks the key known_hosts has for the host's IP address and refuses a mismatch"},
	// Go's crypto/rsa refuses RSA keys under 1024 bits, ssh's default.
	"requiredrsasize": {"RequiredRSASize", func(v string) bool { n, err := strconv.Atoi(v); return err == nil && n <= 1024 },
		"ssh refuses smaller RSA keys"},
	"identityagent": {"IdentityAgent", oneOf("SSH_AUTH_SOCK", "$SSH_AUTH_SOCK"),
		"ssh would use that agent's keys (none: no agent) instead of $SSH_AUTH_SOCK's"},
	"pkcs11provider": {"PKCS11Provider", oneOf("none"), "ssh would offer the token's keys"},
	"certificatefile": {"CertificateFile", oneOf("none"),
		"ssh would offer the certificate"},
	"pubkeyauthentication": {"PubkeyAuthentication", oneOf("yes", "true", "unbound", "host-bound"),
		"ssh would offer no key"},
}

// refusalAdvice is what the operator does about a refused keyword.
const refusalAdvice = "not supported by the native SSH executor: use the ansible executor or remove it"

// keywordRefused tells whether an ssh_config keyword with this value
// cannot be honoured and matters.
func keywordRefused(key, value string) bool {
	r, ok := refusedKeywords[key]
	return ok && (r.allowed == nil || !r.allowed(value))
}

// Flags of ssh that take no argument, and those that take one, as in
// ssh(1) of OpenSSH 9.
const (
	sshFlags    = "46AaCfGgKkMNnqsTtVvXxYy"
	sshArgFlags = "BbcDEeFIiJLlmOopQRSWw"
)

// parseSSHArgs adds the arguments of one of Ansible's ssh argument
// settings (ansible_ssh_args, ansible_ssh_common_args,
// ansible_ssh_extra_args), already split into words, to a.
func (a *sshArgs) parse(words []string) {
	if a.opts == nil {
		a.opts = map[string]string{}
	}
	for i := 0; i < len(words); i++ {
		w := words[i]
		if len(w) < 2 || w[0] != '-' {
			a.ignored = append(a.ignored, w)
			continue
		}
	flags:
		for j := 1; j < len(w); j++ {
			c := w[j]
			switch {
			case strings.IndexByte(sshFlags, c) >= 0:
				continue
			case strings.IndexByte(sshArgFlags, c) >= 0:
				val := w[j+1:]
				if val == "" {
					if i+1 >= len(words) {
						a.ignored = append(a.ignored, w)
						break flags
					}
					i++
					val = words[i]
				}
				a.flag(c, val)
				break flags
			default:
				a.ignored = append(a.ignored, w)
				break flags
			}
		}
	}
}

func (a *sshArgs) flag(c byte, val string) {
	switch c {
	case 'o':
		key, value := splitOption(val)
		a.option(key, value, "-o "+val)
	case 'p':
		a.option("port", val, "-p "+val)
	case 'l':
		a.option("user", val, "-l "+val)
	case 'i':
		a.option("identityfile", val, "-i "+val)
	case 'J':
		a.option("proxyjump", val, "-J "+val)
	case 'F':
		if a.configFile == "" {
			a.configFile = val
		}
	case 'W':
		a.refused = append(a.refused, "-W "+val)
	case 'L', 'R', 'D':
		a.refused = append(a.refused, "-"+string(c)+" "+val)
	default:
		a.ignored = append(a.ignored, "-"+string(c)+" "+val)
	}
}

// option records one keyword; arg is how it was written, for messages.
func (a *sshArgs) option(key, value, arg string) {
	key = strings.ToLower(key)
	switch {
	case key == "identityfile":
		a.identities = append(a.identities, value)
	case appliedKeywords[key]:
		if _, set := a.opts[key]; !set {
			a.opts[key] = value
		}
	case harmlessKeywords[key]:
	case keywordRefused(key, value):
		if _, set := a.opts[key]; !set {
			a.opts[key] = value
			a.refused = append(a.refused, arg)
		}
	case refusedKeywords[key].name != "":
		// Turned off: harmless, and it still wins over ssh_config.
		if _, set := a.opts[key]; !set {
			a.opts[key] = value
		}
	default:
		a.ignored = append(a.ignored, arg)
	}
}

// splitOption splits the argument of -o as ssh does: "Key=Value",
// "Key Value" or "Key = Value"; a value in double quotes loses them.
func splitOption(s string) (key, value string) {
	s = strings.TrimSpace(s)
	i := strings.IndexAny(s, "= \t")
	if i < 0 {
		return s, ""
	}
	key, value = s[:i], strings.TrimLeft(s[i:], " \t")
	value = strings.TrimSpace(strings.TrimPrefix(value, "="))
	if len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
		value = value[1 : len(value)-1]
	}
	return key, value
}

// splitShellWords splits a string into words as Python's shlex.split
// does (POSIX mode, no comments), which is how Ansible splits its ssh
// argument settings: whitespace separates words, single quotes keep
// everything, double quotes keep everything but \" \\ \$ and \`, and a
// backslash outside quotes escapes the next character.
func splitShellWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\\':
			inWord = true
			if i+1 < len(s) {
				i++
				cur.WriteByte(s[i])
			}
		case c == '\'':
			inWord = true
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("no closing quotation")
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
		case c == '"':
			inWord = true
			i++
			for ; ; i++ {
				if i >= len(s) {
					return nil, errors.New("no closing quotation")
				}
				if s[i] == '"' {
					break
				}
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(s[i])
			}
		default:
			inWord = true
			cur.WriteByte(c)
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// argsError is a malformed ssh argument setting.
func argsError(name, value string, err error) error {
	return fmt.Errorf("%s %q cannot be split into words: %v", name, value, err)
}
