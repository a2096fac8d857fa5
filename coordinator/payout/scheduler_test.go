package payout

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// fakeClock is a Clock that moves only when the test advances it; each
// After call is announced on registered, so a test knows the scheduler is
// asleep before it moves the time.
type fakeClock struct {
	mu         sync.Mutex
	t          time.Time
	waiters    []fakeWaiter
	registered chan time.Duration
}

type fakeWaiter struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock(t time.Time) *fakeClock {
	return &fakeClock{t: t, registered: make(chan time.Duration, 64)}
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.t
	} else {
		c.waiters = append(c.waiters, fakeWaiter{at: c.t.Add(d), ch: ch})
	}
	c.mu.Unlock()
	c.registered <- d
	return ch
}

// set moves the clock to t and fires the timers that are due.
func (c *fakeClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(t) {
			w.ch <- t
		} else {
			kept = append(kept, w)
		}
	}
	c.waiters = kept
}

// fakeExec records runs; done persists across schedulers (a restart).
type fakeExec struct {
	mu    sync.Mutex
	done  map[string]bool
	calls map[string]int
	fail  map[string]int // failures left per period
}

func newFakeExec() *fakeExec {
	return &fakeExec{done: map[string]bool{}, calls: map[string]int{}, fail: map[string]int{}}
}

func (e *fakeExec) Run(_ context.Context, p Period) (Report, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls[p.ID()]++
	if e.fail[p.ID()] > 0 {
		e.fail[p.ID()]--
		return Report{}, errors.New("bank unreachable")
	}
	e.done[p.ID()] = true
	return Report{Period: p.ID(), Payees: 2, TotalCents: 1234, Skipped: 1}, nil
}

func (e *fakeExec) Done(_ context.Context, p Period) (bool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.done[p.ID()], nil
}

func (e *fakeExec) count(id string) int { e.mu.Lock(); defer e.mu.Unlock(); return e.calls[id] }

// events is a slog handler that keeps records.
type events struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *events) Enabled(context.Context, slog.Level) bool { return true }
func (h *events) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r.Clone())
	return nil
}
func (h *events) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *events) WithGroup(string) slog.Handler      { return h }

// find returns the records with message msg and attribute period = id.
func (h *events) find(level slog.Level, msg, id string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, r := range h.recs {
		if r.Level != level || r.Message != msg {
			continue
		}
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "period" && a.Value.String() == id {
				n++
			}
			return true
		})
	}
	return n
}

// asleep waits until the scheduler has set its next timer and returns
// its duration.
func asleep(t *testing.T, c *fakeClock) time.Duration {
	t.Helper()
	select {
	case d := <-c.registered:
		return d
	case <-time.After(10 * time.Second): // a hang, not a timing assumption
		t.Fatal("the scheduler never went to sleep")
		return 0
	}
}

// TestSchedulerRunsEachPeriodOnce: with a fake clock, the scheduler runs
// the due period on start, each later period at its run instant and no
// other time, survives a restart without running a period again, retries
// a failed run, and says what it did in structured events.
func TestSchedulerRunsEachPeriodOnce(t *testing.T) {
	t.Parallel()
	sch, err := NewSchedule()
	if err != nil {
		t.Fatal(err)
	}
	clk := newFakeClock(time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC))
	exec := newFakeExec()
	exec.fail["2026-12-01"] = 1
	log := &events{}
	start := func() (stop func()) {
		s, err := NewScheduler(sch, exec, WithClock(clk), WithLogger(slog.New(log)), WithRetry(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = s.Run(ctx) }()
		return func() { cancel(); <-done }
	}
	want := func(counts map[string]int) {
		t.Helper()
		for id, n := range counts {
			if got := exec.count(id); got != n {
				t.Fatalf("period %s ran %d times, want %d (all: %v)", id, got, n, exec.calls)
			}
		}
	}

	stop := start()
	// On start: the period due now (ended 2026-11-01) runs; the next timer
	// is the 15th's midnight.
	if d := asleep(t, clk); d != 13*24*time.Hour-12*time.Hour {
		t.Fatalf("sleeps %v", d)
	}
	want(map[string]int{"2026-11-01": 1, "2026-11-15": 0})
	if log.find(slog.LevelInfo, "payout run", "2026-11-01") != 1 || log.find(slog.LevelWarn, "payout run skipped payees", "2026-11-01") != 1 {
		t.Fatal("no structured events for the run and its skipped payee")
	}
	// Midnight of the 15th: that period runs, once.
	clk.set(time.Date(2026, 11, 15, 0, 0, 0, 0, time.UTC))
	asleep(t, clk)
	want(map[string]int{"2026-11-01": 1, "2026-11-15": 1})

	// A restart later that day runs nothing again.
	stop()
	clk.set(time.Date(2026, 11, 15, 9, 30, 0, 0, time.UTC))
	stop = start()
	asleep(t, clk)
	want(map[string]int{"2026-11-01": 1, "2026-11-15": 1})

	// The 1st: the run fails, is logged, and is retried an hour later.
	clk.set(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	if d := asleep(t, clk); d != time.Hour {
		t.Fatalf("after a failure it sleeps %v, want the retry hour", d)
	}
	if log.find(slog.LevelWarn, "payout run failed", "2026-12-01") != 1 {
		t.Fatal("the failed run was not logged at WARN")
	}
	clk.set(time.Date(2026, 12, 1, 1, 0, 0, 0, time.UTC))
	asleep(t, clk)
	want(map[string]int{"2026-11-01": 1, "2026-11-15": 1, "2026-12-01": 2})
	if log.find(slog.LevelInfo, "payout run", "2026-12-01") != 1 {
		t.Fatal("the retried run did not complete")
	}
	stop()
	for id := range exec.calls {
		if !exec.done[id] {
			t.Errorf("period %s not done", id)
		}
	}
}

func TestNewSchedulerRejects(t *testing.T) {
	t.Parallel()
	sch, _ := NewSchedule()
	if _, err := NewScheduler(nil, newFakeExec()); !errors.Is(err, ErrInvalidSchedule) {
		t.Errorf("nil schedule: %v", err)
	}
	if _, err := NewScheduler(sch, nil); !errors.Is(err, ErrInvalidSchedule) {
		t.Errorf("nil executor: %v", err)
	}
	if _, err := NewScheduler(sch, newFakeExec(), WithRetry(0)); !errors.Is(err, ErrInvalidSchedule) {
		t.Errorf("zero retry: %v", err)
	}
}
