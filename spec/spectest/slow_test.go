package spectest

import "testing"

// TestSlowSkipsUnlessSwitchedOn: Slow skips without BELUGA_SLOW=1 and
// lets the test run with it.
func TestSlowSkipsUnlessSwitchedOn(t *testing.T) {
	for _, c := range []struct {
		env  string
		skip bool
	}{{"", true}, {"0", true}, {"true", true}, {"1", false}} {
		t.Run("env="+c.env, func(t *testing.T) {
			t.Setenv(SlowEnv, c.env)
			var skipped bool
			inner := func(t *testing.T) {
				defer func() { skipped = t.Skipped() }()
				Slow(t)
			}
			// Run in a subtest so that a skip there does not skip this one.
			t.Run("inner", inner)
			if skipped != c.skip {
				t.Fatalf("BELUGA_SLOW=%q: skipped %v, want %v", c.env, skipped, c.skip)
			}
		})
	}
}
