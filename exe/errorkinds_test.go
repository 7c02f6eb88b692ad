package exe_test

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"testing"

	"github.com/0ops/exed/exe"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestErrorKindsListEverySentinel keeps the one error table whole: every
// sentinel declared in errors.go has exactly one entry, with a unique reason
// and an HTTP error status, so neither the API nor the plugin protocol can
// miss a kind.
func TestErrorKindsListEverySentinel(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "errors.go", nil, 0)
	require.NoError(t, err)
	var declared []string
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.VAR {
			continue
		}
		for _, s := range g.Specs {
			for _, n := range s.(*ast.ValueSpec).Names {
				if n.IsExported() && n.Name != "ErrorKinds" {
					declared = append(declared, n.Name)
				}
			}
		}
	}
	require.NotEmpty(t, declared)
	byName := map[string]error{
		"ErrInvalid": exe.ErrInvalid, "ErrNotFound": exe.ErrNotFound, "ErrConflict": exe.ErrConflict,
		"ErrRunning": exe.ErrRunning, "ErrFinished": exe.ErrFinished, "ErrNotSupported": exe.ErrNotSupported,
		"ErrNoMatch": exe.ErrNoMatch, "ErrBusy": exe.ErrBusy, "ErrUnavailable": exe.ErrUnavailable,
		"ErrDegraded": exe.ErrDegraded,
	}
	reasons := map[string]bool{}
	for _, name := range declared {
		sentinel, ok := byName[name]
		require.True(t, ok, "%s is declared in errors.go but not known to this test", name)
		n := 0
		for _, k := range exe.ErrorKinds {
			if k.Err == sentinel {
				n++
				assert.False(t, reasons[k.Reason], "reason %q used twice", k.Reason)
				reasons[k.Reason] = true
				assert.GreaterOrEqual(t, k.HTTPStatus, 400, name)
				got, ok := exe.KindByReason(k.Reason)
				assert.True(t, ok)
				assert.Equal(t, k, got)
			}
		}
		assert.Equal(t, 1, n, "%s must be in ErrorKinds once", name)
	}
	assert.Len(t, exe.ErrorKinds, len(declared))
}

func TestKindOf(t *testing.T) {
	k, ok := exe.KindOf(fmt.Errorf("wrapped: %w", &exe.NoMatchError{Hosts: []string{"a"}}))
	require.True(t, ok)
	assert.Equal(t, 404, k.HTTPStatus)
	assert.Equal(t, "no_match", k.Reason)
	k, ok = exe.KindOf(exe.Errorf(exe.ErrBusy, "queue full"))
	require.True(t, ok)
	assert.Equal(t, 503, k.HTTPStatus)
	_, ok = exe.KindOf(errors.New("dial tcp 10.0.0.1:6379: refused"))
	assert.False(t, ok)
	assert.Equal(t, "internal error", exe.PublicMessage(errors.New("dial tcp 10.0.0.1:6379: refused")))
	_, ok = exe.KindOf(nil)
	assert.False(t, ok)
}
