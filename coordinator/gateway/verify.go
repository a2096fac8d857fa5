package gateway

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/beluga-compute/beluga/protocol/core/inference"
	"github.com/beluga-compute/beluga/protocol/core/plan"
	"github.com/beluga-compute/beluga/protocol/net/infer"
)

// Verification sampling (SPEC.md §21.4). Each answered request is sent to
// a verifier holding the model with probability RatePPM, drawn from
// crypto/rand after the solver's receipt arrived (the solver cannot know
// which of its answers are checked). A fraud verdict goes to the referee
// (referee.go), which slashes the solver only when the dispute game confirms
// it, and otherwise slashes the verifier.

// Events of the sampler.
const (
	// EventVerified: a sampled receipt was checked (Info): "receipt",
	// "verdict", "verifier", "check_us".
	EventVerified = "inference receipt verified"
	// EventSlashed: a solver proven to cheat was slashed and banned
	// (Warn): "solver", "request", "slashed_micro_usd", "refund_micro_usd".
	EventSlashed = "inference solver slashed"
	// EventUnchecked: a sampled receipt no verifier checked within
	// VerifyWait (Warn): "receipt", "why".
	EventUnchecked = "inference receipt unchecked"
	// EventVerifierFailed: a verifier asked to check a receipt did not
	// (Warn): "receipt", "verifier", "err"; the next one is asked.
	EventVerifierFailed = "inference verifier failed"
)

// DefaultRatePPM is the planner's rate for the target: a solver
// cheating on 1% of 10,000 requests a day caught with 99% (4.5%).
var DefaultRatePPM = func() int64 {
	p, _ := plan.InferenceRatePPM(10_000, 990_000, 10_000)
	return p
}()

// VerifyStats counts what the sampler did.
type VerifyStats struct {
	Sampled   int64 `json:"sampled"`
	Passed    int64 `json:"receipts_verified"`
	Frauds    int64 `json:"frauds"`
	Unchecked int64 `json:"unchecked"` // no verifier, or it failed to answer
	Slashed   int64 `json:"slashed_micro_usd"`
	Refunded  int64 `json:"refunded_micro_usd"`
	// Disputes counts fraud verdicts the referee judged: confirmed
	// (Frauds), refused (Refused: the verifier lied) or unresolved.
	Disputes        int64 `json:"disputes"`
	Refused         int64 `json:"verdicts_refused"`
	Unresolved      int64 `json:"disputes_unresolved"`
	VerifierSlashed int64 `json:"verifier_slashed_micro_usd"`
}

type sampler struct {
	ratePPM   atomic.Int64
	verifiers *Router
	wg        sync.WaitGroup
	mu        sync.Mutex
	stats     VerifyStats
	slashed   map[string]bool // solver and verifier parties slashed
}

// SetVerifyRate sets the share of requests verified, in millionths
// (default DefaultRatePPM; plan.InferenceRatePPM sizes it for a traffic).
func (g *Gateway) SetVerifyRate(ppm int64) { g.ver.ratePPM.Store(min(max(ppm, 0), plan.PPM)) }

// VerifyStats returns the sampler's counts so far.
func (g *Gateway) VerifyStats() VerifyStats {
	g.ver.mu.Lock()
	defer g.ver.mu.Unlock()
	return g.ver.stats
}

// Slashed reports whether the party was slashed: a solver for a fraud
// the referee confirmed, a verifier for a verdict it refuted.
func (g *Gateway) Slashed(party string) bool {
	g.ver.mu.Lock()
	defer g.ver.mu.Unlock()
	return g.ver.slashed[party]
}

// WaitVerifications waits for the verifications in flight.
func (g *Gateway) WaitVerifications() { g.ver.wg.Wait() }

// draw reports whether to verify one request.
func (s *sampler) draw() bool {
	var b [8]byte
	rand.Read(b[:])
	return int64(binary.LittleEndian.Uint64(b[:])%plan.PPM) < s.ratePPM.Load()
}

// VerifyWait is how long a sampled receipt waits for a verifier that
// holds its model and answers: a receipt sampled while none is announced
// (a verifier restarting, none online yet) is checked when one comes,
// and a verifier that fails to answer is passed over for another. Only
// after VerifyWait is the receipt counted unchecked (EventUnchecked).
const VerifyWait = 2 * time.Minute

// verifyPoll is how often a waiting receipt looks for a verifier again.
const verifyPoll = 250 * time.Millisecond

// maybeVerify samples one answered request.
func (g *Gateway) maybeVerify(m *Model, req *inference.Request, rec *inference.Record, solver peer.ID, client string, costMicroUSD int64) {
	s := &g.ver
	if !s.draw() {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.mu.Lock()
		s.stats.Sampled++
		s.mu.Unlock()
		v, vd, why := g.verdict(req, rec)
		if vd == nil {
			g.log.Warn(EventUnchecked, "receipt", rec.ID, "why", why)
			s.mu.Lock()
			s.stats.Unchecked++
			s.mu.Unlock()
			return
		}
		g.log.Info(EventVerified, "receipt", rec.ID, "verdict", vd.Verdict, "verifier", v.String(), "check_us", vd.CheckMicros)
		switch vd.Verdict {
		case infer.VerdictPass:
			s.mu.Lock()
			s.stats.Passed++
			s.mu.Unlock()
		case infer.VerdictFraud:
			g.dispute(m, req, rec, solver, v, client, costMicroUSD, vd)
		default:
			s.mu.Lock()
			s.stats.Unchecked++
			s.mu.Unlock()
		}
	}()
}

// verdict asks verifiers holding req's model to check rec until one
// answers, waiting up to VerifyWait for one to be there; without an
// answer it returns nil and why.
func (g *Gateway) verdict(req *inference.Request, rec *inference.Record) (peer.ID, *infer.Verdict, string) {
	tried := map[peer.ID]bool{}
	why := "no verifier holds the model"
	for deadline := time.Now().Add(VerifyWait); ; time.Sleep(verifyPoll) {
		v, done, ok := g.ver.verifiers.Pick(req.Model, tried)
		if !ok {
			if time.Now().After(deadline) {
				return "", nil, why
			}
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		vd, err := infer.RequestVerdict(ctx, g.h, v, rec.Marshal())
		cancel()
		done(0)
		if err == nil && vd.Receipt == rec.ID {
			return v, vd, ""
		}
		tried[v] = true
		if err == nil {
			err = fmt.Errorf("it answered for receipt %s", vd.Receipt)
		}
		why = fmt.Sprintf("verifier %s did not check it: %v", v, err)
		g.log.Warn(EventVerifierFailed, "receipt", rec.ID, "verifier", v.String(), "err", err.Error())
	}
}
