package trainer

import (
	"context"
	"log/slog"
	"sync"
)

// event is one structured log record: its message and attributes.
type event struct {
	msg   string
	attrs map[string]string
}

// recorder is a slog.Handler that keeps every record, for tests that
// assert on the node's events.
type recorder struct {
	mu     *sync.Mutex
	events *[]event
}

func newRecorder() recorder { return recorder{mu: &sync.Mutex{}, events: &[]event{}} }

func (r recorder) logger() *slog.Logger { return slog.New(r) }

func (r recorder) Enabled(context.Context, slog.Level) bool { return true }

func (r recorder) Handle(_ context.Context, rec slog.Record) error {
	a := map[string]string{}
	rec.Attrs(func(x slog.Attr) bool { a[x.Key] = x.Value.String(); return true })
	r.mu.Lock()
	defer r.mu.Unlock()
	*r.events = append(*r.events, event{rec.Message, a})
	return nil
}

func (r recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r recorder) WithGroup(string) slog.Handler      { return r }

// of returns the events with message msg.
func (r recorder) of(msg string) []event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []event
	for _, e := range *r.events {
		if e.msg == msg {
			out = append(out, e)
		}
	}
	return out
}
