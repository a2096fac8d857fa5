package node

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// event is one structured record the node logged.
type event struct {
	Level slog.Level
	Msg   string
	Attrs map[string]string
}

// recorder is a slog.Handler that keeps every record, for tests to assert
// on events by message and attributes.
type recorder struct {
	mu     sync.Mutex
	events []event
	attrs  []slog.Attr
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }

func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	e := event{Level: rec.Level, Msg: rec.Message, Attrs: map[string]string{}}
	for _, a := range r.attrs {
		e.Attrs[a.Key] = a.Value.String()
	}
	rec.Attrs(func(a slog.Attr) bool {
		e.Attrs[a.Key] = a.Value.String()
		return true
	})
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	return nil
}

func (r *recorder) WithAttrs(as []slog.Attr) slog.Handler {
	return &recorder{attrs: append(append([]slog.Attr(nil), r.attrs...), as...)}
}

func (r *recorder) WithGroup(string) slog.Handler { return r }

// find returns the events with message msg whose attributes include want.
func (r *recorder) find(msg string, want map[string]string) []event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []event
	for _, e := range r.events {
		if e.Msg != msg {
			continue
		}
		ok := true
		for k, v := range want {
			if e.Attrs[k] != v {
				ok = false
			}
		}
		if ok {
			out = append(out, e)
		}
	}
	return out
}

// wait waits up to within for an event like find's.
func (r *recorder) wait(msg string, want map[string]string, within time.Duration) (event, bool) {
	for deadline := time.Now().Add(within); ; time.Sleep(10 * time.Millisecond) {
		if es := r.find(msg, want); len(es) > 0 {
			return es[0], true
		}
		if time.Now().After(deadline) {
			return event{}, false
		}
	}
}

func applyTestConfig(cfg *Config, r *recorder) { cfg.Logger = slog.New(r) }

func closeNode(n *Node) { n.Close() }

// boundedConfig: fastConfig with the job deadline of these tests.
func boundedConfig() Config {
	c := fastConfig()
	c.JobTimeout, c.Tick = jobBound, 100*time.Millisecond
	return c
}
