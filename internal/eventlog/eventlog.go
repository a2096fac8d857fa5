// Package eventlog renders structured log records (log/slog) as the
// one-line events the CLI and the devnet print: the message, then its
// attributes as key=value, quoted where they hold spaces. Levels below
// the handler's minimum are dropped; warnings and errors are marked.
package eventlog

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
)

// New returns a logger that hands each record at level Info or above to
// line as one line (without a newline).
func New(line func(string)) *slog.Logger { return slog.New(NewHandler(line, slog.LevelInfo)) }

// NewHandler returns a handler that renders records at min or above as
// lines for line, which is called with the handler's lock held (lines
// never interleave).
func NewHandler(line func(string), min slog.Leveler) slog.Handler {
	return &handler{line: line, min: min, mu: &sync.Mutex{}}
}

type handler struct {
	line   func(string)
	min    slog.Leveler
	mu     *sync.Mutex
	prefix string // rendered WithAttrs attributes
	group  string // WithGroup prefix for keys, with a trailing dot
}

func (h *handler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.min.Level() }

func (h *handler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	switch {
	case r.Level >= slog.LevelError:
		b.WriteString("ERROR ")
	case r.Level >= slog.LevelWarn:
		b.WriteString("WARN ")
	}
	b.WriteString(r.Message)
	b.WriteString(h.prefix)
	r.Attrs(func(a slog.Attr) bool {
		appendAttr(&b, h.group, a)
		return true
	})
	h.mu.Lock()
	defer h.mu.Unlock()
	h.line(b.String())
	return nil
}

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	var b strings.Builder
	for _, a := range as {
		appendAttr(&b, h.group, a)
	}
	c := *h
	c.prefix += b.String()
	return &c
}

func (h *handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.group += name + "."
	return &c
}

func appendAttr(b *strings.Builder, group string, a slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	if a.Value.Kind() == slog.KindGroup {
		g := group
		if a.Key != "" {
			g += a.Key + "."
		}
		for _, x := range a.Value.Group() {
			appendAttr(b, g, x)
		}
		return
	}
	b.WriteByte(' ')
	b.WriteString(group)
	b.WriteString(a.Key)
	b.WriteByte('=')
	v := a.Value.String()
	if v == "" || strings.ContainsAny(v, " \t\n\"=") {
		v = strconv.Quote(v)
	}
	b.WriteString(v)
}
