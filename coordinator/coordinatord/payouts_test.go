package coordinatord

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// recorder is a slog handler that keeps records and announces each.
type recorder struct {
	mu   sync.Mutex
	recs []slog.Record
	seen chan string
}

func (h *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *recorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.recs = append(h.recs, r.Clone())
	h.mu.Unlock()
	select {
	case h.seen <- r.Message:
	default:
	}
	return nil
}
func (h *recorder) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recorder) WithGroup(string) slog.Handler      { return h }

func (h *recorder) count(level slog.Level, msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, r := range h.recs {
		if r.Level == level && r.Message == msg {
			n++
		}
	}
	return n
}

// await waits for a record with message msg (a hang fails, it is not a
// timing assumption).
func (h *recorder) await(t *testing.T, msg string) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case m := <-h.seen:
			if m == msg {
				return
			}
		case <-deadline:
			t.Fatalf("no %q event", msg)
		}
	}
}

// blockedClock is the wall clock whose timers never fire: the scheduler
// runs the due period and then sleeps for good.
type blockedClock struct{}

func (blockedClock) Now() time.Time                       { return time.Now() }
func (blockedClock) After(time.Duration) <-chan time.Time { return make(chan time.Time) }

// TestCoordinatorWarnsAndSchedulesPayouts: a coordinator without a vault
// key says so at WARN when it opens; its payout scheduler runs the due
// period by itself, and a restart over the same data runs it no more.
func TestCoordinatorWarnsAndSchedulesPayouts(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for round := range 2 {
		rec := &recorder{seen: make(chan string, 64)}
		c, err := Open(ctx, Config{DataDir: dir, Logger: slog.New(rec), Payouts: PayoutConfig{Clock: blockedClock{}}})
		if err != nil {
			t.Fatal(err)
		}
		if rec.count(slog.LevelWarn, "no vault key configured: solvers and verifiers cannot register bank details and payout runs pay nobody") != 1 {
			t.Fatal("no WARN about the missing vault key")
		}
		rec.await(t, "next payout run") // the scheduler has done its start-up run and sleeps
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		want := 1 - round // the second start finds the run done
		if got := rec.count(slog.LevelInfo, "payout run"); got != want {
			t.Fatalf("start %d: %d payout runs, want %d", round+1, got, want)
		}
	}
}
