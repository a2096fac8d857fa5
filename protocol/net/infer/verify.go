package infer

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

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

// Verification protocol IDs: a verifier announces the models it checks
// (frames as AnnounceProtocol's) and answers records with verdicts.
const (
	VerifyProtocol           = "/beluga/inference-verify/1"
	VerifierAnnounceProtocol = "/beluga/inference-verifier-announce/1"
)

// Frame types of the verification protocol.
const (
	FrameRecord  byte = 'C' // coordinator → verifier: an inference.Record (JSON)
	FrameVerdict byte = 'V' // verifier → coordinator: a Verdict (JSON)
)

// VerifierSlots is what a verifier announces: it queues checks rather
// than refusing them.
const VerifierSlots = 1024

// Verdicts.
const (
	VerdictPass      = "pass"      // the receipt is correct
	VerdictFraud     = "fraud"     // inference.ErrFraud: the solver signed what no honest run produces
	VerdictInvalid   = "invalid"   // a bad signature or a receipt for something else: nobody's fraud
	VerdictUnchecked = "unchecked" // the verifier does not hold the model
)

// Verdict is a verifier's finding on one receipt.
type Verdict struct {
	Receipt string `json:"receipt"`
	Verdict string `json:"verdict"`
	Detail  string `json:"detail,omitempty"`
	// Position is the output byte a fraud verdict blames (0-based), −1
	// when it blames none (the stop rule, the counts, the position root):
	// informative: the referee's dispute game (DisputeProtocol) finds the
	// operator the parties first differ on itself.
	Position int `json:"position"`
	// CheckMicros is how long the check took (one forward pass).
	CheckMicros int64 `json:"check_us"`
}

// VerifierServer checks receipts for the models it holds (SPEC.md §21.4:
// one teacher-forced pass each).
type VerifierServer struct {
	h    host.Host
	log  *slog.Logger
	mu   sync.Mutex // one check at a time per server: a Generator is not concurrent
	gens map[merkle.Digest]*gpt.Generator
	ctxs map[merkle.Digest]int
	gate gate
	disp *DisputeServer
	// tamper rewrites each verdict before it is sent (SetTamper).
	tamper atomic.Pointer[func(*Verdict)]
}

// SetTamper makes the verifier rewrite every verdict with f before
// answering (nil: honest again). It is how tests and the devnet build a
// lying verifier (one that accuses honest answers, or one that passes
// frauds); an honest verifier never calls it.
func (v *VerifierServer) SetTamper(f func(*Verdict)) {
	if f == nil {
		v.tamper.Store(nil)
		return
	}
	v.tamper.Store(&f)
}

// Restrict makes v (and its dispute answers) serve only peer p, the
// coordinator: other peers' streams are reset unread.
func (v *VerifierServer) Restrict(p peer.ID) { v.gate.restrict(p); v.disp.Restrict(p) }

// NewVerifierServer answers verification requests on h for models.
func NewVerifierServer(h host.Host, models []Model, threads int, log *slog.Logger) (*VerifierServer, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	v := &VerifierServer{h: h, log: log, gens: map[merkle.Digest]*gpt.Generator{}, ctxs: map[merkle.Digest]int{}}
	for _, m := range models {
		g, err := gpt.NewGenerator(m.Config, m.State, kernel.Best(), threads)
		if err != nil {
			return nil, fmt.Errorf("infer: model %x: %w", m.Digest[:6], err)
		}
		v.gens[m.Digest], v.ctxs[m.Digest] = g, m.Config.Context
	}
	h.SetStreamHandler(protocol.ID(VerifyProtocol), v.handle)
	v.disp = NewDisputeServer(h, models, log) // defends its fraud verdicts before the referee
	return v, nil
}

// Check checks one record.
func (v *VerifierServer) Check(data []byte) Verdict {
	req, out, rc, err := inference.DecodeRecord(data)
	if err != nil {
		return Verdict{Verdict: VerdictInvalid, Detail: err.Error(), Position: -1}
	}
	vd := Verdict{Receipt: rc.ID(), Position: -1}
	g, ok := v.gens[rc.Model]
	if !ok {
		vd.Verdict, vd.Detail = VerdictUnchecked, fmt.Sprintf("model %x is not held here", rc.Model[:8])
		return vd
	}
	v.mu.Lock()
	t0 := time.Now()
	err = inference.Check(g, rc.Model, req, out, rc)
	vd.CheckMicros = time.Since(t0).Microseconds()
	v.mu.Unlock()
	switch {
	case err == nil:
		vd.Verdict = VerdictPass
	case errors.Is(err, inference.ErrFraud):
		vd.Verdict, vd.Detail, vd.Position = VerdictFraud, err.Error(), inference.FraudPosition(err)
	default:
		vd.Verdict, vd.Detail = VerdictInvalid, err.Error()
	}
	return vd
}

// Announce tells the coordinator which models v checks, every
// AnnounceEvery, until ctx ends.
func (v *VerifierServer) Announce(ctx context.Context, coord peer.ID) {
	a := &Announce{Slots: VerifierSlots} // checks queue: a verifier takes any number
	for d, c := range v.ctxs {
		a.Models = append(a.Models, AnnouncedModel{Digest: fmt.Sprintf("%x", d[:]), Context: c})
	}
	for ctx.Err() == nil {
		st, err := v.h.NewStream(network.WithAllowLimitedConn(ctx, "beluga"), coord, protocol.ID(VerifierAnnounceProtocol))
		if err == nil {
			stop := context.AfterFunc(ctx, func() { st.Reset() })
			w := bufio.NewWriter(st)
			for ctx.Err() == nil {
				if WriteFrame(w, FrameAnnounce, a.Encode()) != nil || w.Flush() != nil {
					break
				}
				select {
				case <-ctx.Done():
				case <-time.After(AnnounceEvery):
				}
			}
			stop()
			st.Reset()
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (v *VerifierServer) handle(st network.Stream) {
	if !v.gate.admit(st) {
		v.log.Info(EventStrangerRefused, "protocol", VerifyProtocol, "peer", st.Conn().RemotePeer().String())
		st.Reset()
		return
	}
	defer st.Close()
	st.SetReadDeadline(time.Now().Add(RequestReadTimeout))
	_, p, err := ReadFrame(bufio.NewReader(st), FrameRecord)
	if err != nil {
		st.Reset()
		return
	}
	vd := v.Check(p)
	if f := v.tamper.Load(); f != nil {
		(*f)(&vd)
	}
	v.log.Info("inference receipt checked", "receipt", vd.Receipt, "verdict", vd.Verdict, "us", vd.CheckMicros)
	b, _ := json.Marshal(vd)
	w := bufio.NewWriter(st)
	if WriteFrame(w, FrameVerdict, b) != nil || w.Flush() != nil {
		st.Reset()
	}
}

// RequestVerdict sends record to verifier p and returns its verdict.
func RequestVerdict(ctx context.Context, h host.Host, p peer.ID, record []byte) (*Verdict, error) {
	st, err := h.NewStream(network.WithAllowLimitedConn(ctx, "beluga"), p, protocol.ID(VerifyProtocol))
	if err != nil {
		return nil, err
	}
	defer st.Close()
	stop := context.AfterFunc(ctx, func() { st.Reset() })
	defer stop()
	w := bufio.NewWriter(st)
	if err := WriteFrame(w, FrameRecord, record); err != nil {
		return nil, err
	}
	if err := w.Flush(); err != nil {
		return nil, err
	}
	st.SetReadDeadline(time.Now().Add(time.Minute))
	_, b, err := ReadFrame(bufio.NewReader(st), FrameVerdict)
	if err != nil {
		return nil, fmt.Errorf("verdict from %s: %w", p, err)
	}
	var vd Verdict
	if err := strictjson.Decode(b, &vd); err != nil {
		return nil, fmt.Errorf("%w: verdict: %v", ErrFrame, err)
	}
	return &vd, nil
}
