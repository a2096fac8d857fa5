package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"unicode/utf8"
)

// errDiverged: a retried solver regenerated other bytes than those already
// streamed (one of the two lied); the stream cannot be mended.
var errDiverged = errors.New("a solver's bytes differ from those already streamed")

// sseStream streams a response as server-sent events in OpenAI's chunk
// format. It sends only bytes that can no longer be the start of a stop
// sequence (the client never sees a stop sequence) and that end on a
// UTF-8 boundary.
type sseStream struct {
	w       http.ResponseWriter
	id      string
	model   string
	chat    bool
	stops   [][]byte
	created int64
	sent    []byte // the output bytes sent so far
	started bool
}

func newSSE(w http.ResponseWriter, id, model string, chat bool, stops [][]byte, created int64) *sseStream {
	return &sseStream{w: w, id: id, model: model, chat: chat, stops: stops, created: created}
}

func (s *sseStream) start() {
	if s.started {
		return
	}
	s.started = true
	h := s.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	s.w.WriteHeader(http.StatusOK)
	if s.chat {
		s.chunk(map[string]any{"role": "assistant", "content": ""}, nil, nil)
	}
}

func (s *sseStream) event(v any) error {
	b, _ := json.Marshal(v)
	if _, err := fmt.Fprintf(s.w, "data: %s\n\n", b); err != nil {
		return err
	}
	if f, ok := s.w.(http.Flusher); ok {
		f.Flush()
	}
	return nil
}

// chunk sends one chunk: for chat, delta; else the text delta["content"].
func (s *sseStream) chunk(delta map[string]any, finish *string, extra map[string]any) error {
	c := map[string]any{"id": s.id, "created": s.created, "model": s.model}
	if s.chat {
		c["object"] = "chat.completion.chunk"
		c["choices"] = []any{map[string]any{"index": 0, "delta": delta, "logprobs": nil, "finish_reason": finish}}
	} else {
		c["object"] = "text_completion"
		text, _ := delta["content"].(string)
		c["choices"] = []any{map[string]any{"index": 0, "text": text, "logprobs": nil, "finish_reason": finish}}
	}
	for k, v := range extra {
		c[k] = v
	}
	return s.event(c)
}

// held is how many trailing bytes of out must wait: the longest suffix
// that is a prefix of (or is) a stop sequence.
func (s *sseStream) held(out []byte) int {
	h := 0
	for _, st := range s.stops {
		for k := min(len(st), len(out)); k > h; k-- {
			if bytes.HasSuffix(out, st[:k]) {
				h = k
				break
			}
		}
	}
	return h
}

// push is called with the output so far (it restarts from nothing when a
// request moves to another solver) and sends what is safe to send.
func (s *sseStream) push(out []byte) error {
	if n := len(out); n <= len(s.sent) {
		if out[n-1] != s.sent[n-1] {
			return errDiverged
		}
		return nil
	}
	safe := len(out) - s.held(out)
	// Back off to a UTF-8 boundary.
	for i := max(safe-utf8.UTFMax, len(s.sent)); i < safe; i++ {
		if utf8.RuneStart(out[i]) && !utf8.FullRune(out[i:safe]) {
			safe = i
			break
		}
	}
	if safe <= len(s.sent) {
		return nil
	}
	s.start()
	delta := string(out[len(s.sent):safe])
	s.sent = append(s.sent, out[len(s.sent):safe]...)
	return s.chunk(map[string]any{"content": delta}, nil, nil)
}

// finish sends the rest of text, the finish reason, usage and the receipt,
// and [DONE].
func (s *sseStream) finish(text []byte, finish string, usage map[string]int, receipt string) {
	s.start()
	if len(text) > len(s.sent) {
		s.chunk(map[string]any{"content": string(text[len(s.sent):])}, nil, nil)
	}
	s.chunk(map[string]any{}, &finish, map[string]any{"usage": usage, "receipt": receipt})
	fmt.Fprint(s.w, "data: [DONE]\n\n")
	if f, ok := s.w.(http.Flusher); ok {
		f.Flush()
	}
}

// fail ends a started stream with an error event.
func (s *sseStream) fail(e *apiError) {
	s.event(map[string]any{"error": e})
}
