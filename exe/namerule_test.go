package exe

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// The rules as regular expressions: what each accepts is written here
// once more, and the byte loops must agree with it.
var nameRuleSpecs = []struct {
	name string
	rule *nameRule
	re   *regexp.Regexp
}{
	{"host", hostNameRule, regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,252}$`)},
	{"service", serviceNameRule, regexp.MustCompile(`^[A-Za-z0-9@._:][A-Za-z0-9@._:-]{0,255}$`)},
	{"role", roleNameRule, regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)},
	{"tasktype", taskTypeRule, regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)},
}

// TestNameRulesMatchTheirRegexps: every byte at the start, in the middle
// and at the end, every length around each rule's limit, and random
// names over the alphabets' edges.
func TestNameRulesMatchTheirRegexps(t *testing.T) {
	var cases []string
	for b := range 256 {
		c := string([]byte{byte(b)})
		cases = append(cases, c, c+"a", "a"+c, "a"+c+"a")
	}
	for _, n := range []int{0, 1, 2, 63, 64, 65, 127, 128, 129, 252, 253, 254, 255, 256, 257} {
		cases = append(cases, strings.Repeat("a", n), "_"+strings.Repeat("-", n), strings.Repeat("9", n)+"\n")
	}
	const alphabet = "aZ09_.-@:/ \n\x00\xff\u00e9*[],!&~"
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		b := make([]byte, rnd.IntN(12))
		for i := range b {
			b[i] = alphabet[rnd.IntN(len(alphabet))]
		}
		cases = append(cases, string(b))
	}
	for _, spec := range nameRuleSpecs {
		for _, c := range cases {
			if got, want := spec.rule.match(c), spec.re.MatchString(c); got != want {
				t.Errorf("%s rule on %q: %v, its regexp says %v", spec.name, c, got, want)
			}
		}
	}
}

func FuzzNameRules(f *testing.F) {
	for _, s := range []string{"web01", "-x", "getty@tty1", "a.b-c_d", "", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, spec := range nameRuleSpecs {
			if got, want := spec.rule.match(s), spec.re.MatchString(s); got != want {
				t.Errorf("%s rule on %q: %v, its regexp says %v", spec.name, s, got, want)
			}
		}
	})
}

func BenchmarkValidHostName(b *testing.B) {
	for range b.N {
		if !ValidHostName("web-0123.dc1.example.com") {
			b.Fatal("refused")
		}
	}
}
