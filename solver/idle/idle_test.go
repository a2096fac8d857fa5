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
