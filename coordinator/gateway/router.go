package gateway

import (
	"bufio"
	"crypto/rand"
	"encoding/binary"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/beluga-compute/beluga/protocol/net/infer"
	"github.com/beluga-compute/beluga/spec/merkle"
)

// Router tracks which solvers serve which models, from their
// announcements, and picks one for a request.
type Router struct {
	log          *slog.Logger
	role         string // "solver" or "verifier": the peers it routes to
	joined, left string // its log events
	mu           sync.Mutex
	solvers      map[peer.ID]*solverState
	gen          map[peer.ID]int // announce stream generation, so an old stream's end does not drop a new one
	banned       map[peer.ID]bool
	// admit, if set, says why a peer may not be routed to ("" admits
	// it); refused is the event logged when it says no.
	admit   func(peer.ID) string
	refused string
	// uniform: Pick draws among the peers with room at random (the
	// verifiers: a verifier announcing many slots must not get every
	// check, or one colluding with a solver could pass all its frauds).
	uniform bool
	// onJoin, if set, is called (without the lock) when a peer is
	// admitted and announced: the sampler's dispatcher wakes for it.
	onJoin func()
}

type solverState struct {
	models   map[merkle.Digest]int // digest → context
	slots    int
	busy     int // what the solver said
	inflight int // what we sent it and it has not answered
	ttfbMs   float64
}

// Events the router logs.
const (
	EventSolverJoined = "inference solver announced" // Info: "solver", "models", "slots"
	EventSolverLeft   = "inference solver gone"      // Info: "solver"
	// EventSolverRefused: an announcing solver is not routed to (Warn):
	// "solver", "why" (no bond, banned); logged when the reason changes.
	EventSolverRefused = "inference solver refused"
	// The sampler's router of verifiers logs the same for them.
	EventVerifierJoined  = "inference verifier announced" // Info: "verifier", "models", "slots"
	EventVerifierLeft    = "inference verifier gone"      // Info: "verifier"
	EventVerifierRefused = "inference verifier refused"   // Warn: "verifier", "why"
)

// AdmitEvery is how often an admitted peer's standing (its bond, its
// enrolment, a ban) is read again; a refused peer's is read at each of
// its announcements, so a bond that arrives counts within
// infer.AnnounceEvery.
const AdmitEvery = 30 * time.Second

// newRouterOn returns a router taking announcements on protocol pid from
// peers of role ("solver" or "verifier": what its log events name),
// routing to those admit admits (nil: all).
func newRouterOn(h host.Host, pid, role string, log *slog.Logger, admit func(peer.ID) string) *Router {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Router{log: log, role: role, joined: EventSolverJoined, left: EventSolverLeft, refused: EventSolverRefused,
		solvers: map[peer.ID]*solverState{}, gen: map[peer.ID]int{}, banned: map[peer.ID]bool{}, admit: admit}
	if role == "verifier" {
		r.joined, r.left, r.refused = EventVerifierJoined, EventVerifierLeft, EventVerifierRefused
		r.uniform = true
	}
	h.SetStreamHandler(protocol.ID(pid), r.handle)
	return r
}

// Ban drops p from the routing table for good (a solver proven to cheat):
// its announcements are ignored from now on.
func (r *Router) Ban(p peer.ID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.banned[p] = true
	delete(r.solvers, p)
}

func (r *Router) handle(s network.Stream) {
	defer s.Reset()
	p := s.Conn().RemotePeer()
	r.mu.Lock()
	r.gen[p]++
	gen := r.gen[p]
	r.mu.Unlock()
	br := bufio.NewReader(s)
	first := true
	var why string     // why p is refused, "" if admitted
	var read time.Time // when why was read
	for {
		s.SetReadDeadline(time.Now().Add(3 * infer.AnnounceEvery))
		_, payload, err := infer.ReadFrame(br, infer.FrameAnnounce)
		if err != nil {
			break
		}
		a, err := infer.DecodeAnnounce(payload)
		if err != nil {
			break
		}
		if r.admit != nil && (read.IsZero() || why != "" || time.Since(read) >= AdmitEvery) {
			w := r.admit(p)
			if w != "" && w != why {
				r.log.Warn(r.refused, r.role, p.String(), "why", w)
			}
			why, read = w, time.Now()
		}
		models := map[merkle.Digest]int{}
		for _, m := range a.Models {
			d, _ := infer.ParseDigest(m.Digest)
			models[d] = m.Context
		}
		r.mu.Lock()
		if r.banned[p] {
			r.mu.Unlock()
			break
		}
		if why != "" {
			if r.gen[p] == gen && r.solvers[p] != nil {
				delete(r.solvers, p)
				r.log.Info(r.left, r.role, p.String())
			}
			r.mu.Unlock()
			first = true
			continue
		}
		st := r.solvers[p]
		if st == nil {
			st = &solverState{}
			r.solvers[p] = st
		}
		st.models, st.slots, st.busy = models, a.Slots, a.Busy
		r.mu.Unlock()
		if first {
			r.log.Info(r.joined, r.role, p.String(), "models", len(models), "slots", a.Slots)
			first = false
			if r.onJoin != nil {
				r.onJoin()
			}
		}
	}
	r.mu.Lock()
	if r.gen[p] == gen && r.solvers[p] != nil {
		delete(r.solvers, p)
		r.log.Info(r.left, r.role, p.String())
	}
	r.mu.Unlock()
}

// cand is a peer Pick may choose.
type cand struct {
	id   peer.ID
	free int
	ttfb float64
}

// candidatesLocked lists the peers serving model with a free slot, not in
// skip.
func (r *Router) candidatesLocked(model merkle.Digest, skip map[peer.ID]bool) []cand {
	var cs []cand
	for id, s := range r.solvers {
		if _, serves := s.models[model]; !serves || skip[id] {
			continue
		}
		if free := s.slots - max(s.busy, s.inflight); free > 0 {
			cs = append(cs, cand{id, free, s.ttfbMs})
		}
	}
	return cs
}

// Available reports whether Pick would find a peer for model now, not
// skip.
func (r *Router) Available(model merkle.Digest, skip peer.ID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.candidatesLocked(model, map[peer.ID]bool{skip: true})) > 0
}

// Len reports how many peers are routed to now (any model).
func (r *Router) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.solvers)
}

// Serving reports how many solvers serve model now.
func (r *Router) Serving(model merkle.Digest) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, s := range r.solvers {
		if _, ok := s.models[model]; ok {
			n++
		}
	}
	return n
}

// Pick chooses a solver serving model with a free slot, not in skip: the
// most free slots first, then the lowest time to first byte, then the
// peer ID (deterministic); a verifier router draws one of them uniformly
// at random instead (the uniform field). It counts the request in flight
// on it; the caller calls done with the time to first byte (0: none)
// when the call ends. ok is false when no solver has room.
func (r *Router) Pick(model merkle.Digest, skip map[peer.ID]bool) (p peer.ID, done func(ttfb time.Duration), ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cs := r.candidatesLocked(model, skip)
	if len(cs) == 0 {
		return "", nil, false
	}
	sort.Slice(cs, func(i, j int) bool {
		if cs[i].free != cs[j].free {
			return cs[i].free > cs[j].free
		}
		if cs[i].ttfb != cs[j].ttfb {
			return cs[i].ttfb < cs[j].ttfb
		}
		return cs[i].id < cs[j].id
	})
	id := cs[0].id
	if r.uniform {
		var b [8]byte
		rand.Read(b[:]) // crypto/rand: a peer cannot predict which checks it gets
		id = cs[binary.LittleEndian.Uint64(b[:])%uint64(len(cs))].id
	}
	r.solvers[id].inflight++
	r.solvers[id].busy++ // until its next announcement says otherwise
	return id, func(ttfb time.Duration) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if s := r.solvers[id]; s != nil {
			s.inflight--
			if ttfb > 0 {
				ms := float64(ttfb.Microseconds()) / 1e3
				if s.ttfbMs == 0 {
					s.ttfbMs = ms
				} else {
					s.ttfbMs = 0.8*s.ttfbMs + 0.2*ms
				}
			}
		}
	}, true
}
