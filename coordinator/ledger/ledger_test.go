package ledger

import (
	"testing"
	"time"
)

func TestConformanceMemory(t *testing.T) {
	RunConformance(t, func(t *testing.T, clock func() time.Time) Ledger {
		return NewMemory(WithClock(clock))
	})
}

func TestConformanceBadger(t *testing.T) {
	RunConformance(t, func(t *testing.T, clock func() time.Time) Ledger {
		return openTestBadger(t, "", clock)
	})
}

func TestConformanceBadgerOnDisk(t *testing.T) {
	RunConformance(t, func(t *testing.T, clock func() time.Time) Ledger {
		return openTestBadger(t, t.TempDir(), clock)
	})
}

// openTestBadger opens a Badger ledger in dir, or in memory if dir is "".
func openTestBadger(t testing.TB, dir string, clock func() time.Time) *Badger {
	t.Helper()
	opts := []Option{WithClock(clock)}
	if dir == "" {
		opts = append(opts, WithInMemory())
	}
	b, err := OpenBadger(dir, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
