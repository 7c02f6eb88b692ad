package inventory_test

import (
	"testing"

	"github.com/0ops/exed/inventory"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseVars(t *testing.T) {
	vars, warnings, err := inventory.ParseVars([]byte("a: 1\nb: off\nc: [x, 1.5]\na: 2\nd: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n  3133\n"), "v.yml")
	require.NoError(t, err)
	assert.Equal(t, 2, vars["a"], "a repeated key keeps its last value")
	assert.Equal(t, false, vars["b"])
	assert.Equal(t, []any{"x", 1.5}, vars["c"])
	assert.IsType(t, inventory.Vaulted{}, vars["d"])
	require.Len(t, warnings, 1)
	assert.Contains(t, warnings[0], "v.yml:4: found a duplicate dict key (a)")

	vars, _, err = inventory.ParseVars([]byte(`{"on": yes, "n": 0755}`), "inline")
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"on": true, "n": 493}, vars, "not JSON: read as YAML 1.1")
	vars, _, err = inventory.ParseVars([]byte(`{"on": "yes", "n": 10}`), "inline")
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"on": "yes", "n": 10}, vars, "JSON keeps JSON's types")

	vars, _, err = inventory.ParseVars([]byte("\n"), "empty.yml")
	require.NoError(t, err)
	assert.Nil(t, vars)
	_, _, err = inventory.ParseVars([]byte("- a\n- b\n"), "list.yml")
	assert.EqualError(t, err, "list.yml: a vars file must be a mapping of variable names to values, got a list")
	_, _, err = inventory.ParseVars([]byte("$ANSIBLE_VAULT;1.1;AES256\n6162\n"), "secret.yml")
	assert.ErrorContains(t, err, "encrypted with ansible-vault")
}
