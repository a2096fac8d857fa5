package store_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"

	"github.com/beluga-compute/beluga/protocol/store"
)

// levels is a slog.Handler that counts badger's records per level.
type levels struct {
	mu *sync.Mutex
	n  map[slog.Level]int
}

func (h levels) Enabled(context.Context, slog.Level) bool { return true }

func (h levels) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "component" && a.Value.String() == "badger" && r.Message != "" {
			h.mu.Lock()
			h.n[r.Level]++
			h.mu.Unlock()
		}
		return true
	})
	return nil
}

func (h levels) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h levels) WithGroup(string) slog.Handler      { return h }

// TestWithLoggerReceivesBadgersLog: badger's own log lines (opening and
// closing the database) reach the slog logger as component=badger records.
func TestWithLoggerReceivesBadgersLog(t *testing.T) {
	t.Parallel()
	h := levels{mu: &sync.Mutex{}, n: map[slog.Level]int{}}
	b, err := store.Open(t.TempDir(), store.WithLogger(slog.New(h)))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n[slog.LevelInfo]+h.n[slog.LevelDebug] == 0 {
		t.Fatalf("no badger records: %v", h.n)
	}
}
