package cli

import (
	"strings"
	"testing"
)

// TestCheatFlagsOnlyInTestBuilds: `beluga solver` has the cheating flags
// only when built with -tags belugacheat (the e2e cheater tests' build);
// the product binary has none.
func TestCheatFlagsOnlyInTestBuilds(t *testing.T) {
	code, out, errs := run(t, "solver", "--help")
	if code != 0 {
		t.Fatalf("solver --help: exit %d: %s", code, errs)
	}
	has := strings.Contains(out, "--cheat-from-step") && strings.Contains(out, "--cheat-inference")
	if has != cheatBuild {
		t.Fatalf("solver --help lists the cheating flags: %v, in a build with belugacheat: %v\n%s", has, cheatBuild, out)
	}
}
