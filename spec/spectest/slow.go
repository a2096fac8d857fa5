package spectest

import (
	"os"
	"testing"
)

// SlowEnv is the one switch for expensive tests: real proving, long
// randomized runs, full-size replays. `BELUGA_SLOW=1 go test ./...` runs
// them; without it they are skipped, so the default suite stays fast.
// (-short keeps its Go meaning on top: skip anything over about a second.)
const SlowEnv = "BELUGA_SLOW"

// IsSlow reports whether expensive tests are switched on (BELUGA_SLOW=1),
// for tests that scale their work rather than skip.
func IsSlow() bool { return os.Getenv(SlowEnv) == "1" }

// Slow skips tb unless BELUGA_SLOW=1. Call it first in a test that takes
// more than a few seconds and is covered otherwise in the default run.
func Slow(tb testing.TB) {
	tb.Helper()
	if !IsSlow() {
		tb.Skipf("slow test: set %s=1 to run it", SlowEnv)
	}
}
