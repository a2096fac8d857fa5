package payout

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"
	_ "time/tzdata" // zones for tests on machines without zoneinfo
)

func mustSchedule(t testing.TB, opts ...Option) *Schedule {
	t.Helper()
	s, err := NewSchedule(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustLoc(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func utc(y int, m time.Month, d, h, min int) time.Time {
	return time.Date(y, m, d, h, min, 0, 0, time.UTC)
}

func TestPeriodFor(t *testing.T) {
	ny := mustLoc(t, "America/New_York")
	saoPaulo := mustLoc(t, "America/Sao_Paulo") // 2018-11-04: clocks jumped from 00:00 to 01:00
	havana := mustLoc(t, "America/Havana")      // 2023-11-05: clocks went back from 01:00 to 00:00
	tests := []struct {
		name       string
		opts       []Option
		t          time.Time
		id         string
		start, end time.Time
	}{
		{"mid period", nil, utc(2026, 11, 20, 10, 0), "2026-12-01", utc(2026, 11, 15, 0, 0), utc(2026, 12, 1, 0, 0)},
		{"at run instant", nil, utc(2026, 11, 15, 0, 0), "2026-12-01", utc(2026, 11, 15, 0, 0), utc(2026, 12, 1, 0, 0)},
		{"just before run", nil, utc(2026, 11, 15, 0, 0).Add(-1), "2026-11-15", utc(2026, 11, 1, 0, 0), utc(2026, 11, 15, 0, 0)},
		{"year end", nil, utc(2026, 12, 20, 0, 0), "2027-01-01", utc(2026, 12, 15, 0, 0), utc(2027, 1, 1, 0, 0)},
		{"new year", nil, utc(2027, 1, 1, 0, 0), "2027-01-15", utc(2027, 1, 1, 0, 0), utc(2027, 1, 15, 0, 0)},
		{"one day a month", []Option{WithRunDays(28)}, utc(2026, 2, 28, 12, 0), "2026-03-28", utc(2026, 2, 28, 0, 0), utc(2026, 3, 28, 0, 0)},
		{"days unsorted and repeated", []Option{WithRunDays(20, 5, 20)}, utc(2026, 3, 10, 0, 0), "2026-03-20", utc(2026, 3, 5, 0, 0), utc(2026, 3, 20, 0, 0)},
		{"new york: utc already the 15th", []Option{WithLocation(ny)}, utc(2026, 11, 15, 3, 0), "2026-11-15",
			time.Date(2026, 11, 1, 0, 0, 0, 0, ny), time.Date(2026, 11, 15, 0, 0, 0, 0, ny)},
		{"new york: local midnight", []Option{WithLocation(ny)}, utc(2026, 11, 15, 5, 0), "2026-12-01",
			time.Date(2026, 11, 15, 0, 0, 0, 0, ny), time.Date(2026, 12, 1, 0, 0, 0, 0, ny)},
		{"skipped midnight: the day starts at 01:00", []Option{WithLocation(saoPaulo), WithRunDays(4)}, utc(2018, 10, 20, 0, 0), "2018-11-04",
			utc(2018, 10, 4, 3, 0), utc(2018, 11, 4, 3, 0)},
		{"repeated midnight: the first one", []Option{WithLocation(havana), WithRunDays(5)}, utc(2023, 10, 20, 0, 0), "2023-11-05",
			utc(2023, 10, 5, 4, 0), utc(2023, 11, 5, 4, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustSchedule(t, tt.opts...)
			p := s.PeriodFor(tt.t)
			if p.ID() != tt.id || !p.Start().Equal(tt.start) || !p.End().Equal(tt.end) {
				t.Fatalf("PeriodFor(%v) = %s [%v, %v), want %s [%v, %v)", tt.t, p.ID(), p.Start(), p.End(), tt.id, tt.start, tt.end)
			}
			if !p.Contains(tt.t) {
				t.Fatalf("period %s does not contain %v", p, tt.t)
			}
			if got := s.NextRun(tt.t); !got.Equal(tt.end) {
				t.Fatalf("NextRun = %v, want %v", got, tt.end)
			}
		})
	}
}

func TestDue(t *testing.T) {
	s := mustSchedule(t)
	tests := []struct {
		now time.Time
		id  string
	}{
		{utc(2026, 11, 15, 0, 0), "2026-11-15"},
		{utc(2026, 11, 15, 9, 30), "2026-11-15"},                // the run, a little late
		{utc(2026, 11, 30, 23, 59), "2026-11-15"},               // re-executed two weeks later: same period
		{utc(2026, 12, 1, 0, 0).Add(-1), "2026-11-15"},          // last instant before the next run
		{utc(2026, 12, 1, 0, 0), "2026-12-01"},                  // the next run
		{utc(2027, 1, 1, 0, 0).Add(-time.Minute), "2026-12-15"}, // year end
	}
	for _, tt := range tests {
		if got := s.Due(tt.now).ID(); got != tt.id {
			t.Errorf("Due(%v) = %s, want %s", tt.now, got, tt.id)
		}
	}
}

func TestParsePeriodID(t *testing.T) {
	s := mustSchedule(t)
	p, err := s.ParsePeriodID("2026-11-15")
	if err != nil {
		t.Fatal(err)
	}
	if want := s.PeriodFor(utc(2026, 11, 3, 0, 0)); p != want {
		t.Fatalf("ParsePeriodID = %v [%v, %v), want %v", p, p.Start(), p.End(), want)
	}
	for _, bad := range []string{"", "2026-11-16", "2026-11-5", "2026-1-15", "2026-11-15x", " 2026-11-15", "2026-02-30", "15/11/2026"} {
		if _, err := s.ParsePeriodID(bad); !errors.Is(err, ErrInvalidPeriodID) {
			t.Errorf("ParsePeriodID(%q) error = %v, want ErrInvalidPeriodID", bad, err)
		}
	}
}

func TestNewScheduleRejects(t *testing.T) {
	for name, opts := range map[string][]Option{
		"day 0":            {WithRunDays(0)},
		"day 29":           {WithRunDays(1, 29)},
		"no days":          {WithRunDays()},
		"nil location":     {WithLocation(nil)},
		"negative minimum": {WithMinimumPayoutCents(-1)},
		"huge minimum":     {WithMinimumPayoutCents(MaxEntryCents + 1)},
	} {
		if _, err := NewSchedule(opts...); !errors.Is(err, ErrInvalidSchedule) {
			t.Errorf("%s: error = %v, want ErrInvalidSchedule", name, err)
		}
	}
	s := mustSchedule(t)
	if got := s.RunDays(); len(got) != 2 || got[0] != 1 || got[1] != 15 {
		t.Errorf("default run days = %v", got)
	}
	if s.Location() != time.UTC || s.MinimumPayoutCents() != 1000 {
		t.Errorf("defaults: %v, %d", s.Location(), s.MinimumPayoutCents())
	}
}

// TestPeriodsTile checks, at random instants over decades and in zones
// with daylight saving (São Paulo moved clocks at midnight), that periods
// contain their instants, follow one another without gaps and round-trip
// through their IDs.
func TestPeriodsTile(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, zone := range []string{"UTC", "America/New_York", "America/Sao_Paulo", "America/Havana", "Pacific/Apia", "Australia/Lord_Howe"} {
		for _, days := range [][]int{{1, 15}, {4}, {1, 8, 15, 22}, {28}} {
			s := mustSchedule(t, WithLocation(mustLoc(t, zone)), WithRunDays(days...))
			lo, hi := utc(1990, 1, 1, 0, 0).Unix(), utc(2060, 1, 1, 0, 0).Unix()
			for range 2000 {
				at := time.Unix(lo+rng.Int64N(hi-lo), rng.Int64N(1e9))
				p := s.PeriodFor(at)
				if !p.Contains(at) || !p.Start().Before(p.End()) {
					t.Fatalf("%s %v: %v not in [%v, %v)", zone, days, at, p.Start(), p.End())
				}
				if next := s.PeriodFor(p.End()); !next.Start().Equal(p.End()) {
					t.Fatalf("%s %v: gap after %s", zone, days, p)
				}
				if prev := s.PeriodFor(p.Start().Add(-1)); !prev.End().Equal(p.Start()) {
					t.Fatalf("%s %v: gap before %s", zone, days, p)
				}
				if q, err := s.ParsePeriodID(p.ID()); err != nil || q != p {
					t.Fatalf("%s %v: ParsePeriodID(%s) = %v, %v", zone, days, p.ID(), q, err)
				}
				if d := s.Due(p.End()); d != p {
					t.Fatalf("%s %v: Due(end of %s) = %s", zone, days, p, d)
				}
				if p.End().Sub(p.Start()) > 32*24*time.Hour {
					t.Fatalf("%s %v: period %s longer than a month", zone, days, p)
				}
			}
		}
	}
}

func TestPayeeKey(t *testing.T) {
	s := mustSchedule(t)
	p := s.PeriodFor(utc(2026, 11, 3, 0, 0))
	if got := p.PayeeKey("solver-42"); got != "payout/2026-11-15/solver-42" {
		t.Fatalf("PayeeKey = %q", got)
	}
}
