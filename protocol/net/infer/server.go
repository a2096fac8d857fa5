package infer

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/beluga-compute/beluga/protocol/core/inference"
	"github.com/beluga-compute/beluga/spec/gpt"
	"github.com/beluga-compute/beluga/spec/kernel"
	"github.com/beluga-compute/beluga/spec/merkle"
	"github.com/beluga-compute/beluga/spec/strictjson"
)

// AnnounceEvery is how often a server repeats its announcement.
const AnnounceEvery = 5 * time.Second

// RequestReadTimeout bounds how long a server waits for a request frame.
const RequestReadTimeout = 10 * time.Second

// Events a Server logs.
const (
	EventStarted   = "inference started"   // Info: "request"
	EventServed    = "inference served"    // Info: "request", "bytes", "receipt", "ms"
	EventRefused   = "inference refused"   // Info: "request", "code", "why"
	EventAnnounced = "inference announced" // Debug: "coordinator", "models"
)

// Model is a model a server serves: its weights and the digest that names
// them.
type Model struct {
	Digest merkle.Digest
	Config gpt.Config
	State  *gpt.State
}

// Server answers inference requests with the models it holds, Slots at a
// time (one generator per slot and model: a Generator is not safe for
// concurrent use).
type Server struct {
	h      host.Host
	key    ed25519.PrivateKey
	log    *slog.Logger
	gens   map[merkle.Digest]chan *gpt.Generator
	ctxs   map[merkle.Digest]int
	slots  int
	busy   atomic.Int32
	tamper func(req *inference.Request, res *inference.Result)
	mu     sync.Mutex
	wake   chan struct{}
	gate   gate
	disp   *DisputeServer
}

// Restrict makes s (and its dispute answers) serve only peer p, the
// coordinator: other peers' streams are reset unread.
func (s *Server) Restrict(p peer.ID) { s.gate.restrict(p); s.disp.Restrict(p) }

// NewServer returns a server on h signing receipts with key (the host's
// Ed25519 identity key) for models, slots requests at once, each
// generation on threads threads.
func NewServer(h host.Host, key crypto.PrivKey, models []Model, slots, threads int, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if key.Type() != crypto.Ed25519 {
		return nil, fmt.Errorf("infer: receipts need an Ed25519 identity key, not %v", key.Type())
	}
	raw, err := key.Raw()
	if err != nil || len(raw) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("infer: the identity key's raw form: %v", err)
	}
	if slots < 1 || len(models) == 0 {
		return nil, fmt.Errorf("infer: %d models, %d slots: want at least one of each", len(models), slots)
	}
	s := &Server{h: h, key: ed25519.PrivateKey(raw), log: log, gens: map[merkle.Digest]chan *gpt.Generator{},
		ctxs: map[merkle.Digest]int{}, slots: slots, wake: make(chan struct{}, 1)}
	for _, m := range models {
		ch := make(chan *gpt.Generator, slots)
		for range slots {
			g, err := gpt.NewGenerator(m.Config, m.State, kernel.Best(), threads)
			if err != nil {
				return nil, fmt.Errorf("infer: model %x: %w", m.Digest[:6], err)
			}
			ch <- g
		}
		s.gens[m.Digest], s.ctxs[m.Digest] = ch, m.Config.Context
	}
	h.SetStreamHandler(protocol.ID(Protocol), s.handle)
	s.disp = NewDisputeServer(h, models, log) // answers the referee if a verifier accuses it
	return s, nil
}

// SetTamper makes the server rewrite every answer with f before signing
// it (nil: honest again). It is how tests and the devnet build a cheating
// solver; an honest solver never calls it.
func (s *Server) SetTamper(f func(req *inference.Request, res *inference.Result)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tamper = f
}

// Close stops answering requests.
func (s *Server) Close() { s.h.RemoveStreamHandler(protocol.ID(Protocol)) }

// announcement is what s serves now.
func (s *Server) announcement() *Announce {
	a := &Announce{Slots: s.slots, Busy: min(int(s.busy.Load()), s.slots)}
	for d, c := range s.ctxs {
		a.Models = append(a.Models, AnnouncedModel{Digest: fmt.Sprintf("%x", d[:]), Context: c})
	}
	return a
}

// Announce tells the coordinator coord what s serves, at once, whenever
// its load changes and every AnnounceEvery, reopening the stream when it
// breaks, until ctx ends.
func (s *Server) Announce(ctx context.Context, coord peer.ID) {
	backoff := time.Second
	for ctx.Err() == nil {
		err := s.announceOnce(ctx, coord)
		if ctx.Err() != nil {
			return
		}
		s.log.Debug("inference announce stream ended", "coordinator", coord.String(), "err", fmt.Sprint(err))
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

func (s *Server) announceOnce(ctx context.Context, coord peer.ID) error {
	st, err := s.h.NewStream(network.WithAllowLimitedConn(ctx, "beluga"), coord, protocol.ID(AnnounceProtocol))
	if err != nil {
		return err
	}
	defer st.Reset()
	stop := context.AfterFunc(ctx, func() { st.Reset() })
	defer stop()
	w := bufio.NewWriter(st)
	tick := time.NewTicker(AnnounceEvery)
	defer tick.Stop()
	for {
		a := s.announcement()
		if err := WriteFrame(w, FrameAnnounce, a.Encode()); err != nil {
			return err
		}
		if err := w.Flush(); err != nil {
			return err
		}
		s.log.Debug(EventAnnounced, "coordinator", coord.String(), "models", len(a.Models))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		case <-s.wake:
		}
	}
}

// changed wakes the announcer (load changed).
func (s *Server) changed() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Server) handle(st network.Stream) {
	if !s.gate.admit(st) {
		s.log.Info(EventStrangerRefused, "protocol", Protocol, "peer", st.Conn().RemotePeer().String())
		st.Reset()
		return
	}
	defer st.Close()
	st.SetReadDeadline(time.Now().Add(RequestReadTimeout))
	r := bufio.NewReader(st)
	w := bufio.NewWriter(st)
	_, p, err := ReadFrame(r, FrameRequest)
	if err != nil {
		st.Reset()
		return
	}
	st.SetReadDeadline(time.Time{})
	refuse := func(id, code, why string) {
		s.log.Info(EventRefused, "request", id, "code", code, "why", why)
		b, _ := json.Marshal(Refusal{Code: code, Message: why})
		if WriteFrame(w, FrameError, b) == nil {
			w.Flush()
		}
	}
	var rr inference.RecordRequest
	if err := strictjson.Decode(p, &rr); err != nil {
		refuse("", RefusedRequest, err.Error())
		return
	}
	req, err := rr.Parse()
	if err != nil {
		refuse(rr.ID, RefusedRequest, err.Error())
		return
	}
	pool, ok := s.gens[req.Model]
	if !ok {
		refuse(req.ID, RefusedModel, fmt.Sprintf("model %x is not served here", req.Model[:8]))
		return
	}
	if err := req.Validate(s.ctxs[req.Model]); err != nil {
		refuse(req.ID, RefusedRequest, err.Error())
		return
	}
	var g *gpt.Generator
	select {
	case g = <-pool:
	default:
		refuse(req.ID, RefusedBusy, fmt.Sprintf("all %d slots busy", s.slots))
		return
	}
	s.busy.Add(1)
	s.changed()
	s.log.Info(EventStarted, "request", req.ID)
	defer func() { pool <- g; s.busy.Add(-1); s.changed() }()
	t0 := time.Now()
	s.mu.Lock()
	tamper := s.tamper
	s.mu.Unlock()
	emit := func(_ int, b byte) error { return writeByte(w, b) }
	if tamper != nil {
		emit = nil // a cheater sends its bytes after tampering
	}
	res, err := inference.Generate(g, req, emit)
	if err != nil {
		if errors.Is(err, inference.ErrRequest) {
			refuse(req.ID, RefusedRequest, err.Error())
		} else {
			st.Reset() // the gateway lost us: nothing more to say
		}
		return
	}
	if tamper != nil {
		tamper(req, res)
		for _, b := range res.Output {
			if writeByte(w, b) != nil {
				st.Reset()
				return
			}
		}
	}
	rc, err := inference.NewReceipt(req, res, s.key)
	if err != nil {
		refuse(req.ID, RefusedFailed, err.Error())
		return
	}
	if err := WriteFrame(w, FrameReceipt, rc.Encode()); err != nil || w.Flush() != nil {
		st.Reset()
		return
	}
	s.log.Info(EventServed, "request", req.ID, "bytes", len(res.Output), "receipt", rc.ID(), "ms", time.Since(t0).Milliseconds())
}

// writeByte sends one generated byte at once (streaming).
func writeByte(w *bufio.Writer, b byte) error {
	if err := WriteFrame(w, FrameBytes, []byte{b}); err != nil {
		return err
	}
	return w.Flush()
}
