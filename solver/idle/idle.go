// Package idle decides when a solver may use the machine: only while its
// owner is not (the GPU or the CPU is otherwise idle). A Gate samples the
// machine (CPU: gopsutil, on Linux, macOS and Windows; GPU: NVML); when
// the owner has been back for BusyFor it closes, and the solver pauses at
// its next step boundary (checkpoint) and withdraws its offer; when the
// machine has been idle for Grace it opens again and the solver resumes
// from that checkpoint. The clock and the sampler are injected, so
// behaviour is deterministic in tests.
//
// # Hysteresis
//
// The gate does not flap on a machine whose load comes and goes: to
// close, busy time must outweigh idle time by BusyFor (each busy sample
// adds the time since the previous sample, each idle one takes it away,
// never below zero); to open, the machine must be idle for Grace without a
// single busy sample. A load that alternates busy and idle keeps an open
// gate open and a closed gate closed.
package idle

import (
	"context"
	"sync"
	"time"
)

// Reading is one sample of the machine.
type Reading struct {
	Busy bool
	Why  string // what made it busy, for the log
}

// Sampler reads the machine.
type Sampler func() (Reading, error)

// Clock is the gate's notion of time.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Config tunes a Gate.
type Config struct {
	// Interval between samples (default 1 s).
	Interval time.Duration
	// Grace: the machine must be idle this long, without a busy sample,
	// before the gate reopens (default 30 s; negative: at once).
	Grace time.Duration
	// BusyFor: busy time must outweigh idle time by this much before the
	// gate closes (see Hysteresis); 0 closes at the first busy sample.
	BusyFor time.Duration
	Clock   Clock
	// Changed, if set, is told each transition.
	Changed func(open bool, why string)
}

// Gate is open while the solver may run.
type Gate struct {
	cfg    Config
	sample Sampler

	mu        sync.Mutex
	open      bool
	idleSince time.Time
	// busyScore is the net busy time while open (see Hysteresis);
	// lastSample is when the previous sample was taken.
	busyScore  time.Duration
	lastSample time.Time
	openCh     chan struct{} // closed while open
	busyCh     chan struct{} // closed when the current open period ends
}

// NewGate returns a gate, initially open, that Run keeps up to date.
func NewGate(s Sampler, cfg Config) *Gate {
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.Grace < 0 {
		cfg.Grace = 0
	} else if cfg.Grace == 0 {
		cfg.Grace = 30 * time.Second
	}
	if cfg.BusyFor < 0 {
		cfg.BusyFor = 0
	}
	if cfg.Clock == nil {
		cfg.Clock = realClock{}
	}
	g := &Gate{cfg: cfg, sample: s, open: true, openCh: make(chan struct{}), busyCh: make(chan struct{})}
	close(g.openCh)
	return g
}

// Run samples until ctx ends.
func (g *Gate) Run(ctx context.Context) {
	for {
		g.Step()
		select {
		case <-ctx.Done():
			return
		case <-g.cfg.Clock.After(g.cfg.Interval):
		}
	}
}

// Step takes one sample and updates the gate. A sampler error counts as
// busy: when unsure, leave the machine to its owner.
func (g *Gate) Step() {
	r, err := g.sample()
	if err != nil {
		r = Reading{Busy: true, Why: "cannot read the machine: " + err.Error()}
	}
	now := g.cfg.Clock.Now()
	g.mu.Lock()
	dt := g.cfg.Interval
	if !g.lastSample.IsZero() && now.After(g.lastSample) {
		dt = now.Sub(g.lastSample)
	}
	g.lastSample = now
	var changed, open bool
	switch {
	case r.Busy:
		g.idleSince = time.Time{}
		if g.open {
			g.busyScore += dt
		}
		if g.open && g.busyScore >= g.cfg.BusyFor {
			g.open, changed, g.busyScore = false, true, 0
			g.openCh = make(chan struct{})
			close(g.busyCh)
		}
	case g.open:
		g.busyScore = max(g.busyScore-dt, 0)
	case !g.open:
		if g.idleSince.IsZero() {
			g.idleSince = now
		}
		if now.Sub(g.idleSince) >= g.cfg.Grace {
			g.open, changed, open = true, true, true
			g.busyCh = make(chan struct{})
			close(g.openCh)
			r.Why = "idle for " + g.cfg.Grace.String()
		}
	}
	g.mu.Unlock()
	if changed && g.cfg.Changed != nil {
		g.cfg.Changed(open, r.Why)
	}
}

// Open reports whether the solver may run now.
func (g *Gate) Open() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.open
}

// Wait blocks until the gate is open.
func (g *Gate) Wait(ctx context.Context) error {
	g.mu.Lock()
	ch := g.openCh
	g.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Busy returns a channel closed when the current open period ends (at
// once if the gate is closed).
func (g *Gate) Busy() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.open {
		c := make(chan struct{})
		close(c)
		return c
	}
	return g.busyCh
}
