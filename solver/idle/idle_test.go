package idle

import (
	"context"
	"sync"
	"testing"
	"time"
)

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) After(time.Duration) <-chan time.Time {
	ch := make(chan time.Time)
	return ch // Run is not used with the fake clock; tests call Step
}
func (c *fakeClock) advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

func TestGateClosesAtOnceAndReopensAfterGrace(t *testing.T) {
	t.Parallel()
	clk := &fakeClock{now: time.Unix(1000, 0)}
	busy := false
	var changes []bool
	g := NewGate(func() (Reading, error) { return Reading{Busy: busy, Why: "owner"}, nil },
		Config{Grace: 10 * time.Second, Clock: clk, Changed: func(open bool, _ string) { changes = append(changes, open) }})
	if !g.Open() {
		t.Fatal("a new gate is closed")
	}
	period := g.Busy()
	g.Step()
	if !g.Open() {
		t.Fatal("closed while idle")
	}
	busy = true
	g.Step()
	if g.Open() {
		t.Fatal("open while the owner is back")
	}
	select {
	case <-period:
	default:
		t.Fatal("the open period's Busy channel did not close")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	if g.Wait(ctx) == nil {
		t.Fatal("Wait returned while closed")
	}
	cancel()
	busy = false
	g.Step() // idle from now
	clk.advance(9 * time.Second)
	g.Step()
	if g.Open() {
		t.Fatal("reopened before the grace period")
	}
	busy = true // a blip resets the grace period
	g.Step()
	busy = false
	g.Step()
	clk.advance(9 * time.Second)
	g.Step()
	if g.Open() {
		t.Fatal("a busy blip did not reset the grace period")
	}
	clk.advance(2 * time.Second)
	g.Step()
	if !g.Open() || g.Wait(context.Background()) != nil {
		t.Fatal("not reopened after the grace period")
	}
	if len(changes) != 2 || changes[0] || !changes[1] {
		t.Fatalf("transitions %v", changes)
	}
}

func TestSamplerErrorMeansBusy(t *testing.T) {
	t.Parallel()
	g := NewGate(func() (Reading, error) { return Reading{}, context.Canceled }, Config{Grace: time.Second})
	g.Step()
	if g.Open() {
		t.Fatal("an unreadable machine was treated as idle")
	}
}

func TestCPUSamplerReads(t *testing.T) {
	t.Parallel()
	s := CPU(90)
	if _, err := s(); err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	if _, err := s(); err != nil {
		t.Fatal(err)
	}
}

// transitions runs the gate over samples, one per second of the fake
// clock, and returns each transition (true: opened).
func transitions(g *Gate, clk *fakeClock, samples []bool, busy *bool) []bool {
	var out []bool
	g.cfg.Changed = func(open bool, _ string) { out = append(out, open) }
	for _, b := range samples {
		*busy = b
		g.Step()
		clk.advance(time.Second)
	}
	return out
}

func TestGateDoesNotFlapOnAlternatingLoad(t *testing.T) {
	t.Parallel()
	alternating := make([]bool, 600) // ten minutes of busy, idle, busy, …
	for i := range alternating {
		alternating[i] = i%2 == 0
	}
	for _, tc := range []struct {
		name   string
		closed bool // the gate starts closed
	}{{"open stays open", false}, {"closed stays closed", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clk := &fakeClock{now: time.Unix(1000, 0)}
			busy := false
			g := NewGate(func() (Reading, error) { return Reading{Busy: busy}, nil },
				Config{Interval: time.Second, Grace: 30 * time.Second, BusyFor: 10 * time.Second, Clock: clk})
			if tc.closed {
				for range 10 {
					busy = true
					g.Step()
					clk.advance(time.Second)
				}
				if g.Open() {
					t.Fatal("ten busy seconds did not close the gate")
				}
			}
			if got := transitions(g, clk, alternating, &busy); len(got) != 0 {
				t.Fatalf("the gate changed %d times on an alternating load: %v", len(got), got)
			}
			if g.Open() == tc.closed {
				t.Fatalf("open=%v after the alternating load", g.Open())
			}
		})
	}
}

func TestGateClosesAfterBusyForAndReopensAfterGrace(t *testing.T) {
	t.Parallel()
	clk := &fakeClock{now: time.Unix(1000, 0)}
	busy := false
	g := NewGate(func() (Reading, error) { return Reading{Busy: busy}, nil },
		Config{Interval: time.Second, Grace: 20 * time.Second, BusyFor: 5 * time.Second, Clock: clk})
	// Four busy seconds: not yet.
	samples := []bool{true, true, true, true}
	if got := transitions(g, clk, samples, &busy); len(got) != 0 || !g.Open() {
		t.Fatalf("closed before BusyFor: %v", got)
	}
	// Mostly busy (3 of 4): the net busy time reaches BusyFor.
	samples = []bool{true, false, true, true, true, false, true, true}
	if got := transitions(g, clk, samples, &busy); len(got) != 1 || got[0] || g.Open() {
		t.Fatalf("a mostly busy machine did not close the gate once: %v", got)
	}
	idle := make([]bool, 25)
	if got := transitions(g, clk, idle, &busy); len(got) != 1 || !got[0] || !g.Open() {
		t.Fatalf("25 idle seconds did not reopen the gate once: %v", got)
	}
}

func TestCPUFromCountsOtherProcessesOnly(t *testing.T) {
	t.Parallel()
	var now CPUTimes
	s := CPUFrom(func() (CPUTimes, error) { return now, nil }, 50)
	if r, err := s(); err != nil || r.Busy {
		t.Fatalf("first sample %+v %v", r, err)
	}
	// 10 s of CPU: 8 busy, 7 of them ours.
	now = CPUTimes{Total: 10, Busy: 8, Self: 7}
	if r, _ := s(); r.Busy {
		t.Fatalf("our own load counted as the owner's: %+v", r)
	}
	// 10 s more: 9 busy, 1 ours: others at 80%.
	now = CPUTimes{Total: 20, Busy: 17, Self: 8}
	if r, _ := s(); !r.Busy || r.Why == "" {
		t.Fatalf("others at 80%% read idle: %+v", r)
	}
}
