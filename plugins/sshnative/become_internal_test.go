package sshnative

import (
	"testing"

	"github.com/0ops/exed/inventory"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// With a password, sudo must be allowed to ask for it: -n goes, as in
// Ansible's sudo plugin (which removes the last n of a group of short
// flags; the cases are what Python gives for its rewrite).
func TestInteractiveSudoFlags(t *testing.T) {
	for in, want := range map[string][]string{
		"-H -S -n":                 {"-H", "-S"},
		"-nH -S":                   {"-H", "-S"},
		"-HSn":                     {"-HS"},
		"--non-interactive -E -S":  {"-E", "-S"},
		"-S --preserve-env=PATH":   {"-S", "--preserve-env=PATH"},
		"-S -u-ignored-by-nothing": {"-S", "-u-ignored-by-nothing"},
		"-Sn -in":                  {"-S", "-i"},
	} {
		words, err := splitShellWords(in)
		require.NoError(t, err)
		assert.Equal(t, want, interactiveSudoFlags(words), in)
	}
}

func TestBecomeCommandLines(t *testing.T) {
	sudo, err := newBecome(connSettings{Conn: inventory.Conn{Become: true, BecomeMethod: "sudo", BecomeUser: "app",
		BecomeExe: "sudo", BecomeFlags: "-H -S -n", BecomePassword: "pw"}}, "deploy")
	require.NoError(t, err)
	assert.Equal(t, `exec 'sudo' '-H' '-S' -p '[p]' -u 'app' /bin/sh -c 'id'`, sudo.wrap("id", "[p]"))
	su, err := newBecome(connSettings{Conn: inventory.Conn{Become: true, BecomeMethod: "su", BecomeUser: "app",
		BecomeExe: "su", BecomeFlags: "-l"}}, "root")
	require.NoError(t, err)
	assert.Equal(t, `exec 'su' '-l' 'app' -c '/bin/sh -c '\''id'\'''`, su.wrap("id", ""))

	// Become to the login user is no become, as in Ansible.
	same, err := newBecome(connSettings{Conn: inventory.Conn{Become: true, BecomeMethod: "sudo", BecomeUser: "app", BecomeExe: "sudo"}}, "app")
	require.NoError(t, err)
	assert.Nil(t, same)
	// An unknown login user: Ansible escalates.
	unknown, err := newBecome(connSettings{Conn: inventory.Conn{Become: true, BecomeMethod: "sudo", BecomeUser: "root", BecomeExe: "sudo"}}, "")
	require.NoError(t, err)
	assert.NotNil(t, unknown)
}

func TestPromptRecognition(t *testing.T) {
	sudo := &become{method: "sudo"}
	assert.True(t, sudo.isPrompt([]byte("[sudo via exed, key=1] password:"), "[sudo via exed, key=1] password:"))
	assert.False(t, sudo.isPrompt([]byte("Password:"), "[sudo via exed, key=1] password:"))
	su := &become{method: "su"}
	for _, p := range []string{"Password: ", "Mot de passe : ", "motd line\nPasswort:", "パスワード："} {
		assert.True(t, su.isPrompt([]byte(p), ""), p)
	}
	for _, p := range []string{"su: Authentication failure\n", "no colon here"} {
		assert.False(t, su.isPrompt([]byte(p), ""), p)
	}
	assert.Equal(t, "motd line\n", string(su.dropPrompt([]byte("motd line\nPasswort:"), "")))
}
