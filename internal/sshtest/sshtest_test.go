package sshtest_test

import (
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/0ops/exed/internal/sshtest"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

func dial(t *testing.T, s *sshtest.Server) (*ssh.Client, error) {
	t.Helper()
	key, err := os.ReadFile(s.ClientKey)
	require.NoError(t, err)
	signer, err := ssh.ParsePrivateKey(key)
	require.NoError(t, err)
	hk, err := knownhosts.New(s.KnownHosts)
	require.NoError(t, err)
	return ssh.Dial("tcp", net.JoinHostPort(s.Addr, strconv.Itoa(s.Port)), &ssh.ClientConfig{
		User: s.User, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)}, HostKeyCallback: hk, Timeout: 10 * time.Second})
}

func TestServerAcceptsKeyAndCountsConnections(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	c, err := dial(t, s)
	require.NoError(t, err)
	sess, err := c.NewSession()
	require.NoError(t, err)
	out, err := sess.Output("echo ok")
	require.NoError(t, err)
	require.Equal(t, "ok\n", string(out))
	require.Eventually(t, func() bool { return s.Connections() == 1 }, 10*time.Second, 10*time.Millisecond, s.Log())

	s.Restart(t)
	// The restart dropped the connection.
	_, err = c.NewSession()
	require.Error(t, err)
	c2, err := dial(t, s)
	require.NoError(t, err)
	c2.Close()
	require.Eventually(t, func() bool { return s.Connections() == 2 }, 10*time.Second, 10*time.Millisecond)
}
