package gateway

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/beluga-compute/beluga/protocol/core/dispute"
	"github.com/beluga-compute/beluga/protocol/core/inference"
	"github.com/beluga-compute/beluga/protocol/core/plan"
	"github.com/beluga-compute/beluga/protocol/net/infer"
	"github.com/beluga-compute/beluga/protocol/net/join"
	"github.com/beluga-compute/beluga/protocol/net/wire"
	"github.com/beluga-compute/beluga/spec/merkle"
)

// Verification sampling (SPEC.md §21.4). Each answered request is sent to
// a verifier holding the model with probability RatePPM, drawn from
// crypto/rand after the solver's receipt arrived (the solver cannot know
// which of its answers are checked). A sampled receipt is stored until it
// is checked (pendingKey), so neither a burst nor a restart drops it. A
// fraud verdict goes to the referee
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
	// EventPassRefuted: a verifier passed a receipt that a second
	// verifier's fraud verdict and the dispute game proved fraudulent; it
	// is slashed and banned (Warn): "verifier", "request",
	// "verifier_slashed_micro_usd".
	EventPassRefuted = "inference pass refuted"
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
	// SecondOpinions counts passed receipts checked again by another
	// verifier; PassesRefuted those the game then proved fraudulent (the
	// verifier that passed it slashed).
	SecondOpinions int64 `json:"second_opinions"`
	PassesRefuted  int64 `json:"passes_refuted"`
}

type sampler struct {
	ratePPM   atomic.Int64
	secondPPM atomic.Int64
	verifiers *Router
	// max bounds the checks in flight (MaxChecking).
	max int
	// wake nudges the dispatcher: a receipt was sampled or a check ended.
	wake chan struct{}
	// stop ends the dispatcher and the checks; done is closed when the
	// dispatcher has returned, after which checks.Wait waits for them.
	stop   context.CancelFunc
	done   chan struct{}
	checks sync.WaitGroup
	closed sync.Once

	started time.Time // when this run's sampler started (deadline)

	mu       sync.Mutex
	checking map[string]bool // pending keys being checked (or expired)
	stats    VerifyStats
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

// Slashed reports whether the party was slashed and banned: a solver
// for a fraud the referee confirmed, a verifier for a verdict it refuted
// (by this run or an earlier one).
func (g *Gateway) Slashed(party string) bool {
	why, _ := g.banned(party)
	return why != ""
}

// WaitVerifications waits until every sampled receipt is checked or
// counted unchecked: none stored, none in flight. After Close it returns
// at once (the receipts left wait for the next run).
func (g *Gateway) WaitVerifications() {
	s := &g.ver
	for {
		select {
		case <-s.done:
			return
		default:
		}
		s.mu.Lock()
		busy := len(s.checking) > 0
		s.mu.Unlock()
		if !busy {
			var found bool
			err := g.svc.Store().ScanKeys(pendingPrefix, func(string) error { found = true; return errFull })
			if !found && (err == nil || errors.Is(err, errFull)) {
				return
			}
		}
		s.nudge()
		time.Sleep(20 * time.Millisecond)
	}
}

// Waiting reports how many sampled receipts are stored and not yet
// checked or counted unchecked (those being checked included).
func (g *Gateway) Waiting() (int, error) {
	n := 0
	err := g.svc.Store().ScanKeys(pendingPrefix, func(string) error { n++; return nil })
	return n, err
}

// Peers reports how many solvers are routed requests and how many
// verifiers are sent receipts now.
func (g *Gateway) Peers() (solvers, verifiers int) { return g.router.Len(), g.ver.verifiers.Len() }

// Close stops checking sampled receipts and waits for the checks in
// flight to return. A receipt not yet checked stays in the store, and
// the next run with the same data directory checks it.
func (g *Gateway) Close() {
	g.ver.closed.Do(func() {
		g.ver.stop()
		<-g.ver.done
		g.ver.checks.Wait()
	})
}

// draw reports, from crypto/rand, whether an event of probability ppm
// millionths happens.
func draw(ppm int64) bool {
	var b [8]byte
	rand.Read(b[:])
	return int64(binary.LittleEndian.Uint64(b[:])%plan.PPM) < ppm
}

// DefaultSecondOpinionPPM is the share of passed receipts sent to a
// second verifier (10%). One verifier's pass is not the end of it: a
// verifier colluding with a solver, or one that passes without checking,
// is caught on the receipts it passes that are frauds with this
// probability each, and then loses its bond (SlashFalsePass) — while an
// honest verifier's pass never can be refuted, the check being exact.
const DefaultSecondOpinionPPM = 100_000

// SetSecondOpinionRate sets the share of passed receipts checked again
// by another verifier, in millionths (default DefaultSecondOpinionPPM).
func (g *Gateway) SetSecondOpinionRate(ppm int64) {
	g.ver.secondPPM.Store(min(max(ppm, 0), plan.PPM))
}

// VerifyWait is how long a sampled receipt waits for a verifier that
// holds its model and answers: a receipt sampled while none is announced
// (a verifier restarting, none online yet) is checked when one comes,
// and a verifier that fails to answer is passed over for another. Only
// after VerifyWait is the receipt counted unchecked (EventUnchecked).
const VerifyWait = 2 * time.Minute

// verifyPoll is how often a waiting receipt looks for a verifier again.
const verifyPoll = 250 * time.Millisecond

// MaxChecking bounds the sampled receipts checked at once. A check
// starts only when a verifier for its model has room, so receipts whose
// model has no verifier online wait in the store, not in a check: they
// cost disk, and do not hold up the checks of other models.
const MaxChecking = 64

// Sampled receipts are kept in the coordinator's store from the moment
// they are drawn until they are checked or counted unchecked, each under
// pendingKey: the checks survive a restart (the next run checks what the
// last had not), and the solver that answered cannot escape a check by
// the coordinator's restart. A receipt drawn for a second opinion is
// stored again, naming the verifier that passed it.
const pendingPrefix = "infer-check/"

// pendingRef is what a stored check's key says: when it was drawn, the
// model, the receipt, and the verifier it must not go to (a second
// opinion's first verifier; "" for a first check).
type pendingRef struct {
	sampled time.Time
	model   merkle.Digest
	receipt string
	exclude peer.ID
}

// key orders the stored checks by when they were drawn; the dispatcher
// reads the rest from it without the value.
func (r pendingRef) key() string {
	ex := "-"
	if r.exclude != "" {
		ex = r.exclude.String()
	}
	return fmt.Sprintf("%s%020d/%x/%s/%s", pendingPrefix, r.sampled.UnixNano(), r.model[:], r.receipt, ex)
}

// parsePendingKey is key's inverse.
func parsePendingKey(key string) (pendingRef, error) {
	f := strings.Split(strings.TrimPrefix(key, pendingPrefix), "/")
	if len(f) != 4 {
		return pendingRef{}, fmt.Errorf("stored check key %q", key)
	}
	ns, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return pendingRef{}, fmt.Errorf("stored check key %q: %w", key, err)
	}
	d, err := infer.ParseDigest(f[1])
	if err != nil {
		return pendingRef{}, fmt.Errorf("stored check key %q: %w", key, err)
	}
	r := pendingRef{sampled: time.Unix(0, ns), model: d, receipt: f[2]}
	if f[3] != "-" {
		if r.exclude, err = peer.Decode(f[3]); err != nil {
			return pendingRef{}, fmt.Errorf("stored check key %q: %w", key, err)
		}
	}
	return r, nil
}

// deadline is when a stored check without a verifier is given up:
// VerifyWait (SecondOpinionWait for a second opinion) after it was drawn,
// or after this run started, whichever is later (verifiers reconnect to
// a restarted coordinator).
func (g *Gateway) deadline(r pendingRef) time.Time {
	wait := VerifyWait
	if r.exclude != "" {
		wait = SecondOpinionWait
	}
	from := r.sampled
	if from.Before(g.ver.started) {
		from = g.ver.started
	}
	return from.Add(wait)
}

// pendingCheck is a sampled receipt not yet checked: what the check, and
// the dispute a fraud verdict starts, need.
type pendingCheck struct {
	Model  string          `json:"model"`  // the catalog's model ID
	Record json.RawMessage `json:"record"` // the inference.Record
	Solver string          `json:"solver"` // the answering solver's peer ID
	Client string          `json:"client"`
	Cost   int64           `json:"cost_micro_usd"`
}

// errFull stops a scan of the pending checks.
var errFull = errors.New("gateway: enough checks in flight")

// startSampler starts the dispatcher of the sampled receipts, which
// first takes up those a previous run left.
func (g *Gateway) startSampler() {
	s := &g.ver
	ctx, cancel := context.WithCancel(context.Background())
	s.stop, s.done = cancel, make(chan struct{})
	s.wake = make(chan struct{}, 1)
	s.checking = map[string]bool{}
	s.started = time.Now()
	if s.max == 0 {
		s.max = MaxChecking
	}
	s.verifiers.onJoin = s.nudge
	go g.dispatch(ctx)
}

func (s *sampler) nudge() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// dispatch starts the checks of the stored sampled receipts, at most
// s.max at once, when one is sampled, when one ends, when a verifier
// joins, and every few seconds (a verifier with room again, a deadline
// passed, a store that failed a scan).
func (g *Gateway) dispatch(ctx context.Context) {
	s := &g.ver
	defer close(s.done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		g.startChecks(ctx)
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-t.C:
		}
	}
}

// startChecks goes through the stored checks, oldest first: it starts
// each one not being checked whose model has a verifier with room, while
// there is room here, and gives up those past their deadline with none.
func (g *Gateway) startChecks(ctx context.Context) {
	s := &g.ver
	now := time.Now()
	var expired []pendingRef
	var bad []string
	err := g.svc.Store().ScanKeys(pendingPrefix, func(key string) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r, err := parsePendingKey(key)
		if err != nil {
			g.log.Error("inference check dropped", "err", err.Error())
			bad = append(bad, key)
			return nil
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.checking[key] {
			return nil
		}
		if !s.verifiers.Available(r.model, r.exclude) {
			if now.After(g.deadline(r)) {
				s.checking[key] = true // until expire removes it
				expired = append(expired, r)
			}
			return nil
		}
		if len(s.checking) >= s.max {
			return errFull
		}
		s.checking[key] = true
		s.checks.Add(1)
		go g.check(ctx, r)
		return nil
	})
	if err != nil && !errors.Is(err, errFull) && ctx.Err() == nil {
		g.log.Error("inference checks not read", "err", err.Error())
	}
	for _, k := range bad {
		g.svc.Store().DeleteRaw(k)
	}
	for _, r := range expired {
		g.expire(r)
	}
}

// expire gives up the stored check r: no verifier came by its deadline.
func (g *Gateway) expire(r pendingRef) {
	s := &g.ver
	key := r.key()
	if err := g.svc.Store().DeleteRaw(key); err != nil {
		g.log.Error("inference check not removed", "key", key, "err", err.Error())
	}
	if r.exclude != "" {
		g.log.Info("inference second opinion not had", "receipt", r.receipt, "why", "no other verifier holds the model")
	} else {
		g.log.Warn(EventUnchecked, "receipt", r.receipt, "why", "no verifier holds the model")
	}
	s.mu.Lock()
	delete(s.checking, key)
	if r.exclude == "" {
		s.stats.Unchecked++
	}
	s.mu.Unlock()
}

// maybeVerify samples one answered request: a sampled receipt is stored
// for the dispatcher to check.
func (g *Gateway) maybeVerify(m *Model, req *inference.Request, rec *inference.Record, solver peer.ID, client string, costMicroUSD int64) {
	s := &g.ver
	if !draw(s.ratePPM.Load()) {
		return
	}
	s.mu.Lock()
	s.stats.Sampled++
	s.mu.Unlock()
	p, _ := json.Marshal(pendingCheck{Model: m.ID, Record: rec.Marshal(), Solver: solver.String(), Client: client, Cost: costMicroUSD})
	if err := g.svc.Store().PutRaw(pendingRef{sampled: time.Now(), model: req.Model, receipt: rec.ID}.key(), p); err != nil {
		g.log.Warn(EventUnchecked, "receipt", rec.ID, "why", "not stored for a check: "+err.Error())
		s.mu.Lock()
		s.stats.Unchecked++
		s.mu.Unlock()
		return
	}
	s.nudge()
}

// check checks the stored sampled receipt r — a first check, or a second
// opinion on a pass — and disputes a fraud verdict; then it removes r
// from the store, unless ctx ended first (Close: the next run checks it
// again; a slash already made is not made twice, by its transfer ID).
func (g *Gateway) check(ctx context.Context, r pendingRef) {
	s := &g.ver
	key := r.key()
	// The scan that found key read a snapshot: a check that ended since
	// removed it (before it left s.checking), so it is read again.
	val, ok, err := g.svc.Store().GetRaw(key)
	keep, failed := !ok || ctx.Err() != nil, err != nil
	defer func() {
		if !keep && ctx.Err() == nil {
			if err := g.svc.Store().DeleteRaw(key); err != nil {
				g.log.Error("inference check not removed", "key", key, "err", err.Error())
			}
		}
		s.mu.Lock()
		delete(s.checking, key)
		s.mu.Unlock()
		s.checks.Done()
		if !failed {
			s.nudge()
		}
	}()
	if failed {
		keep = true // the store failed: tried again by the next tick's scan
		g.log.Error("inference check not read", "key", key, "err", err.Error())
		return
	}
	if !ok {
		return
	}
	unchecked := func(why string) {
		g.log.Warn(EventUnchecked, "receipt", r.receipt, "why", why)
		s.mu.Lock()
		s.stats.Unchecked++
		s.mu.Unlock()
	}
	var p pendingCheck
	var rec inference.Record
	var req *inference.Request
	if err = json.Unmarshal(val, &p); err == nil {
		if req, _, _, err = inference.DecodeRecord(p.Record); err == nil {
			err = json.Unmarshal(p.Record, &rec)
		}
	}
	if err != nil {
		unchecked("stored check unreadable: " + err.Error())
		return
	}
	solver, err := peer.Decode(p.Solver)
	if err != nil {
		unchecked("stored solver: " + err.Error())
		return
	}
	m, ok, err := g.cat.get(p.Model)
	if err != nil {
		keep, failed = true, true // tried again by the next tick's scan
		g.log.Error("inference check's model not read", "receipt", rec.ID, "err", err.Error())
		return
	}
	if !ok {
		unchecked(fmt.Sprintf("model %q is not published", p.Model))
		return
	}
	if r.exclude != "" {
		g.secondOpinion(ctx, r, m, req, &rec, solver, &p)
		return
	}
	v, vd, why := g.verdict(ctx, req, &rec, "", time.Until(g.deadline(r)))
	if ctx.Err() != nil {
		return
	}
	if vd == nil {
		unchecked(why)
		return
	}
	g.log.Info(EventVerified, "receipt", rec.ID, "verdict", vd.Verdict, "verifier", v.String(), "check_us", vd.CheckMicros)
	switch vd.Verdict {
	case infer.VerdictPass:
		s.mu.Lock()
		s.stats.Passed++
		s.mu.Unlock()
		if draw(s.secondPPM.Load()) {
			// Stored again for another verifier than v.
			second := pendingRef{sampled: time.Now(), model: r.model, receipt: r.receipt, exclude: v}
			if err := g.svc.Store().PutRaw(second.key(), val); err != nil {
				g.log.Error("inference second opinion not stored", "receipt", rec.ID, "err", err.Error())
			}
		}
	case infer.VerdictFraud:
		g.dispute(ctx, m, req, &rec, solver, v, p.Client, p.Cost, vd)
	default:
		unchecked(fmt.Sprintf("verifier %s answered verdict %q", v, vd.Verdict))
	}
}

// verdict asks verifiers holding req's model, but not exclude, to check
// rec until one answers, waiting up to wait (from now) for one to be
// there; without an answer it returns nil and why.
func (g *Gateway) verdict(ctx context.Context, req *inference.Request, rec *inference.Record, exclude peer.ID, wait time.Duration) (peer.ID, *infer.Verdict, string) {
	tried := map[peer.ID]bool{}
	why := "no verifier holds the model"
	if exclude != "" {
		tried[exclude] = true
		why = "no other verifier holds the model"
	}
	deadline := time.Now().Add(wait)
	for first := true; ; first = false {
		if !first {
			select {
			case <-ctx.Done():
				return "", nil, "stopped"
			case <-time.After(verifyPoll):
			}
		}
		v, done, ok := g.ver.verifiers.Pick(req.Model, tried)
		if !ok {
			if time.Now().After(deadline) {
				return "", nil, why
			}
			continue
		}
		vd, err := g.ask(ctx, v, done, rec)
		if err == nil {
			return v, vd, ""
		}
		if ctx.Err() != nil {
			return "", nil, "stopped"
		}
		tried[v] = true
		why = fmt.Sprintf("verifier %s did not check it: %v", v, err)
	}
}

// ask has verifier v (picked, done its release) check rec.
func (g *Gateway) ask(ctx context.Context, v peer.ID, done func(time.Duration), rec *inference.Record) (*infer.Verdict, error) {
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	vd, err := infer.RequestVerdict(cctx, g.h, v, rec.Marshal())
	cancel()
	done(0)
	if err == nil && vd.Receipt != rec.ID {
		err = fmt.Errorf("it answered for receipt %s", vd.Receipt)
	}
	if err != nil {
		if ctx.Err() == nil {
			g.log.Warn(EventVerifierFailed, "receipt", rec.ID, "verifier", v.String(), "err", err.Error())
		}
		return nil, err
	}
	return vd, nil
}

// SecondOpinionWait is how long a passed receipt drawn for a second
// opinion waits for another verifier holding the model.
const SecondOpinionWait = time.Minute

// secondOpinion has a verifier other than r.exclude, which passed the
// receipt, check it again. A fraud verdict is disputed as any; when the
// game proves the solver cheated, the first verifier passed a fraud — it
// did not run the exact check, or covers for the solver — and its bond
// is slashed and it is banned.
func (g *Gateway) secondOpinion(ctx context.Context, r pendingRef, m *Model, req *inference.Request, rec *inference.Record, solver peer.ID, p *pendingCheck) {
	s := &g.ver
	first := r.exclude
	v, vd, why := g.verdict(ctx, req, rec, first, time.Until(g.deadline(r)))
	if vd == nil {
		if ctx.Err() == nil {
			g.log.Info("inference second opinion not had", "receipt", rec.ID, "why", why)
		}
		return
	}
	s.mu.Lock()
	s.stats.SecondOpinions++
	s.mu.Unlock()
	g.log.Info(EventVerified, "receipt", rec.ID, "verdict", vd.Verdict, "verifier", v.String(), "check_us", vd.CheckMicros, "second_opinion", true)
	if vd.Verdict != infer.VerdictFraud {
		return
	}
	if loser := g.dispute(ctx, m, req, rec, solver, v, p.Client, p.Cost, vd); loser != dispute.LoserSolver && loser != dispute.LoserBoth {
		return
	}
	vparty := join.PartyID(wire.RoleVerifier, first)
	s.verifiers.Ban(first)
	g.ban(vparty, req.ID, "passed a receipt the dispute game proved fraudulent")
	sl, err := g.svc.SlashFalsePass(ctx, req.ID, vparty)
	if err != nil {
		g.log.Error(EventSettleFailed, "request", req.ID, "err", err.Error())
	}
	g.log.Warn(EventPassRefuted, "verifier", vparty, "request", req.ID, "verifier_slashed_micro_usd", sl.SlashedMicroUSD)
	s.mu.Lock()
	s.stats.PassesRefuted++
	s.stats.VerifierSlashed += sl.SlashedMicroUSD
	s.mu.Unlock()
}
