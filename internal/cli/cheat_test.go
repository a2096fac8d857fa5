package cli

import (
	"strings"
	"testing"
)

// TestCheatFlagsOnlyInTestBuilds: `beluga solver` and `beluga verifier`
// have the cheating flags only when built with -tags belugacheat (the e2e
// cheater tests' build); the product binary has none of them.
func TestCheatFlagsOnlyInTestBuilds(t *testing.T) {
	for cmd, flags := range map[string][]string{
		"solver":   {"--cheat-from-step", "--cheat-inference"},
		"verifier": {"--cheat-pass"},
	} {
		code, out, errs := run(t, cmd, "--help")
		if code != 0 {
			t.Fatalf("%s --help: exit %d: %s", cmd, code, errs)
		}
		for _, f := range flags {
			if has := strings.Contains(out, f); has != cheatBuild {
				t.Errorf("%s --help lists %s: %v, in a build with belugacheat: %v", cmd, f, has, cheatBuild)
			}
		}
	}
}
