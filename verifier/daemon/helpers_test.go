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
)

// record is one structured log event.
type record struct {
	msg   string
	attrs map[string]string
}

// recorder is a slog.Handler that keeps every event and signals each one.
type recorder struct {
	mu     sync.Mutex
	events []record
	ch     chan record
}

func newRecorder() *recorder { return &recorder{ch: make(chan record, 1024)} }

func (r *recorder) logger() *slog.Logger { return slog.New(recorderHandler{r: r}) }

// wait returns the first event with message msg, waiting up to d.
func (r *recorder) wait(t *testing.T, msg string, d time.Duration) record {
	t.Helper()
	timeout := time.After(d)
	for {
		if ev, ok := r.find(msg); ok {
			return ev
		}
		select {
		case <-r.ch:
		case <-timeout:
			t.Fatalf("no %q event within %v; events %+v", msg, d, r.all())
		}
	}
}

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

func (r *recorder) all() []record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]record(nil), r.events...)
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
	ev := record{rec.Message, a}
	h.r.mu.Lock()
	h.r.events = append(h.r.events, ev)
	h.r.mu.Unlock()
	select {
	case h.r.ch <- ev:
	default:
	}
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

// fakeCoordinator acknowledges hellos and collects audit reports.
type fakeCoordinator struct {
	n       *p2p.Node
	reports chan *wire.AuditReport
}

func newFakeCoordinator(t *testing.T, opts ...p2p.Option) *fakeCoordinator {
	t.Helper()
	n, err := p2p.New(context.Background(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	c := &fakeCoordinator{n: n, reports: make(chan *wire.AuditReport, 16)}
	n.Handle(wire.ControlProtocol, func(_ context.Context, _ *wire.Envelope, m wire.Message, r *p2p.Responder) error {
		if rep, ok := m.(*wire.AuditReport); ok {
			c.reports <- rep
		}
		return r.Reply(&wire.Ack{OK: true})
	}, wire.TypeHello, wire.TypeAuditReport, wire.TypeCheckpointAnnounce)
	return c
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
			if strings.Contains(g, "beluga/verifier/daemon.") && !strings.Contains(g, "beluga/verifier/daemon.Test") {
				left = append(left, g)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
	}
}
