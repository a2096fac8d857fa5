package payout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Clock is a scheduler's time: the current instant and a timer. Tests
// inject a fake one; production uses SystemClock.
type Clock interface {
	Now() time.Time
	// After returns a channel that receives once d has passed.
	After(d time.Duration) <-chan time.Time
}

// SystemClock is the wall clock.
type SystemClock struct{}

// Now is time.Now.
func (SystemClock) Now() time.Time { return time.Now() }

// After is time.After.
func (SystemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Report is what one executed run did.
type Report struct {
	Period     string
	Payees     int
	TotalCents int64
	// Skipped counts payees with a payable balance the run could not pay
	// (no bank details); the executor names them.
	Skipped int
}

// Executor executes payout runs against the ledger. Run must be
// idempotent per period (see the package documentation): running a
// period again returns its stored result and moves no money. Done reports
// whether a period's run is complete (stored and posted), so that a
// restarted scheduler does not run it again.
type Executor interface {
	Run(ctx context.Context, p Period) (Report, error)
	Done(ctx context.Context, p Period) (bool, error)
}

// DefaultRetry is how long a scheduler waits before trying a failed run
// again.
const DefaultRetry = 10 * time.Minute

// Scheduler runs each period's payout once, at its run instant (the 1st
// and 15th by default): on start it runs the period due now
// (Schedule.Due) unless that run is done, then sleeps until the next run
// instant. A failed run is logged at WARN ("payout run failed") and tried
// again after the retry interval; a run that skipped payees is logged at
// WARN ("payout run skipped payees"), a run at INFO ("payout run").
//
// A coordinator down across run instants runs only the latest due period
// when it comes back; that run pays every balance payable then, so
// nothing is lost, only paid later.
type Scheduler struct {
	sched *Schedule
	exec  Executor
	clock Clock
	log   *slog.Logger
	retry time.Duration
}

// SchedulerOption configures a Scheduler.
type SchedulerOption func(*Scheduler)

// WithClock sets the scheduler's clock (default SystemClock).
func WithClock(c Clock) SchedulerOption { return func(s *Scheduler) { s.clock = c } }

// WithLogger sets the scheduler's logger (default: discard).
func WithLogger(l *slog.Logger) SchedulerOption { return func(s *Scheduler) { s.log = l } }

// WithRetry sets how long to wait after a failed run (default
// DefaultRetry); d must be positive.
func WithRetry(d time.Duration) SchedulerOption { return func(s *Scheduler) { s.retry = d } }

// NewScheduler returns a scheduler of sched's periods run by exec.
func NewScheduler(sched *Schedule, exec Executor, opts ...SchedulerOption) (*Scheduler, error) {
	s := &Scheduler{sched: sched, exec: exec, clock: SystemClock{}, log: slog.New(slog.DiscardHandler), retry: DefaultRetry}
	for _, o := range opts {
		o(s)
	}
	switch {
	case sched == nil || exec == nil || s.clock == nil || s.log == nil:
		return nil, fmt.Errorf("%w: scheduler needs a schedule, an executor, a clock and a logger", ErrInvalidSchedule)
	case s.retry <= 0:
		return nil, fmt.Errorf("%w: retry %v", ErrInvalidSchedule, s.retry)
	}
	return s, nil
}

// Run schedules runs until ctx ends; it returns nil then.
func (s *Scheduler) Run(ctx context.Context) error {
	for {
		now := s.clock.Now()
		wait := s.sched.NextRun(now).Sub(now)
		if err := s.RunDue(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			wait = min(wait, s.retry)
		}
		s.log.LogAttrs(ctx, slog.LevelDebug, "next payout run", slog.Time("at", now.Add(wait)))
		select {
		case <-ctx.Done():
			return nil
		case <-s.clock.After(wait):
		}
	}
}

// RunDue executes the period due now unless its run is done, logging
// what happened; it returns the run's error.
func (s *Scheduler) RunDue(ctx context.Context) error {
	p := s.sched.Due(s.clock.Now())
	done, err := s.exec.Done(ctx, p)
	if err == nil && done {
		return nil
	}
	var rep Report
	if err == nil {
		rep, err = s.exec.Run(ctx, p)
	}
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			s.log.LogAttrs(ctx, slog.LevelWarn, "payout run failed", slog.String("period", p.ID()), slog.String("err", err.Error()),
				slog.Duration("retry_in", s.retry))
		}
		return fmt.Errorf("payout run %s: %w", p.ID(), err)
	}
	attrs := []slog.Attr{slog.String("period", p.ID()), slog.Int("payees", rep.Payees), slog.Int64("total_cents", rep.TotalCents), slog.Int("skipped", rep.Skipped)}
	if rep.Skipped > 0 {
		s.log.LogAttrs(ctx, slog.LevelWarn, "payout run skipped payees", append(attrs, slog.String("why", "no bank details: each is named in the run and in a \"payout skipped\" event"))...)
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "payout run", attrs...)
	return nil
}
