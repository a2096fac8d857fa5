package service

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/beluga-compute/beluga/coordinator/ledger"
	"github.com/beluga-compute/beluga/coordinator/lifecycle"
	"github.com/beluga-compute/beluga/coordinator/market"
	"github.com/beluga-compute/beluga/protocol/core/dispute"
	"github.com/beluga-compute/beluga/protocol/net/wire"
	"github.com/beluga-compute/beluga/spec"
)

// Job is the coordinator's record of a job. Money is in the ledger; this is
// what the ledger cannot say: sizes, prices, who ran it, its history.
type Job struct {
	// ID is the job's protocol ID: the hash of Spec, which solvers train
	// and commit their traces to (spec.JobID, in hex).
	ID       string `json:"id"`
	ClientID string `json:"client_id"`
	// SpecID is the ID of the spec as the client posted it; two clients
	// posting one spec get two jobs with this SpecID and distinct IDs.
	SpecID string `json:"spec_id,omitempty"`
	// Spec is the spec offered to solvers (canonical JSON): the client's
	// with a posting tag appended to its name (see PostJob).
	Spec  json.RawMessage `json:"spec,omitempty"`
	State lifecycle.State `json:"state,omitzero"`
	// Seq counts the transitions applied (posting is 1).
	Seq   uint64 `json:"seq"`
	Steps int64  `json:"steps"`
	CU    int64  `json:"compute_units"`
	// MaxPriceNanoUSDPerCU is the client's cap in nano-dollars per CU; 0
	// means market.
	MaxPriceNanoUSDPerCU int64 `json:"max_price_nano_usd_per_cu"`
	MaxCostMicroUSD      int64 `json:"max_cost_micro_usd"`
	// AuditBudgetMicroUSD is one audit of AuditReplaySteps at the maximum
	// price and VerifierRatePPM, rounded up (Terms).
	AuditBudgetMicroUSD int64 `json:"audit_budget_micro_usd"`
	// AuditReplaySteps is how many of the job's steps its audit replays
	// (PlanAudit), and VerifierRatePPM the verifier rate it was posted
	// under (Policy.VerifierRatePPM).
	AuditReplaySteps int64  `json:"audit_replay_steps,omitempty"`
	VerifierRatePPM  int64  `json:"verifier_rate_ppm,omitempty"`
	EscrowMicroUSD   int64  `json:"escrow_micro_usd"`
	EscrowPendingID  string `json:"escrow_pending_id"`
	// PriceNanoUSDPerCU is the trade price of the first match, in
	// nano-dollars per CU.
	PriceNanoUSDPerCU int64        `json:"price_nano_usd_per_cu,omitempty"`
	CommittedStep     int64        `json:"committed_step"`
	Solvers           []Assignment `json:"solvers,omitempty"`
	// Auditors are the verifiers the audit was given to, in turn, with the
	// bonds they locked for it (AssignAudit).
	Auditors []AuditAssignment `json:"auditors,omitempty"`
	Dispute  *Dispute          `json:"dispute,omitempty"`
	History  []HistoryEntry    `json:"history"`
	// Audit is the audit report, stored by the operator (may be empty).
	Audit json.RawMessage `json:"audit,omitempty"`

	Pending *intent `json:"pending,omitempty"`
}

// Assignment is one solver's part of a job.
type Assignment struct {
	SolverID string `json:"solver_id"`
	// Steps the solver committed (its pro-rata weight).
	Steps         int64  `json:"steps"`
	BondMicroUSD  int64  `json:"bond_micro_usd"`
	BondPendingID string `json:"bond_pending_id"`
	Released      bool   `json:"released,omitempty"`
	// Backend is where the solver said it trains ("vulkan (NVIDIA H100
	// …)", "cpu (avx2)"): its daemon's resolved backend, as its hello
	// reported when the job started (Start). Empty before it starts.
	Backend string `json:"backend,omitempty"`
}

// Dispute is an open or past dispute.
type Dispute struct {
	VerifierID    string `json:"verifier_id"`
	SolverID      string `json:"solver_id"`
	BondMicroUSD  int64  `json:"bond_micro_usd"`
	BondPendingID string `json:"bond_pending_id"`
}

// HistoryEntry is one applied transition.
type HistoryEntry struct {
	Seq   uint64          `json:"seq"`
	Event string          `json:"event"`
	State lifecycle.State `json:"state"`
	At    time.Time       `json:"at"`
}

// intent is a transition in flight: the record to store once Transfers
// have applied (nil Next: delete the job, for a rejected posting).
type intent struct {
	Next      *Job              `json:"next"`
	Transfers []ledger.Transfer `json:"transfers"`
}

func (j *Job) clone() *Job {
	b, _ := json.Marshal(j)
	var c Job
	_ = json.Unmarshal(b, &c)
	return &c
}

func jobKey(id string) string { return "job/" + id }

// Job returns the record of the job with protocol ID id (Job.ID), or
// ErrNotFound.
func (s *Service) Job(_ context.Context, id spec.JobID) (*Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.loadJob(id.String())
}

// Jobs returns the jobs of a client (every job for clientID ""), in job ID
// order, without their pending intents.
func (s *Service) Jobs(ctx context.Context, clientID string) ([]*Job, error) {
	var out []*Job
	err := s.store.scan("job/", func(key string, v []byte) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		var j Job
		if err := json.Unmarshal(v, &j); err != nil {
			return fmt.Errorf("decode %s: %w", key, err)
		}
		if j.State != 0 && (clientID == "" || j.ClientID == clientID) {
			j.Pending = nil
			out = append(out, &j)
		}
		return nil
	})
	return out, err
}

func (s *Service) loadJob(id string) (*Job, error) {
	var j Job
	ok, err := s.store.get(jobKey(id), &j)
	if err != nil {
		return nil, err
	}
	if !ok || j.State == 0 {
		return nil, fmt.Errorf("%w: job %s", ErrNotFound, id)
	}
	return &j, nil
}

// apply runs one transition through the intent protocol. prev is the
// stored record (for a new job, one with State 0); next is what to store
// when ts applied.
func (s *Service) apply(ctx context.Context, prev, next *Job, ts []ledger.Transfer) error {
	rec := prev.clone()
	rec.Pending = &intent{Next: next, Transfers: ts}
	if err := s.store.put(jobKey(prev.ID), rec); err != nil {
		return fmt.Errorf("store intent for job %s: %w", prev.ID, err)
	}
	return s.finish(ctx, rec)
}

// finish completes rec's intent: submit, then store the next record, or
// roll back if the ledger rejected the chain.
func (s *Service) finish(ctx context.Context, rec *Job) error {
	in := rec.Pending
	var err error
	if len(in.Transfers) > 0 {
		_, err = s.submit(ctx, in.Transfers)
	}
	switch {
	case err == nil:
		if in.Next == nil {
			return s.store.del(jobKey(rec.ID))
		}
		return s.store.put(jobKey(rec.ID), in.Next)
	case rejected(err):
		rec.Pending = nil
		var serr error
		if rec.State == 0 {
			serr = s.store.del(jobKey(rec.ID))
		} else {
			serr = s.store.put(jobKey(rec.ID), rec)
		}
		return errors.Join(fmt.Errorf("job %s: %w", rec.ID, err), serr)
	default:
		return fmt.Errorf("job %s: %w", rec.ID, err) // fatal: the intent stays for recovery
	}
}

// transition computes the next record for event e, or ErrIllegalState.
func (s *Service) transition(j *Job, e lifecycle.Event) (*Job, error) {
	to, err := lifecycle.Apply(j.State, e)
	if err != nil {
		return nil, fmt.Errorf("%w: job %s is %s: %w", ErrIllegalState, j.ID, j.State, err)
	}
	n := j.clone()
	n.Pending = nil
	n.State = to
	n.Seq++
	n.History = append(n.History, HistoryEntry{Seq: n.Seq, Event: e.String(), State: to, At: s.cfg.now().UTC()})
	return n, nil
}

// PostJobRequest is a client's job.
type PostJobRequest struct {
	ClientID string
	Spec     []byte
	// MaxPriceNanoUSDPerCU caps the price, in nano-dollars per CU; 0
	// takes the market price (up to the book's maximum).
	MaxPriceNanoUSDPerCU int64
}

// PostJob decodes the spec, reserves the escrow from the client's funds
// and bids on the book; a matching ask with enough bond matches at once.
//
// Jobs are per client. The spec offered to solvers is the client's with a
// posting tag appended to its name ("#" and 16 hex digits, a keyed hash of
// the client and the spec's ID), so two clients posting one spec get two
// jobs, each with its own protocol ID (the hash of its offered spec, which
// solvers train and commit to), escrow and market order; the training is
// the same, since the name takes no part in it. The tag is keyed with a
// secret of this coordinator, so the network cannot tell who posted a job.
// Posting the same spec again with the same client and price returns the
// existing job; at another price it fails with ErrConflict.
func (s *Service) PostJob(ctx context.Context, r PostJobRequest) (*Job, error) {
	if err := CheckPartyID(r.ClientID); err != nil {
		return nil, err
	}
	sp, err := spec.Decode(r.Spec)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	// A job whose dispute answers could exceed what the wire carries could
	// not be settled (an honest party could not open what it computed):
	// refuse it before anything is escrowed.
	if err := dispute.CheckFits(sp, wire.MaxDisputePayload); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	specID, err := sp.ID()
	if err != nil {
		return nil, fmt.Errorf("%w: job id: %w", ErrInvalid, err)
	}
	offered, err := s.postingSpec(sp, r.ClientID, specID)
	if err != nil {
		return nil, err
	}
	jid, err := offered.ID()
	if err != nil {
		return nil, fmt.Errorf("%w: job id: %w", ErrInvalid, err)
	}
	offeredJSON, err := offered.Canonical()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	id := jid.String()
	terms, err := s.terms(sp, r.ClientID, id, r.MaxPriceNanoUSDPerCU)
	if err != nil {
		return nil, err
	}
	escrow := terms.EscrowMicroUSD

	s.mu.Lock()
	defer s.mu.Unlock()
	if old, err := s.loadJob(id); err == nil {
		// Only this client's own posting has this ID (the tag is keyed by
		// the client), so the message tells it nothing it did not know.
		if old.ClientID != r.ClientID || old.MaxPriceNanoUSDPerCU != r.MaxPriceNanoUSDPerCU {
			return nil, fmt.Errorf("%w: job %s was posted with other terms", ErrConflict, id)
		}
		return old, nil
	} else if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	// A bid the book has no room for is refused before anything is
	// locked (s.mu keeps other bids out until this one is on the book).
	if err := s.book.Room(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBusy, err)
	}
	client, esc := AccountRef{Kind: KindClientFunds, Party: r.ClientID}, AccountRef{Kind: KindEscrow, Party: id}
	// Check funds first so that a refused job creates no escrow account
	// (the ledger re-checks atomically).
	ca, err := s.led.Account(ctx, client.ID())
	if errors.Is(err, ledger.ErrAccountNotFound) || err == nil && ca.AvailableMicroUSD() < escrow {
		return nil, fmt.Errorf("%w: client %s cannot escrow %d micro-dollars", ErrInsufficientFunds, r.ClientID, escrow)
	} else if err != nil {
		return nil, fmt.Errorf("client funds: %w", ledgerError(err))
	}
	if err := s.ensureAccounts(ctx, client, esc); err != nil {
		return nil, err
	}
	prev := &Job{ID: id, ClientID: r.ClientID, SpecID: specID.String(), Spec: offeredJSON}
	next := prev.clone()
	next.State, next.Seq = lifecycle.Posted, 1
	next.Steps, next.CU = sp.Steps, terms.CU
	next.MaxPriceNanoUSDPerCU, next.MaxCostMicroUSD = r.MaxPriceNanoUSDPerCU, terms.MaxCostMicroUSD
	next.AuditBudgetMicroUSD, next.EscrowMicroUSD = terms.AuditBudgetMicroUSD, escrow
	next.AuditReplaySteps, next.VerifierRatePPM = terms.Audit.ReplaySteps, terms.VerifierRatePPM
	next.History = []HistoryEntry{{Seq: 1, Event: "post", State: lifecycle.Posted, At: s.cfg.now().UTC()}}
	t := s.jobTransfer(id, 1, lifecycle.LockClientEscrow, r.ClientID, client, esc, escrow)
	t.Flags = ledger.Pending
	next.EscrowPendingID = t.ID.String()
	if err := s.apply(ctx, prev, next, []ledger.Transfer{t}); err != nil {
		return nil, fmt.Errorf("post job: %w", err)
	}
	if err := s.bid(ctx, next); err != nil {
		return nil, err
	}
	return s.loadJob(id)
}

// postingTagLen is the length of a posting tag: "#" and 16 hex digits.
const postingTagLen = 17

// MaxPostedNameLen bounds the name of a posted spec: the posting tag must
// still fit spec.MaxNameLen.
const MaxPostedNameLen = spec.MaxNameLen - postingTagLen

// postingSpec returns the spec offered for client's posting of sp: a copy
// whose name carries the posting tag, HMAC-SHA-256 under the posting key
// of the client and the spec's ID, cut to 64 bits (a collision between
// two clients' postings of one spec has probability 2^-64, and would be
// refused as a conflict, not merged).
func (s *Service) postingSpec(sp *spec.Spec, client string, specID spec.JobID) (*spec.Spec, error) {
	if len(sp.Name) > MaxPostedNameLen {
		return nil, fmt.Errorf("%w: spec name has %d characters; a posted job's name may have at most %d, since the coordinator appends a %d-character posting tag", ErrInvalid, len(sp.Name), MaxPostedNameLen, postingTagLen)
	}
	mac := hmac.New(sha256.New, s.postingKey)
	mac.Write([]byte("beluga/posting/v1\x00"))
	mac.Write([]byte(client))
	mac.Write([]byte{0})
	mac.Write(specID[:])
	offered := *sp // the name is all that changes; nothing shared is written
	offered.Name = sp.Name + "#" + hex.EncodeToString(mac.Sum(nil)[:8])
	if err := offered.Validate(); err != nil {
		return nil, fmt.Errorf("%w: tagged spec: %w", ErrInvalid, err)
	}
	return &offered, nil
}

func (s *Service) jobTransfer(job string, seq uint64, a lifecycle.Action, party string, dr, cr AccountRef, amount int64) ledger.Transfer {
	t := ledger.Transfer{
		ID: jobTransferID(job, seq, a, party), DebitAccountID: dr.ID(), CreditAccountID: cr.ID(),
		AmountMicroUSD: amount, Ledger: ledger.LedgerUSD, Code: uint16(a),
	}
	if b, err := hex.DecodeString(job); err == nil {
		copy(t.UserData[:], b)
	}
	return t
}

// bid puts a job waiting for a solver on the book and handles matches.
func (s *Service) bid(ctx context.Context, j *Job) error {
	kind := market.Limit
	if j.MaxPriceNanoUSDPerCU == 0 {
		kind = market.Market
	}
	oid, ms, err := s.book.PostBid(market.Bid{ClientID: j.ClientID, JobID: j.ID, CU: j.CU, Kind: kind, MaxPriceNanoUSDPerCU: j.MaxPriceNanoUSDPerCU})
	if errors.Is(err, market.ErrBookFull) {
		return fmt.Errorf("%w: bid job %s: %w", ErrBusy, j.ID, err)
	} else if err != nil {
		return fmt.Errorf("bid job %s: %w", j.ID, err)
	}
	s.bids[j.ID] = oid
	return s.handleMatches(ctx, ms)
}

// Ask is a solver's offer (see market.Ask); the service fills the expiry
// from TTL.
type Ask struct {
	SolverID string
	// PriceNanoUSDPerCU is the limit price in nano-dollars per CU; 0
	// follows the market.
	PriceNanoUSDPerCU int64
	Capacity          int
	TTL               time.Duration
}

// PostAsk puts a solver's ask on the book; matched jobs lock the solver's
// bond from its bond account at once. A solver has one ask: a new one
// replaces the old.
func (s *Service) PostAsk(ctx context.Context, a Ask) ([]string, error) {
	if err := CheckPartyID(a.SolverID); err != nil {
		return nil, err
	}
	price := a.PriceNanoUSDPerCU
	kind := market.Limit
	if price == 0 {
		kind = market.Market
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.ensureAccounts(ctx, AccountRef{KindSolverBond, a.SolverID}, AccountRef{KindSolverEarnings, a.SolverID}); err != nil {
		return nil, err
	}
	if old, ok := s.asks[a.SolverID]; ok {
		ms, _ := s.book.Cancel(old)
		delete(s.asks, a.SolverID)
		if err := s.handleMatches(ctx, ms); err != nil {
			return nil, err
		}
	}
	oid, ms, err := s.book.PostAsk(market.Ask{SolverID: a.SolverID, Kind: kind, PriceNanoUSDPerCU: price, Capacity: a.Capacity, ExpiresAt: s.cfg.now().Add(a.TTL)})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	s.asks[a.SolverID] = oid
	var jobs []string
	for _, m := range ms {
		jobs = append(jobs, m.JobID)
	}
	return jobs, s.handleMatches(ctx, ms)
}

// handleMatches locks each matched solver's bond. A solver without enough
// bond loses its ask and the job is bid again.
func (s *Service) handleMatches(ctx context.Context, ms []market.Match) error {
	for len(ms) > 0 {
		m := ms[0]
		ms = ms[1:]
		delete(s.bids, m.JobID)
		err := s.lockBond(ctx, m)
		if err == nil {
			s.matches[m.JobID] = m.ID
			continue
		}
		if !errors.Is(err, ErrInsufficientFunds) {
			return err
		}
		more, _ := s.book.Release(m.ID)
		ms = append(ms, more...)
		if oid, ok := s.asks[m.SolverID]; ok && oid == m.AskID {
			more, _ := s.book.Cancel(oid)
			delete(s.asks, m.SolverID)
			ms = append(ms, more...)
		}
		j, err := s.loadJob(m.JobID)
		if err != nil {
			return err
		}
		oid, more, err := s.book.PostBid(market.Bid{ClientID: j.ClientID, JobID: j.ID, CU: j.CU, Kind: kindOf(j), MaxPriceNanoUSDPerCU: j.MaxPriceNanoUSDPerCU})
		if err != nil {
			return err
		}
		s.bids[j.ID] = oid
		ms = append(ms, more...)
	}
	return nil
}

func kindOf(j *Job) market.Kind {
	if j.MaxPriceNanoUSDPerCU == 0 {
		return market.Market
	}
	return market.Limit
}

// lockBond applies the match: the job becomes matched and the solver's bond
// is reserved into the job's escrow account.
func (s *Service) lockBond(ctx context.Context, m market.Match) error {
	j, err := s.loadJob(m.JobID)
	if err != nil {
		return err
	}
	next, err := s.transition(j, lifecycle.EventMatch)
	if err != nil {
		return err
	}
	pol := s.cfg.policy
	bond := max(pol.MinBondMicroUSD, mulPPM(j.MaxCostMicroUSD, pol.BondPPM))
	if next.PriceNanoUSDPerCU == 0 {
		next.PriceNanoUSDPerCU = m.PriceNanoUSDPerCU
	}
	t := s.jobTransfer(j.ID, next.Seq, lifecycle.LockSolverBond, m.SolverID, AccountRef{KindSolverBond, m.SolverID}, AccountRef{KindEscrow, j.ID}, bond)
	t.Flags = ledger.Pending
	next.Solvers = append(next.Solvers, Assignment{SolverID: m.SolverID, BondMicroUSD: bond, BondPendingID: t.ID.String()})
	return s.apply(ctx, j, next, []ledger.Transfer{t})
}

// Advance applies an event that moves no money: start, commit, open_audit.
// Checkpoint and vanish have their own methods.
func (s *Service) Advance(ctx context.Context, id string, e lifecycle.Event) (*Job, error) {
	switch e {
	case lifecycle.EventStart, lifecycle.EventCommit, lifecycle.EventOpenAudit:
	default:
		return nil, fmt.Errorf("%w: event %s is not a plain advance", ErrInvalid, e)
	}
	return s.update(ctx, id, e, func(j, n *Job) ([]ledger.Transfer, error) {
		if e == lifecycle.EventCommit {
			setSteps(n, n.Steps)
		}
		return nil, nil
	})
}

// MaxBackendBytes bounds the backend recorded with an assignment (what a
// solver's hello said: outside bytes).
const MaxBackendBytes = 200

// Start records that the job's current (last) solver started it, training
// on backend (its hello's word, trimmed to MaxBackendBytes of valid
// UTF-8; empty: not said), which the assignment keeps.
func (s *Service) Start(ctx context.Context, id, backend string) (*Job, error) {
	backend = cleanBackend(backend)
	return s.update(ctx, id, lifecycle.EventStart, func(_, n *Job) ([]ledger.Transfer, error) {
		if k := len(n.Solvers); k > 0 {
			n.Solvers[k-1].Backend = backend
		}
		return nil, nil
	})
}

// SetBackend records that the job's current (last) solver, solverID,
// trains it on backend (trimmed as by Start): what its heartbeats say
// when that differs from its hello. A job whose last solver is another
// is left alone (ErrIllegalState).
func (s *Service) SetBackend(_ context.Context, id, solverID, backend string) error {
	backend = cleanBackend(backend)
	s.mu.Lock()
	defer s.mu.Unlock()
	j, err := s.loadJob(id)
	if err != nil {
		return err
	}
	k := len(j.Solvers)
	if k == 0 || j.Solvers[k-1].SolverID != solverID {
		return fmt.Errorf("%w: job %s is not run by %s", ErrIllegalState, id, solverID)
	}
	if j.Solvers[k-1].Backend == backend {
		return nil
	}
	if j.Pending != nil {
		return fmt.Errorf("%w: job %s has a transition in flight", ErrIllegalState, id)
	}
	j.Solvers[k-1].Backend = backend
	return s.store.put(jobKey(id), j)
}

// cleanBackend is backend as valid UTF-8 of at most MaxBackendBytes.
func cleanBackend(backend string) string {
	backend = strings.ToValidUTF8(backend, "?")
	if len(backend) > MaxBackendBytes {
		backend = strings.ToValidUTF8(backend[:MaxBackendBytes], "")
	}
	return backend
}

// Checkpoint records that the running job committed every step up to
// step (its global index); the current solver is credited the steps since
// the previous solver's last checkpoint.
func (s *Service) Checkpoint(ctx context.Context, id string, step int64) (*Job, error) {
	return s.update(ctx, id, lifecycle.EventCheckpoint, func(j, n *Job) ([]ledger.Transfer, error) {
		if step < j.CommittedStep || step > j.Steps {
			return nil, fmt.Errorf("%w: checkpoint at step %d, committed %d of %d", ErrInvalid, step, j.CommittedStep, j.Steps)
		}
		setSteps(n, step)
		return nil, nil
	})
}

// setSteps credits the current (last) solver with the steps up to step.
func setSteps(n *Job, step int64) {
	if len(n.Solvers) == 0 {
		return
	}
	var before int64
	for _, a := range n.Solvers[:len(n.Solvers)-1] {
		before += a.Steps
	}
	n.Solvers[len(n.Solvers)-1].Steps = step - before
	n.CommittedStep = step
}

// Vanish records that the solver stopped answering: the job becomes
// resumable from its last checkpoint and is bid again. The vanished
// solver's bond stays locked until settlement.
func (s *Service) Vanish(ctx context.Context, id string) (*Job, error) {
	j, err := s.update(ctx, id, lifecycle.EventVanish, func(j, n *Job) ([]ledger.Transfer, error) { return nil, nil })
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// A vanished solver is not available: its ask goes.
	if last := j.Solvers[len(j.Solvers)-1].SolverID; s.asks[last] != 0 {
		ms, _ := s.book.Cancel(s.asks[last])
		delete(s.asks, last)
		if err := s.handleMatches(ctx, ms); err != nil {
			return nil, err
		}
	}
	if mid, ok := s.matches[id]; ok {
		delete(s.matches, id)
		ms, _ := s.book.Release(mid)
		if err := s.handleMatches(ctx, ms); err != nil {
			return nil, err
		}
	}
	if err := s.bid(ctx, j); err != nil {
		return nil, err
	}
	return s.loadJob(id)
}

// update loads job id, applies event e with the transfers build returns
// (build may also edit the next record n).
func (s *Service) update(ctx context.Context, id string, e lifecycle.Event, build func(j, n *Job) ([]ledger.Transfer, error)) (*Job, error) {
	if _, err := spec.ParseJobID(id); err != nil {
		return nil, fmt.Errorf("%w: job id: %v", ErrInvalid, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	j, err := s.loadJob(id)
	if err != nil {
		return nil, err
	}
	n, err := s.transition(j, e)
	if err != nil {
		return nil, err
	}
	ts, err := build(j, n)
	if err != nil {
		return nil, err
	}
	if err := linkChain(ts); err != nil {
		return nil, err
	}
	if err := s.apply(ctx, j, n, ts); err != nil {
		return nil, err
	}
	if n.State.Terminal() {
		s.releaseBook(ctx, id)
	}
	return n, nil
}

func (s *Service) releaseBook(ctx context.Context, id string) {
	if mid, ok := s.matches[id]; ok {
		delete(s.matches, id)
		ms, _ := s.book.Release(mid)
		_ = s.handleMatches(ctx, ms)
	}
	if oid, ok := s.bids[id]; ok {
		delete(s.bids, id)
		ms, _ := s.book.Cancel(oid)
		_ = s.handleMatches(ctx, ms)
	}
}

// linkChain flags all but the last transfer Linked.
func linkChain(ts []ledger.Transfer) error {
	if len(ts) > ledger.MaxChainTransfers {
		return fmt.Errorf("%w: %d transfers in one chain", ErrInvalid, len(ts))
	}
	for i := range ts {
		ts[i].Flags &^= ledger.Linked
		if i+1 < len(ts) {
			ts[i].Flags |= ledger.Linked
		}
	}
	return nil
}

// VerifierPay is what one verifier did for a job.
type VerifierPay struct {
	VerifierID string
	// Audits is the number of complete audits to pay: 0 or 1 (the audit
	// budget holds one).
	Audits int64
}

// Settle closes the audit window and pays: the escrow is posted, solvers
// get price × CU pro rata by committed steps, a verifier the compute its
// audit replays (VerifierAuditMicroUSD; at most the audit budget), the
// platform its fee, the client the rest, and every solver and auditor
// bond is released, in one linked chain. Amounts paid are rounded down
// to whole micro-dollars and the client gets back what remains, so the
// escrow is emptied exactly and rounding creates no money. Only the job's current auditor, whose bond is locked for it
// (AssignAudit), can be paid: a verifier that holds no bond for the job
// is refused with ErrInvalid.
func (s *Service) Settle(ctx context.Context, id string, verifiers []VerifierPay) (*Job, error) {
	for _, v := range verifiers {
		if err := CheckPartyID(v.VerifierID); err != nil {
			return nil, err
		}
		if v.Audits < 0 || v.Audits > 1<<20 {
			return nil, fmt.Errorf("%w: audits %d", ErrInvalid, v.Audits)
		}
	}
	return s.update(ctx, id, lifecycle.EventCloseAudit, func(j, n *Job) ([]ledger.Transfer, error) {
		for _, v := range verifiers {
			if auditor(j, v.VerifierID) < 0 {
				return nil, fmt.Errorf("%w: verifier %s holds no audit bond for job %s", ErrInvalid, v.VerifierID, j.ID)
			}
		}
		pol := s.cfg.policy
		cost, err := market.PayMicroUSD(j.PriceNanoUSDPerCU, j.CU)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		fee := mulPPM(cost, pol.FeePPM)
		audit, err := s.VerifierAuditMicroUSD(j)
		if err != nil {
			return nil, err
		}
		var vpay int64
		pays := make([]int64, len(verifiers))
		for i, v := range verifiers {
			if v.Audits > 1 {
				return nil, fmt.Errorf("%w: %d audits for verifier %s: the audit budget of job %s pays one", ErrInvalid, v.Audits, v.VerifierID, j.ID)
			}
			pays[i] = v.Audits * audit
			if pays[i] < 0 || pays[i] > j.AuditBudgetMicroUSD {
				return nil, fmt.Errorf("%w: verifier pay exceeds the audit budget", ErrInvalid)
			}
			vpay += pays[i]
		}
		if vpay > j.AuditBudgetMicroUSD {
			return nil, fmt.Errorf("%w: verifier pay %d exceeds the audit budget %d", ErrInvalid, vpay, j.AuditBudgetMicroUSD)
		}
		refund := j.EscrowMicroUSD - cost - fee - vpay
		if refund < 0 {
			return nil, fmt.Errorf("%w: escrow %d does not cover %d", ErrLedger, j.EscrowMicroUSD, cost+fee+vpay)
		}
		weights := make([]int64, len(j.Solvers))
		for i, a := range j.Solvers {
			weights[i] = a.Steps
		}
		shares, err := lifecycle.ProRata(cost, weights)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		esc, client := AccountRef{KindEscrow, j.ID}, AccountRef{KindClientFunds, j.ClientID}
		var refs []AccountRef
		for _, v := range verifiers {
			refs = append(refs, AccountRef{KindVerifierEarnings, v.VerifierID})
		}
		if err := s.ensureAccounts(ctx, refs...); err != nil {
			return nil, err
		}
		post := s.jobTransfer(j.ID, n.Seq, lifecycle.PaySolversProRata, "escrow", client, esc, j.EscrowMicroUSD)
		post.Flags, post.PendingID = ledger.PostPending, mustTID(j.EscrowPendingID)
		ts := []ledger.Transfer{post}
		for i, a := range j.Solvers {
			if shares[i] > 0 {
				ts = append(ts, s.jobTransfer(j.ID, n.Seq, lifecycle.PaySolversProRata, fmt.Sprint(i, "/", a.SolverID), esc, AccountRef{KindSolverEarnings, a.SolverID}, shares[i]))
			}
		}
		for i, v := range verifiers {
			if pays[i] > 0 {
				ts = append(ts, s.jobTransfer(j.ID, n.Seq, lifecycle.PayVerifiers, v.VerifierID, esc, AccountRef{KindVerifierEarnings, v.VerifierID}, pays[i]))
			}
		}
		if fee > 0 {
			ts = append(ts, s.jobTransfer(j.ID, n.Seq, lifecycle.ChargeFee, "", esc, AccountRef{Kind: KindPlatformFees}, fee))
		}
		if refund > 0 {
			ts = append(ts, s.jobTransfer(j.ID, n.Seq, lifecycle.RefundClientRemainder, j.ClientID, esc, client, refund))
		}
		ts = append(ts, s.releaseBonds(j, n, -1)...)
		return append(ts, s.releaseAuditors(j, n, "")...), nil
	})
}

// releaseBonds voids the bond reservations of every assignment but the
// one at index skip (-1: none).
func (s *Service) releaseBonds(j, n *Job, skip int) []ledger.Transfer {
	var ts []ledger.Transfer
	for i, a := range j.Solvers {
		if a.Released || i == skip {
			continue
		}
		t := s.jobTransfer(j.ID, n.Seq, lifecycle.ReleaseSolverBonds, fmt.Sprint(i, "/", a.SolverID), AccountRef{KindSolverBond, a.SolverID}, AccountRef{KindEscrow, j.ID}, a.BondMicroUSD)
		t.Flags, t.PendingID = ledger.VoidPending, mustTID(a.BondPendingID)
		ts = append(ts, t)
		n.Solvers[i].Released = true
	}
	return ts
}

// Dispute records the fraud evidence of the job's current auditor against
// a solver of the job; the bond the auditor locked for the audit
// (AssignAudit) is held for the dispute. A verifier that is not the job's
// auditor is refused with ErrInvalid: nobody disputes without a bond at
// stake.
func (s *Service) Dispute(ctx context.Context, id, verifierID, solverID string) (*Job, error) {
	if err := CheckPartyID(verifierID); err != nil {
		return nil, err
	}
	return s.update(ctx, id, lifecycle.EventDispute, func(j, n *Job) ([]ledger.Transfer, error) {
		if !slices.ContainsFunc(j.Solvers, func(a Assignment) bool { return a.SolverID == solverID }) {
			return nil, fmt.Errorf("%w: %q did not run job %s", ErrInvalid, solverID, j.ID)
		}
		i := auditor(j, verifierID)
		if i < 0 {
			return nil, fmt.Errorf("%w: verifier %s holds no audit bond for job %s", ErrInvalid, verifierID, j.ID)
		}
		a := j.Auditors[i]
		n.Dispute = &Dispute{VerifierID: verifierID, SolverID: solverID, BondMicroUSD: a.BondMicroUSD, BondPendingID: a.BondPendingID}
		return nil, nil
	})
}

// SlashSolver rules the dispute against the solver: its bond is posted
// into escrow and paid out as the verifier's bounty and the client's
// compensation; the verifier's bond, the escrow and the other solvers'
// bonds are released.
func (s *Service) SlashSolver(ctx context.Context, id string) (*Job, error) {
	return s.update(ctx, id, lifecycle.EventRuleCheat, func(j, n *Job) ([]ledger.Transfer, error) {
		d := j.Dispute
		i := slices.IndexFunc(j.Solvers, func(a Assignment) bool { return a.SolverID == d.SolverID && !a.Released })
		if i < 0 {
			return nil, fmt.Errorf("%w: no locked bond for %s", ErrIllegalState, d.SolverID)
		}
		a := j.Solvers[i]
		esc, client := AccountRef{KindEscrow, j.ID}, AccountRef{KindClientFunds, j.ClientID}
		sb := AccountRef{KindSolverBond, a.SolverID}
		post := s.jobTransfer(j.ID, n.Seq, lifecycle.SlashSolverBondToClient, "post/"+a.SolverID, sb, esc, a.BondMicroUSD)
		post.Flags, post.PendingID = ledger.PostPending, mustTID(a.BondPendingID)
		n.Solvers[i].Released = true
		ts := []ledger.Transfer{post}
		bounty := mulPPM(a.BondMicroUSD, s.cfg.policy.BountyPPM)
		if comp := a.BondMicroUSD - bounty; comp > 0 {
			ts = append(ts, s.jobTransfer(j.ID, n.Seq, lifecycle.SlashSolverBondToClient, j.ClientID, esc, client, comp))
		}
		if bounty > 0 {
			ts = append(ts, s.jobTransfer(j.ID, n.Seq, lifecycle.PayVerifierBounty, d.VerifierID, esc, AccountRef{KindVerifierEarnings, d.VerifierID}, bounty))
		}
		vb := s.jobTransfer(j.ID, n.Seq, lifecycle.ReleaseVerifierBond, d.VerifierID, AccountRef{KindVerifierBond, d.VerifierID}, esc, d.BondMicroUSD)
		vb.Flags, vb.PendingID = ledger.VoidPending, mustTID(d.BondPendingID)
		markAuditorReleased(n, d.BondPendingID)
		ev := s.jobTransfer(j.ID, n.Seq, lifecycle.RefundClientEscrow, j.ClientID, client, esc, j.EscrowMicroUSD)
		ev.Flags, ev.PendingID = ledger.VoidPending, mustTID(j.EscrowPendingID)
		ts = append(ts, vb, ev)
		ts = append(ts, s.releaseBonds(j, n, i)...)
		return append(ts, s.releaseAuditors(j, n, d.BondPendingID)...), nil
	})
}

// SlashVerifier rules the dispute against the verifier (a false
// accusation): its bond is posted into escrow and paid to the accused
// solver's earnings; then the audit window resumes.
func (s *Service) SlashVerifier(ctx context.Context, id string) (*Job, error) {
	if _, err := s.update(ctx, id, lifecycle.EventRuleFalseAccusation, func(j, n *Job) ([]ledger.Transfer, error) {
		d := j.Dispute
		esc := AccountRef{KindEscrow, j.ID}
		post := s.jobTransfer(j.ID, n.Seq, lifecycle.SlashVerifierBondToSolver, "post/"+d.VerifierID, AccountRef{KindVerifierBond, d.VerifierID}, esc, d.BondMicroUSD)
		post.Flags, post.PendingID = ledger.PostPending, mustTID(d.BondPendingID)
		pay := s.jobTransfer(j.ID, n.Seq, lifecycle.SlashVerifierBondToSolver, d.SolverID, esc, AccountRef{KindSolverEarnings, d.SolverID}, d.BondMicroUSD)
		markAuditorReleased(n, d.BondPendingID)
		return []ledger.Transfer{post, pay}, nil
	}); err != nil {
		return nil, err
	}
	return s.update(ctx, id, lifecycle.EventResumeAudit, func(j, n *Job) ([]ledger.Transfer, error) { return nil, nil })
}

// Cancel withdraws a job that is posted or resumable: the escrow and every
// bond are released.
func (s *Service) Cancel(ctx context.Context, id string) (*Job, error) {
	return s.update(ctx, id, lifecycle.EventCancel, func(j, n *Job) ([]ledger.Transfer, error) {
		ev := s.jobTransfer(j.ID, n.Seq, lifecycle.RefundClientEscrow, j.ClientID, AccountRef{KindClientFunds, j.ClientID}, AccountRef{KindEscrow, j.ID}, j.EscrowMicroUSD)
		ev.Flags, ev.PendingID = ledger.VoidPending, mustTID(j.EscrowPendingID)
		return append([]ledger.Transfer{ev}, s.releaseBonds(j, n, -1)...), nil
	})
}

// MaxAuditBytes bounds a stored audit report.
const MaxAuditBytes = 1 << 20

// SetAudit stores the job's audit report (JSON).
func (s *Service) SetAudit(ctx context.Context, id string, report json.RawMessage) error {
	if len(report) > MaxAuditBytes || !json.Valid(report) {
		return fmt.Errorf("%w: audit report must be valid JSON up to %d bytes", ErrInvalid, MaxAuditBytes)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	j, err := s.loadJob(id)
	if err != nil {
		return err
	}
	if j.Pending != nil {
		return fmt.Errorf("%w: job %s has a transition in flight", ErrIllegalState, id)
	}
	j.Audit = report
	return s.store.put(jobKey(id), j)
}

func mustTID(s string) ledger.TransferID {
	var id ledger.TransferID
	b, _ := hex.DecodeString(s)
	copy(id[:], b)
	return id
}

// recover completes interrupted transitions and runs and rebids waiting
// jobs.
func (s *Service) recover(ctx context.Context) error {
	var jobs []*Job
	err := s.store.scan("job/", func(_ string, v []byte) error {
		var j Job
		if err := json.Unmarshal(v, &j); err != nil {
			return err
		}
		jobs = append(jobs, &j)
		return nil
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, j := range jobs {
		if j.Pending != nil {
			if err := s.finish(ctx, j); err != nil && !rejected(err) {
				return err
			}
			if j2, err := s.loadJob(j.ID); err == nil {
				*j = *j2
			} else {
				continue
			}
		}
	}
	for _, j := range jobs {
		if j.State == lifecycle.Posted || j.State == lifecycle.Resumable {
			if err := s.bid(ctx, j); err != nil {
				return err
			}
		}
	}
	return s.recoverRuns(ctx)
}
