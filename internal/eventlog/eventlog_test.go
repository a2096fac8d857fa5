package eventlog

import (
	"errors"
	"log/slog"
	"testing"
)

func TestLines(t *testing.T) {
	t.Parallel()
	var lines []string
	l := New(func(s string) { lines = append(lines, s) })
	l.With("peer", "abc").Info("job assigned", "job", "0123", "step", 7)
	l.Debug("hidden")
	l.Warn("fetch failed", "err", errors.New("no holder could serve"), slog.Group("g", "k", ""))
	want := []string{
		"job assigned peer=abc job=0123 step=7",
		`WARN fetch failed err="no holder could serve" g.k=""`,
	}
	if len(lines) != len(want) {
		t.Fatalf("lines %q", lines)
	}
	for i := range want {
		if lines[i] != want[i] {
			t.Fatalf("line %d: %q, want %q", i, lines[i], want[i])
		}
	}
}
