package daemon

import (
	"context"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beluga-compute/beluga/protocol/net/p2p"
	"github.com/beluga-compute/beluga/protocol/net/wire"
	"github.com/beluga-compute/beluga/spec"
	"github.com/beluga-compute/beluga/spec/catalog"
)

// record is one structured log event.
type record struct {
	msg   string
	attrs map[string]string
}

// recorder is a slog.Handler's store: it keeps every event.
type recorder struct {
	mu     sync.Mutex
	events []record
}

func (r *recorder) logger() *slog.Logger { return slog.New(recorderHandler{r: r}) }

func (r *recorder) find(msg string) (record, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.events {
		if e.msg == msg {
			return e, true
		}
	}
	return record{}, false
}

type recorderHandler struct {
	r     *recorder
	attrs []slog.Attr
}

func (h recorderHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h recorderHandler) Handle(_ context.Context, rec slog.Record) error {
	a := map[string]string{}
	for _, x := range h.attrs {
		a[x.Key] = x.Value.String()
	}
	rec.Attrs(func(x slog.Attr) bool { a[x.Key] = x.Value.String(); return true })
	h.r.mu.Lock()
	h.r.events = append(h.r.events, record{rec.Message, a})
	h.r.mu.Unlock()
	return nil
}
func (h recorderHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return recorderHandler{r: h.r, attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}
func (h recorderHandler) WithGroup(string) slog.Handler { return h }

// clock is a settable clock for TTLs.
type clock struct{ off atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *clock) advance(d time.Duration) { c.off.Add(int64(d)) }

// fakeCoordinator acknowledges a solver's control messages and keeps its
// newest heartbeat and its trace commitments.
type fakeCoordinator struct {
	n       *p2p.Node
	step    atomic.Int64
	commits chan spec.JobID

	mu     sync.Mutex
	traces map[spec.JobID]*wire.TraceCommit // the commitments received
}

// committed returns the trace commitment of job the solver sent, or nil.
func (c *fakeCoordinator) committed(job spec.JobID) *wire.TraceCommit {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.traces[job]
}

func newFakeCoordinator(t *testing.T) *fakeCoordinator {
	t.Helper()
	n, err := p2p.New(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	c := &fakeCoordinator{n: n, commits: make(chan spec.JobID, 16), traces: map[spec.JobID]*wire.TraceCommit{}}
	n.Handle(wire.ControlProtocol, func(_ context.Context, e *wire.Envelope, m wire.Message, r *p2p.Responder) error {
		switch m := m.(type) {
		case *wire.Heartbeat:
			c.step.Store(m.Step)
		case *wire.TraceCommit:
			c.mu.Lock()
			c.traces[spec.JobID(e.Job)] = m
			c.mu.Unlock()
			c.commits <- spec.JobID(e.Job)
		}
		return r.Reply(&wire.Ack{OK: true})
	}, wire.TypeHello, wire.TypeHeartbeat, wire.TypeCheckpointAnnounce, wire.TypeTraceCommit)
	return c
}

// assign gives the solver s's job.
func (c *fakeCoordinator) assign(t *testing.T, solver *p2p.Node, s *spec.Spec) spec.JobID {
	t.Helper()
	js, err := s.JSON()
	if err != nil {
		t.Fatal(err)
	}
	id, err := s.ID()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.n.Request(context.Background(), solver.ID(), wire.AssignProtocol, id, &wire.Assign{SpecJSON: js}, wire.TypeAck); err != nil {
		t.Fatal(err)
	}
	return id
}

// job is the synthetic example with the given length and seed.
func job(t *testing.T, steps int64, seed uint64) *spec.Spec {
	t.Helper()
	s, err := catalog.Example("synthetic")
	if err != nil {
		t.Fatal(err)
	}
	s.Steps, s.Seed = steps, seed
	s.DigestInterval = max(1, steps/100)
	s.CheckpointInterval = s.DigestInterval * 10
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	return s
}

// daemonGoroutines lists the goroutines running code of this package
// (other than tests), waiting up to a second for them to end.
func daemonGoroutines() []string {
	var left []string
	for deadline := time.Now().Add(time.Second); ; time.Sleep(20 * time.Millisecond) {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		left = left[:0]
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "beluga/solver/daemon.") && !strings.Contains(g, "beluga/solver/daemon.Test") {
				left = append(left, g)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
	}
}
