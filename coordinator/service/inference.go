package service

import (
	"context"
	"errors"
	"fmt"
	"math/bits"

	"github.com/beluga-compute/beluga/coordinator/ledger"
)

// Inference billing. A request's price is held from the client's funds
// before it runs (a pending transfer to the platform's fee account, sized
// for max_tokens), then settled exactly once: posted at the actual cost
// with the solver's share moved on to its earnings in the same linked
// chain, or voided when the request fails. Every transfer's ID derives
// from the gateway's request ID, so a retry of either step is a no-op
// and a request cannot be billed twice.

// Inference transfer codes.
const (
	CodeInferenceHold   uint16 = 300 // client → platform_fees, pending
	CodeInferenceSettle uint16 = 301 // the hold posted at the actual cost
	CodeInferencePay    uint16 = 302 // platform_fees → solver_earnings
)

// InferenceHoldSec bounds a hold: a request not settled within it (the
// coordinator died mid-request) is released by the ledger itself.
const InferenceHoldSec = 600

// TokenCostMicroUSD is what n tokens cost at perKMicroUSD micro-dollars
// per 1,000 tokens, rounded up: ⌈n · perK / 1000⌉.
func TokenCostMicroUSD(n, perKMicroUSD int64) (int64, error) {
	if n < 0 || perKMicroUSD < 0 {
		return 0, fmt.Errorf("%w: negative tokens or price", ErrInvalid)
	}
	hi, lo := bits.Mul64(uint64(n), uint64(perKMicroUSD))
	lo, c := bits.Add64(lo, 999, 0)
	hi += c
	if hi >= 1000 {
		return 0, fmt.Errorf("%w: amount overflow", ErrInvalid)
	}
	q, _ := bits.Div64(hi, lo, 1000)
	if q > 1<<62 {
		return 0, fmt.Errorf("%w: amount overflow", ErrInvalid)
	}
	return int64(q), nil
}

func holdID(req string) ledger.TransferID { return ledger.DeriveTransferID("inference", req, "hold") }

// HoldInference reserves amount micro-dollars of client's funds for
// request req. ErrInsufficientFunds: the client cannot cover it (nothing
// changed). Holding the same request again is a no-op.
func (s *Service) HoldInference(ctx context.Context, client, req string, amountMicroUSD int64) error {
	ref := AccountRef{Kind: KindClientFunds, Party: client}
	if err := ref.Validate(); err != nil {
		return err
	}
	if req == "" || amountMicroUSD <= 0 {
		return fmt.Errorf("%w: hold of %d µ$ for request %q", ErrInvalid, amountMicroUSD, req)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.ensureAccounts(ctx, ref, AccountRef{Kind: KindPlatformFees}); err != nil {
		return err
	}
	t := ledger.Transfer{ID: holdID(req), DebitAccountID: ref.ID(), CreditAccountID: AccountRef{Kind: KindPlatformFees}.ID(),
		AmountMicroUSD: amountMicroUSD, Ledger: ledger.LedgerUSD, Code: CodeInferenceHold, Flags: ledger.Pending, TimeoutSec: InferenceHoldSec}
	copy(t.UserData[:], req)
	if _, err := s.submit(ctx, []ledger.Transfer{t}); err != nil {
		return fmt.Errorf("hold for request %s: %w", req, err)
	}
	return nil
}

// SettleInference posts request req's hold at cost micro-dollars (≤ the
// hold; the rest goes back to the client) and pays solver its share, cost
// less the platform fee (Policy.FeePPM, rounded up), in one linked chain.
// Settling twice is a no-op; a hold that was voided or expired cannot be
// settled (ErrIllegalState).
func (s *Service) SettleInference(ctx context.Context, req, solver string, costMicroUSD int64) error {
	earn := AccountRef{Kind: KindSolverEarnings, Party: solver}
	if err := earn.Validate(); err != nil {
		return err
	}
	if costMicroUSD <= 0 {
		return fmt.Errorf("%w: cost %d µ$", ErrInvalid, costMicroUSD)
	}
	fee := costMicroUSD - mulPPM(costMicroUSD, 1_000_000-s.cfg.policy.FeePPM)
	share := costMicroUSD - fee
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.ensureAccounts(ctx, earn); err != nil {
		return err
	}
	post := ledger.Transfer{ID: ledger.DeriveTransferID("inference", req, "settle"), PendingID: holdID(req),
		DebitAccountID: AccountRef{Kind: KindClientFunds}.ID(), AmountMicroUSD: costMicroUSD,
		Ledger: ledger.LedgerUSD, Code: CodeInferenceSettle, Flags: ledger.PostPending}
	if p, err := s.led.Transfer(ctx, holdID(req)); err == nil {
		post.DebitAccountID, post.CreditAccountID = p.DebitAccountID, p.CreditAccountID
	} else {
		return fmt.Errorf("%w: request %s has no hold: %v", ErrIllegalState, req, err)
	}
	ts := []ledger.Transfer{post}
	if share > 0 {
		ts[0].Flags |= ledger.Linked
		ts = append(ts, ledger.Transfer{ID: ledger.DeriveTransferID("inference", req, "pay"), DebitAccountID: AccountRef{Kind: KindPlatformFees}.ID(),
			CreditAccountID: earn.ID(), AmountMicroUSD: share, Ledger: ledger.LedgerUSD, Code: CodeInferencePay})
	}
	for i := range ts {
		copy(ts[i].UserData[:], req)
	}
	if _, err := s.submit(ctx, ts); err != nil {
		if errors.Is(err, ledger.ErrAlreadyVoided) || errors.Is(err, ledger.ErrPendingExpired) {
			return fmt.Errorf("%w: request %s: %v", ErrIllegalState, req, err)
		}
		return fmt.Errorf("settle request %s: %w", req, err)
	}
	return nil
}

// VoidInference releases request req's hold: a failed request costs
// nothing. Voiding twice, or a hold that expired, is a no-op.
func (s *Service) VoidInference(ctx context.Context, req string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.led.Transfer(ctx, holdID(req))
	if err != nil {
		return fmt.Errorf("%w: request %s has no hold: %v", ErrNotFound, req, err)
	}
	t := ledger.Transfer{ID: ledger.DeriveTransferID("inference", req, "void"), PendingID: holdID(req),
		DebitAccountID: p.DebitAccountID, CreditAccountID: p.CreditAccountID, AmountMicroUSD: p.AmountMicroUSD,
		Ledger: ledger.LedgerUSD, Code: CodeInferenceHold, Flags: ledger.VoidPending}
	copy(t.UserData[:], req)
	if _, err := s.submit(ctx, []ledger.Transfer{t}); err != nil {
		if errors.Is(err, ledger.ErrPendingExpired) {
			return nil
		}
		if errors.Is(err, ledger.ErrAlreadyPosted) {
			return fmt.Errorf("%w: request %s was settled: %v", ErrIllegalState, req, err)
		}
		return fmt.Errorf("void request %s: %w", req, err)
	}
	return nil
}

// CodeInferenceSlash is the transfer code of a slashed inference bond.
const CodeInferenceSlash uint16 = 303

// InferenceSlash is what SlashInference moved.
type InferenceSlash struct {
	SlashedMicroUSD  int64 // taken from the solver's bond
	RefundMicroUSD   int64 // to the client (bond and clawback)
	BountyMicroUSD   int64 // to the verifier that proved the fraud
	PlatformMicroUSD int64 // the rest
	// ClawbackMicroUSD is the part of the refund taken back from the
	// solver's unpaid earnings, when its bond did not cover it.
	ClawbackMicroUSD int64
}

// SlashInference takes up to the policy's minimum bond from solver's bond
// for request req, whose receipt a verifier proved false (SPEC.md §21.4):
// the client gets the request's cost back (refundMicroUSD), the verifier
// Policy.BountyPPM of the rest, the platform what remains — one linked
// chain, once per request (a second call is a no-op and reports nothing
// moved). With verifier "" (the referee found the accusing verifier wrong
// too: both lose) nobody earns a bounty and the platform takes the rest.
// A bond that cannot refund the client (a cheater's earlier frauds took
// it) is made up from the solver's unpaid earnings — what it was paid for
// answers like this one — as far as they go.
func (s *Service) SlashInference(ctx context.Context, req, solver, client, verifier string, refundMicroUSD int64) (InferenceSlash, error) {
	bond := AccountRef{Kind: KindSolverBond, Party: solver}
	earnings := AccountRef{Kind: KindSolverEarnings, Party: solver}
	refs := []AccountRef{bond, {Kind: KindClientFunds, Party: client}, {Kind: KindVerifierEarnings, Party: verifier}, {Kind: KindPlatformFees}, earnings}
	if verifier == "" {
		refs[2] = refs[3] // no bounty: its (zero) share names the platform
	}
	for _, r := range refs {
		if err := r.Validate(); err != nil {
			return InferenceSlash{}, err
		}
	}
	if refundMicroUSD < 0 {
		return InferenceSlash{}, fmt.Errorf("%w: refund %d", ErrInvalid, refundMicroUSD)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, what := range []string{"refund", "bounty", "platform", "clawback"} {
		if _, err := s.led.Transfer(ctx, ledger.DeriveTransferID("inference", req, "slash", what)); err == nil {
			return InferenceSlash{}, nil // already slashed for this request
		}
	}
	if err := s.ensureAccounts(ctx, refs...); err != nil {
		return InferenceSlash{}, err
	}
	a, err := s.led.Account(ctx, bond.ID())
	if err != nil {
		return InferenceSlash{}, fmt.Errorf("slash request %s: %w", req, err)
	}
	amount := min(a.Balances.AvailableMicroUSD(), s.cfg.policy.MinBondMicroUSD)
	var sl InferenceSlash
	sl.SlashedMicroUSD = max(amount, 0)
	sl.RefundMicroUSD = min(refundMicroUSD, sl.SlashedMicroUSD)
	rest := sl.SlashedMicroUSD - sl.RefundMicroUSD
	if verifier != "" {
		sl.BountyMicroUSD = mulPPM(rest, s.cfg.policy.BountyPPM)
	}
	sl.PlatformMicroUSD = rest - sl.BountyMicroUSD
	if short := refundMicroUSD - sl.RefundMicroUSD; short > 0 {
		e, err := s.balances(ctx, earnings)
		if err != nil {
			return InferenceSlash{}, fmt.Errorf("slash request %s: %w", req, err)
		}
		sl.ClawbackMicroUSD = max(min(short, e.AvailableMicroUSD()), 0)
		sl.RefundMicroUSD += sl.ClawbackMicroUSD
	}
	var ts []ledger.Transfer
	for _, p := range []struct {
		what     string
		from, to AccountRef
		amount   int64
	}{{"refund", bond, refs[1], sl.RefundMicroUSD - sl.ClawbackMicroUSD}, {"bounty", bond, refs[2], sl.BountyMicroUSD},
		{"platform", bond, refs[3], sl.PlatformMicroUSD}, {"clawback", earnings, refs[1], sl.ClawbackMicroUSD}} {
		if p.amount <= 0 {
			continue
		}
		t := ledger.Transfer{ID: ledger.DeriveTransferID("inference", req, "slash", p.what), DebitAccountID: p.from.ID(), CreditAccountID: p.to.ID(),
			AmountMicroUSD: p.amount, Ledger: ledger.LedgerUSD, Code: CodeInferenceSlash}
		copy(t.UserData[:], req)
		ts = append(ts, t)
	}
	if len(ts) == 0 {
		return sl, nil // an empty bond: nothing to take
	}
	if err := linkChain(ts); err != nil {
		return InferenceSlash{}, err
	}
	if _, err := s.submit(ctx, ts); err != nil {
		return InferenceSlash{}, fmt.Errorf("slash request %s: %w", req, err)
	}
	return sl, nil
}

// CodeInferenceFalseVerdict is the transfer code of a verifier bond
// slashed for a fraud verdict the referee refuted.
const CodeInferenceFalseVerdict uint16 = 304

// FalseVerdictSlash is what SlashFalseVerdict moved.
type FalseVerdictSlash struct {
	SlashedMicroUSD  int64 // taken from the verifier's bond
	SolverMicroUSD   int64 // to the wrongly accused solver
	PlatformMicroUSD int64 // the rest
}

// SlashFalseVerdict takes up to Policy.VerifierBondMicroUSD from
// verifier's bond for its fraud verdict on request req, which the
// referee's re-run refuted (SPEC.md §21.4): Policy.BountyPPM of it to the
// solver it accused, the rest to the platform — one linked chain, once
// per request (a second call is a no-op and reports nothing moved). With
// solver "" (the referee found the accused solver wrong too: both lose)
// the platform takes it all.
func (s *Service) SlashFalseVerdict(ctx context.Context, req, verifier, solver string) (FalseVerdictSlash, error) {
	return s.slashVerifier(ctx, req, verifier, solver, "false-verdict", CodeInferenceFalseVerdict)
}

// CodeInferenceFalsePass is the transfer code of a verifier bond slashed
// for passing a receipt the referee then proved fraudulent.
const CodeInferenceFalsePass uint16 = 305

// SlashFalsePass takes up to Policy.VerifierBondMicroUSD from verifier's
// bond, all to the platform, for passing request req's receipt, which a
// second verifier's fraud verdict and the referee's game then proved
// fraudulent (the check of SPEC.md §21.4 is exact: a verifier that ran it
// could not have passed it). Once per request, as SlashFalseVerdict.
func (s *Service) SlashFalsePass(ctx context.Context, req, verifier string) (FalseVerdictSlash, error) {
	return s.slashVerifier(ctx, req, verifier, "", "false-pass", CodeInferenceFalsePass)
}

// slashVerifier is SlashFalseVerdict and SlashFalsePass: the slash of
// verifier's bond for request req, tagged tag in its transfer IDs (once
// per request and tag), a share to solver unless "".
func (s *Service) slashVerifier(ctx context.Context, req, verifier, solver, tag string, code uint16) (FalseVerdictSlash, error) {
	bond := AccountRef{Kind: KindVerifierBond, Party: verifier}
	refs := []AccountRef{bond, {Kind: KindSolverEarnings, Party: solver}, {Kind: KindPlatformFees}}
	if solver == "" {
		refs[1] = refs[2] // no share: its (zero) transfer names the platform
	}
	for _, r := range refs {
		if err := r.Validate(); err != nil {
			return FalseVerdictSlash{}, err
		}
	}
	if req == "" {
		return FalseVerdictSlash{}, fmt.Errorf("%w: no request", ErrInvalid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, what := range []string{"solver", "platform"} {
		if _, err := s.led.Transfer(ctx, ledger.DeriveTransferID("inference", req, tag, what)); err == nil {
			return FalseVerdictSlash{}, nil // already slashed for this request
		}
	}
	if err := s.ensureAccounts(ctx, refs...); err != nil {
		return FalseVerdictSlash{}, err
	}
	a, err := s.led.Account(ctx, bond.ID())
	if err != nil {
		return FalseVerdictSlash{}, fmt.Errorf("slash verifier %s for request %s: %w", verifier, req, err)
	}
	var sl FalseVerdictSlash
	sl.SlashedMicroUSD = max(min(a.Balances.AvailableMicroUSD(), s.cfg.policy.VerifierBondMicroUSD), 0)
	if solver != "" {
		sl.SolverMicroUSD = mulPPM(sl.SlashedMicroUSD, s.cfg.policy.BountyPPM)
	}
	sl.PlatformMicroUSD = sl.SlashedMicroUSD - sl.SolverMicroUSD
	var ts []ledger.Transfer
	for _, p := range []struct {
		what   string
		to     AccountRef
		amount int64
	}{{"solver", refs[1], sl.SolverMicroUSD}, {"platform", refs[2], sl.PlatformMicroUSD}} {
		if p.amount <= 0 {
			continue
		}
		t := ledger.Transfer{ID: ledger.DeriveTransferID("inference", req, tag, p.what), DebitAccountID: bond.ID(), CreditAccountID: p.to.ID(),
			AmountMicroUSD: p.amount, Ledger: ledger.LedgerUSD, Code: code}
		copy(t.UserData[:], req)
		ts = append(ts, t)
	}
	if len(ts) == 0 {
		return sl, nil // an empty bond: nothing to take
	}
	if err := linkChain(ts); err != nil {
		return FalseVerdictSlash{}, err
	}
	if _, err := s.submit(ctx, ts); err != nil {
		return FalseVerdictSlash{}, fmt.Errorf("slash verifier %s for request %s: %w", verifier, req, err)
	}
	return sl, nil
}
