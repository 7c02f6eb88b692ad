package main

import (
	"testing"

	"github.com/0ops/exed/examples/exed/internal/config"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The shipped etc/exed.conf must load cleanly and say exactly the defaults.
func TestShippedConfIsTheDefaults(t *testing.T) {
	c, warnings, err := config.Load("../../etc/exed.conf")
	require.NoError(t, err)
	assert.Empty(t, warnings)
	want := config.Default()
	want.Path, want.Sections = c.Path, c.Sections
	assert.Equal(t, want, c)
}
