package exe_test

import (
	"strings"
	"testing"

	"github.com/0ops/exed/exe"
	"github.com/stretchr/testify/assert"
)

// A service name reaches systemctl, service(8) or an init script as an
// argument: one that starts with '-' is read as an option ("--help" exits 0
// and would be reported CHANGED), so it is refused.
func TestServiceNames(t *testing.T) {
	for _, ok := range []string{"nginx", "nginx.service", "getty@tty1", "a", "x-y", "php7.4-fpm", "_x", ":1", "a-", strings.Repeat("a", 256)} {
		assert.True(t, exe.ValidServiceName(ok), ok)
	}
	for _, bad := range []string{"", "-", "--help", "-h", "--all", "-.mount", "a b", "a;b", "a/b", strings.Repeat("a", 257)} {
		assert.False(t, exe.ValidServiceName(bad), bad)
		req := exe.Request{Operate: exe.OpService, Targets: []string{"h"}, Service: exe.ServiceArgs{Name: bad, State: exe.ServiceRestarted}}
		err := req.Validate()
		assert.ErrorIs(t, err, exe.ErrInvalid, bad)
	}
	req := exe.Request{Operate: exe.OpService, Targets: []string{"h"}, Service: exe.ServiceArgs{Name: "--help", State: exe.ServiceRestarted}}
	assert.EqualError(t, req.Validate(), `name: "--help" is not a valid service name (1-256 of A-Z a-z 0-9 @ . _ : -, not starting with -)`)
}
