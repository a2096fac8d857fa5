package payout

import (
	"fmt"
	"slices"
	"time"
)

// DefaultMinimumPayoutCents is the default minimum payout: $10.00. Smaller
// balances roll over to the next period (bank fees per ACH entry make tiny
// payouts a loss).
const DefaultMinimumPayoutCents int64 = 1000

// MaxRunDay is the latest day of the month a payout can run on: every
// month has a 28th, so every period is at most one month long and every
// month has every run.
const MaxRunDay = 28

// periodIDLayout is the layout of Period.ID.
const periodIDLayout = "2006-01-02"

// Schedule is the payout calendar and policy: on which days of the month
// payouts run, in which time zone, and the minimum amount paid. It is
// immutable after NewSchedule and safe for concurrent use.
type Schedule struct {
	days         []int // sorted, unique, each in 1..MaxRunDay
	loc          *time.Location
	minimumCents int64
}

type scheduleConfig struct {
	days         []int
	loc          *time.Location
	minimumCents int64
}

// Option configures a Schedule.
type Option func(*scheduleConfig)

// WithRunDays sets the days of the month payouts run on (default 1 and 15).
// Each day must be in 1..MaxRunDay; order and repetition do not matter.
func WithRunDays(days ...int) Option {
	return func(c *scheduleConfig) { c.days = slices.Clone(days) }
}

// WithLocation sets the time zone whose local midnight starts a run day
// (default UTC).
func WithLocation(loc *time.Location) Option {
	return func(c *scheduleConfig) { c.loc = loc }
}

// WithMinimumPayoutCents sets the minimum payout in cents (default
// DefaultMinimumPayoutCents). Zero means "any positive whole-cent amount".
func WithMinimumPayoutCents(cents int64) Option {
	return func(c *scheduleConfig) { c.minimumCents = cents }
}

// NewSchedule returns a schedule with the given options applied over the
// defaults (runs on the 1st and 15th, UTC, minimum $10.00).
func NewSchedule(opts ...Option) (*Schedule, error) {
	c := scheduleConfig{days: []int{1, 15}, loc: time.UTC, minimumCents: DefaultMinimumPayoutCents}
	for _, o := range opts {
		o(&c)
	}
	if c.loc == nil {
		return nil, fmt.Errorf("%w: nil location", ErrInvalidSchedule)
	}
	if len(c.days) == 0 {
		return nil, fmt.Errorf("%w: no run days", ErrInvalidSchedule)
	}
	for _, d := range c.days {
		if d < 1 || d > MaxRunDay {
			return nil, fmt.Errorf("%w: run day %d not in 1..%d", ErrInvalidSchedule, d, MaxRunDay)
		}
	}
	if c.minimumCents < 0 || c.minimumCents > MaxEntryCents {
		return nil, fmt.Errorf("%w: minimum payout %d cents not in 0..%d", ErrInvalidSchedule, c.minimumCents, MaxEntryCents)
	}
	days := slices.Clone(c.days)
	slices.Sort(days)
	days = slices.Compact(days)
	return &Schedule{days: days, loc: c.loc, minimumCents: c.minimumCents}, nil
}

// RunDays returns the days of the month payouts run on, ascending.
func (s *Schedule) RunDays() []int { return slices.Clone(s.days) }

// Location returns the schedule's time zone.
func (s *Schedule) Location() *time.Location { return s.loc }

// MinimumPayoutCents returns the minimum payout in cents.
func (s *Schedule) MinimumPayoutCents() int64 { return s.minimumCents }

// Period is the interval [Start, End) between two consecutive payout runs.
// Earnings accrued during it are paid by the run at End, and the period is
// named after End's date. Obtain periods from a Schedule; the zero Period
// is not valid.
type Period struct {
	start, end time.Time // both in the schedule's location
	id         string    // the run day of end
}

// ID is the run date of the period, "YYYY-MM-DD" in the schedule's time
// zone, e.g. "2026-11-15". It is the idempotency key of the period's run:
// see the package documentation for the contract.
func (p Period) ID() string { return p.id }

// Start is the first instant of the period (the previous run instant).
func (p Period) Start() time.Time { return p.start }

// End is the period's run instant, the first instant of the run day in
// the schedule's time zone (local midnight, unless a daylight-saving change
// skips or repeats midnight); it is not part of the period.
func (p Period) End() time.Time { return p.end }

// IsZero reports whether p is the zero Period.
func (p Period) IsZero() bool { return p.end.IsZero() }

// Contains reports whether t is in [Start, End).
func (p Period) Contains(t time.Time) bool { return !t.Before(p.start) && t.Before(p.end) }

// PayeeKey is a canonical, unambiguous key for (period, payee), suitable
// as the seed of the ledger transfer ID that pays payeeID in this period.
// The period ID has a fixed length, so no payee ID can make two keys
// collide.
func (p Period) PayeeKey(payeeID string) string { return "payout/" + p.ID() + "/" + payeeID }

// String returns the period ID.
func (p Period) String() string { return p.ID() }

// PeriodFor returns the period containing t: the one whose run pays what
// accrues at t.
func (s *Schedule) PeriodFor(t time.Time) Period {
	prev, next := s.runsAround(t)
	return Period{start: prev.at, end: next.at, id: next.id}
}

// NextRun returns the first run instant strictly after after.
func (s *Schedule) NextRun(after time.Time) time.Time {
	_, next := s.runsAround(after)
	return next.at
}

// Due returns the most recent period whose run instant is at or before
// now: the period a payout run started at now must execute. It stays the
// same from one run instant until just before the next, so re-executing a
// crashed run executes the same period.
func (s *Schedule) Due(now time.Time) Period {
	cur := s.PeriodFor(now)
	return s.PeriodFor(cur.start.Add(-time.Nanosecond))
}

// ParsePeriodID returns the period whose ID is id. It fails with
// ErrInvalidPeriodID unless id is a canonical YYYY-MM-DD date that is a run
// day of the schedule.
func (s *Schedule) ParsePeriodID(id string) (Period, error) {
	d, err := time.Parse(periodIDLayout, id) // a date, not an instant: no zone
	if err != nil || d.Format(periodIDLayout) != id {
		return Period{}, fmt.Errorf("%w: %q is not YYYY-MM-DD", ErrInvalidPeriodID, id)
	}
	y, m, day := d.Date()
	if !slices.Contains(s.days, day) {
		return Period{}, fmt.Errorf("%w: %s is not a run day", ErrInvalidPeriodID, id)
	}
	at := startOfDay(y, m, day, s.loc)
	p := s.PeriodFor(at.Add(-time.Nanosecond))
	if !p.end.Equal(at) || p.id != id {
		// Only reachable if the zone's rules fold two run days together.
		return Period{}, fmt.Errorf("%w: %s has no run instant", ErrInvalidPeriodID, id)
	}
	return p, nil
}

// run is one run instant and the date of its run day.
type run struct {
	at time.Time
	id string
}

// runsAround returns the last run at or before t and the first one after
// t. Every month holds every run day (days ≤ 28), so the previous, current
// and next months always contain both.
func (s *Schedule) runsAround(t time.Time) (prev, next run) {
	y, m, _ := t.In(s.loc).Date()
	havePrev, haveNext := false, false
	for dm := -1; dm <= 1; dm++ {
		// Normalise month 0 and 13 into the neighbouring years.
		ym := time.Date(y, m+time.Month(dm), 1, 0, 0, 0, 0, time.UTC)
		for _, d := range s.days {
			r := run{
				at: startOfDay(ym.Year(), ym.Month(), d, s.loc),
				id: time.Date(ym.Year(), ym.Month(), d, 0, 0, 0, 0, time.UTC).Format(periodIDLayout),
			}
			if !r.at.After(t) {
				if !havePrev || r.at.After(prev.at) {
					prev, havePrev = r, true
				}
			} else if !haveNext || r.at.Before(next.at) {
				next, haveNext = r, true
			}
		}
	}
	return prev, next
}

// startOfDay returns the first instant of the local day y-m-d in loc:
// midnight, or where a daylight-saving change skips midnight, the instant
// the clocks jump, or where one repeats midnight, the first midnight.
func startOfDay(y int, m time.Month, d int, loc *time.Location) time.Time {
	r := time.Date(y, m, d, 0, 0, 0, 0, loc)
	if ry, rm, rd := r.Date(); ry != y || rm != m || rd != d {
		// Midnight does not exist and Go resolved it to an instant before the
		// jump, on the previous local day: the day begins with the new zone.
		if _, end := r.ZoneBounds(); !end.IsZero() && end.After(r) {
			r = end
		}
	}
	if zs, _ := r.ZoneBounds(); !zs.IsZero() {
		// Midnight may also have happened in the previous zone, before the
		// clocks were turned back over it: that one came first.
		_, prevOff := zs.Add(-time.Nanosecond).Zone()
		c := time.Date(y, m, d, 0, 0, 0, 0, time.FixedZone("", prevOff))
		if c.Before(zs) && c.Before(r) {
			if cy, cm, cd := c.In(loc).Date(); cy == y && cm == m && cd == d {
				r = c.In(loc)
			}
		}
	}
	return r
}
