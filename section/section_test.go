package section_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/0ops/exed/section"
	"github.com/stretchr/testify/assert"
)

func TestGetters(t *testing.T) {
	s := section.New("demo", map[string]string{"n": "7", "b": "Off", "d": "7d", "l": " a, ,b ", "empty": "", "extra": "x"})
	assert.Equal(t, 7, s.Int("n", 1, 1))
	assert.False(t, s.Bool("b", true))
	assert.Equal(t, 7*24*time.Hour, s.Duration("d", 0))
	assert.Equal(t, []string{"a", "b"}, s.List("l", nil))
	assert.Equal(t, "dflt", s.String("empty", "dflt"), "an empty value keeps the default")
	assert.Equal(t, 5*time.Second, s.Duration("absent", 5*time.Second))
	assert.NoError(t, s.Err())
	assert.Equal(t, []string{"extra"}, s.Unused())
	assert.EqualError(t, s.StrictUnused(), "[demo] extra: unknown option")
	assert.True(t, errors.Is(s.StrictUnused(), section.ErrUnknown))
}

func TestFirstErrorNamesTheOption(t *testing.T) {
	s := section.New("demo", map[string]string{"a": "x", "b": "-1s", "c": "maybe"})
	assert.Equal(t, 3, s.Int("a", 3, 1), "a bad value keeps the default")
	s.Duration("b", 0)
	s.Bool("c", false)
	assert.EqualError(t, s.Err(), `[demo] a: "x" is not a whole number of at least 1`)
	for v, ok := range map[string]bool{"90s": true, "1h30m": true, "7d": true, "15": true, "-5": false, "soon": false, "3x": false} {
		_, err := section.ParseDuration(v)
		assert.Equal(t, ok, err == nil, v)
	}
}

// A plugin's Configure reads every option, then reports the first bad one.
func ExampleSection() {
	s := section.New("myexec", map[string]string{"timeout": "90s", "retries": "many", "colour": "blue"})
	timeout := s.Duration("timeout", 30*time.Second)
	retries := s.Int("retries", 3, 0)
	fmt.Println(timeout, retries)
	fmt.Println(s.Err())
	fmt.Println("unknown:", s.Unused())
	// Output:
	// 1m30s 3
	// [myexec] retries: "many" is not a whole number of at least 0
	// unknown: [colour]
}
