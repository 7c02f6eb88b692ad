package exe_test

import (
	"testing"

	"github.com/0ops/exed/exe"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSchemaMinimumAndPattern(t *testing.T) {
	one := 1.0
	s := exe.Schema{Type: "object", Properties: map[string]exe.Property{
		"batch": {Type: []string{"integer", "string"}, Minimum: &one, Pattern: `^[0-9]+%$`, Default: 1.0},
	}}
	for _, ok := range []any{1.0, 7.0, "25%", "100%"} {
		_, err := s.Validate(map[string]any{"batch": ok})
		assert.NoError(t, err, "%v", ok)
	}
	for bad, msg := range map[any]string{
		0.0:    `taskopts: option "batch" must be at least 1`,
		"25":   `taskopts: option "batch": "25" does not match ^[0-9]+%$`,
		"a%":   `taskopts: option "batch": "a%" does not match ^[0-9]+%$`,
		1.5:    `taskopts: option "batch" must be of type integer or string`,
		"":     `taskopts: option "batch": "" does not match ^[0-9]+%$`,
		-100.0: `taskopts: option "batch" must be at least 1`,
	} {
		_, err := s.Validate(map[string]any{"batch": bad})
		require.Error(t, err, "%v", bad)
		assert.ErrorIs(t, err, exe.ErrInvalid)
		assert.EqualError(t, err, msg)
	}
}
