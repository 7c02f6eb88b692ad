package sshnative

import (
	"errors"
	"fmt"
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
// change neither where nor as whom a command runs, nor how the host is
// trusted: connection sharing, compression, logging, forwarding, the
// authentication methods tried (sshnative uses keys only). Ansible's own
// defaults (-C -o ControlMaster=auto -o ControlPersist=60s) are among them.
var harmlessKeywords = map[string]bool{
	"controlmaster": true, "controlpersist": true, "controlpath": true, "compression": true,
	"serveralivecountmax": true, "tcpkeepalive": true, "connectionattempts": true,
	"kbdinteractiveauthentication": true, "challengeresponseauthentication": true,
	"preferredauthentications": true, "passwordauthentication": true, "pubkeyauthentication": true,
	"gssapiauthentication": true, "gssapidelegatecredentials": true, "gssapikeyexchange": true,
	"hostbasedauthentication": true, "batchmode": true, "loglevel": true, "forwardagent": true,
	"forwardx11": true, "forwardx11trusted": true, "sendenv": true, "hashknownhosts": true,
	"addkeystoagent": true, "updatehostkeys": true, "visualhostkey": true, "checkhostip": true,
	"requesttty": true, "escapechar": true, "exitonforwardfailure": true, "clearallforwardings": true,
	"nohostauthenticationforlocalhost": true, "verifyhostkeydns": true, "ipqos": true,
	"numberofpasswordprompts": true, "identityagent": true, "addressfamily": true,
}

// refusedKeywords change where or as whom a command runs, or which host
// key is accepted, in ways sshnative does not implement; the value that
// turns each off ("none", "no") is harmless.
var refusedKeywords = map[string]string{
	"proxycommand":         "none",
	"remotecommand":        "none",
	"hostkeyalias":         "",
	"canonicalizehostname": "no",
	"tunnel":               "no",
	"localforward":         "",
	"remoteforward":        "",
	"dynamicforward":       "",
}

// keywordRefused tells whether an ssh_config keyword with this value
// cannot be honoured and matters.
func keywordRefused(key, value string) bool {
	off, ok := refusedKeywords[key]
	return ok && (off == "" || !strings.EqualFold(value, off))
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
	case refusedKeywords[key] != "":
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
