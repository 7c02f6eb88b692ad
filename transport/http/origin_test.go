package http_test

import (
	"net/http"
	"testing"

	exehttp "github.com/0ops/exed/transport/http"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestServerNames checks which Host headers the API answers to: localhost
// and IP literals always (no DNS rebinding can forge them), configured
// names in any letter case, with or without a port or trailing dot, and any
// name with "*".
func TestServerNames(t *testing.T) {
	cases := []struct {
		names []string
		host  string
		want  int
	}{
		{nil, "localhost:16808", 200},
		{nil, "LOCALHOST.", 200},
		{nil, "127.0.0.1:16808", 200},
		{nil, "[::1]:16808", 200},
		{nil, "[fe80::1%25eth0]:16808", 200},
		{nil, "exed.example.com", 403},
		{nil, "127.0.0.1.nip.io:16808", 403},
		{nil, "localhost.attacker.example", 403},
		{[]string{"exed.example.com"}, "EXED.example.com:443", 200},
		{[]string{"exed.example.com"}, "exed.example.com.", 200},
		{[]string{"exed.example.com"}, "other.example.com", 403},
		{[]string{"*"}, "anything.example", 200},
	}
	for _, c := range cases {
		s := newServer(t, serverOpts{api: exehttp.Options{ServerNames: c.names}})
		req, err := http.NewRequest("GET", s.URL+"/target", nil)
		require.NoError(t, err)
		req.Host = c.host
		res, err := s.Client().Do(req)
		require.NoError(t, err)
		res.Body.Close()
		assert.Equal(t, c.want, res.StatusCode, "names %v, Host %s", c.names, c.host)
	}
}
