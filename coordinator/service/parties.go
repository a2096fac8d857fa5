package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/beluga-compute/beluga/coordinator/ledger"
)

// PartyRole is the side of the market a party works on: a solver or a
// verifier (clients have their own statement).
type PartyRole string

// Party roles.
const (
	PartySolver   PartyRole = "solver"
	PartyVerifier PartyRole = "verifier"
)

// accounts are the party's bond and earnings accounts.
func (r PartyRole) accounts(party string) (bond, earnings AccountRef, err error) {
	switch r {
	case PartySolver:
		return AccountRef{KindSolverBond, party}, AccountRef{KindSolverEarnings, party}, nil
	case PartyVerifier:
		return AccountRef{KindVerifierBond, party}, AccountRef{KindVerifierEarnings, party}, nil
	}
	return AccountRef{}, AccountRef{}, fmt.Errorf("%w: role %q is neither solver nor verifier", ErrInvalid, r)
}

// PartyStatus is what a solver or verifier has with the coordinator:
// its bond, its jobs, its earnings and its next payout. Amounts are
// micro-dollars unless named cents.
type PartyStatus struct {
	Party string    `json:"party"`
	Role  PartyRole `json:"role"`
	// BondMicroUSD is the bond free to lock into new jobs;
	// BondHeldMicroUSD is locked in jobs under way.
	BondMicroUSD     int64 `json:"bond_micro_usd"`
	BondHeldMicroUSD int64 `json:"bond_held_micro_usd"`
	// MinBondMicroUSD is the least free bond that gets the party work (a
	// solver's bond per job is the larger of this and a share of the
	// job's maximum cost; a verifier's is the audit plan's deterrent).
	MinBondMicroUSD int64 `json:"min_bond_micro_usd"`
	// EarningsMicroUSD is earned and not yet paid out.
	EarningsMicroUSD int64       `json:"earnings_micro_usd"`
	Jobs             []PartyJob  `json:"jobs"`
	NextPayout       PayoutQuote `json:"next_payout"`
}

// PartyJob is one job the party worked on.
type PartyJob struct {
	JobID string `json:"job_id"`
	State string `json:"state"`
	// Steps the solver committed (solvers only).
	Steps int64 `json:"steps,omitempty"`
}

// PayoutQuote says when the next payout run is and what it would pay the
// party if the balance stayed as it is.
type PayoutQuote struct {
	// Period is the run's ID (its date, YYYY-MM-DD), At its instant.
	Period string    `json:"period"`
	At     time.Time `json:"at"`
	// AmountCents is what the run would pay: whole cents of the earnings,
	// zero below the schedule's minimum (MinimumCents) or without bank
	// details.
	AmountCents  int64 `json:"amount_cents"`
	MinimumCents int64 `json:"minimum_cents"`
	// BankDetails: the party's bank details are on file (sealed); without
	// them no run pays it.
	BankDetails bool `json:"bank_details"`
}

// SolverMinBond is the least free bond that gets a solver matched: the
// policy's minimum bond (a job's bond is at least that).
func (s *Service) SolverMinBond() int64 { return s.cfg.policy.MinBondMicroUSD }

// Shortfall is what a solver or verifier lacks to be given work.
type Shortfall struct {
	Party string
	Role  PartyRole
	// NotEnrolled: a verifier without an API key of the verifier role
	// for its party.
	NotEnrolled bool
	// BondMicroUSD is the bond free to lock, MinBondMicroUSD the least
	// that gets the party work (PartyStatus's).
	BondMicroUSD, MinBondMicroUSD int64
}

// NeedsBond reports whether the free bond is below the minimum.
func (f Shortfall) NeedsBond() bool { return f.BondMicroUSD < f.MinBondMicroUSD }

// Reasons says in words what the party lacks and what an operator does
// about it; none when it lacks nothing.
func (f Shortfall) Reasons() []string {
	var why []string
	if f.NotEnrolled {
		why = append(why, fmt.Sprintf("not enrolled: an API key of the verifier role for party %s enrols it (beluga verifier signup, or the operator's beluga operator key)", f.Party))
	}
	if f.NeedsBond() {
		what := "no bond"
		if f.BondMicroUSD > 0 {
			what = "bond " + dollars(f.BondMicroUSD) + " below " + dollars(f.MinBondMicroUSD)
		}
		why = append(why, fmt.Sprintf("%s: the operator deposits at least %s to account %s_bond:%s (work starts when it arrives)",
			what, dollars(f.MinBondMicroUSD-f.BondMicroUSD), f.Role, f.Party))
	}
	return why
}

// dollars formats micro-dollars for people ("$10.00", "$0.25").
func dollars(microUSD int64) string {
	return fmt.Sprintf("$%d.%02d", microUSD/1_000_000, microUSD%1_000_000/10_000)
}

// Shortfall returns what party in role lacks to be given work: a free
// bond of at least the minimum and, for a verifier, enrolment. It reads
// the bond's balance (and a verifier's keys), not Party's jobs.
func (s *Service) Shortfall(ctx context.Context, party string, role PartyRole) (Shortfall, error) {
	if err := CheckPartyID(party); err != nil {
		return Shortfall{}, err
	}
	bond, _, err := role.accounts(party)
	if err != nil {
		return Shortfall{}, err
	}
	f := Shortfall{Party: party, Role: role, MinBondMicroUSD: s.cfg.policy.MinBondMicroUSD}
	if role == PartyVerifier {
		f.MinBondMicroUSD = s.cfg.policy.VerifierBondMicroUSD
		enrolled, err := s.Enrolled(ctx, party)
		if err != nil {
			return Shortfall{}, err
		}
		f.NotEnrolled = !enrolled
	}
	b, err := s.balances(ctx, bond)
	if err != nil {
		return Shortfall{}, err
	}
	f.BondMicroUSD = b.AvailableMicroUSD()
	return f, nil
}

// Party returns the status of a solver's or verifier's party; a party the
// ledger has never seen has zero balances and no jobs (it is not an
// error: a new daemon asks before its first deposit).
func (s *Service) Party(ctx context.Context, party string, role PartyRole) (*PartyStatus, error) {
	if err := CheckPartyID(party); err != nil {
		return nil, err
	}
	bond, earnings, err := role.accounts(party)
	if err != nil {
		return nil, err
	}
	st := &PartyStatus{Party: party, Role: role, Jobs: []PartyJob{}, MinBondMicroUSD: s.cfg.policy.MinBondMicroUSD}
	if role == PartyVerifier {
		st.MinBondMicroUSD = s.cfg.policy.VerifierBondMicroUSD
	}
	b, err := s.balances(ctx, bond)
	if err != nil {
		return nil, err
	}
	st.BondMicroUSD, st.BondHeldMicroUSD = b.AvailableMicroUSD(), b.DebitsPendingMicroUSD
	e, err := s.balances(ctx, earnings)
	if err != nil {
		return nil, err
	}
	st.EarningsMicroUSD = e.AvailableMicroUSD()
	jobs, err := s.Jobs(ctx, "")
	if err != nil {
		return nil, err
	}
	for _, j := range jobs {
		pj := PartyJob{JobID: j.ID, State: j.State.String()}
		mine := false
		if role == PartySolver {
			for _, a := range j.Solvers {
				if a.SolverID == party {
					mine, pj.Steps = true, pj.Steps+a.Steps
				}
			}
		} else {
			for _, a := range j.Auditors {
				mine = mine || a.VerifierID == party
			}
		}
		if mine {
			st.Jobs = append(st.Jobs, pj)
		}
	}
	sch := s.cfg.schedule
	now := s.cfg.now()
	p := sch.PeriodFor(now)
	st.NextPayout = PayoutQuote{Period: p.ID(), At: p.End(), MinimumCents: sch.MinimumPayoutCents()}
	_, has, err := s.store.GetRaw("bank/" + payeeID(earnings))
	if err != nil {
		return nil, err
	}
	st.NextPayout.BankDetails = has && s.cfg.vault != nil
	if cents, _, ok := sch.Payable(st.EarningsMicroUSD); ok && st.NextPayout.BankDetails {
		st.NextPayout.AmountCents = cents
	}
	return st, nil
}

// balances are an account's balances; zero for an account the ledger has
// not opened yet.
func (s *Service) balances(ctx context.Context, ref AccountRef) (ledger.Balances, error) {
	a, err := s.led.Account(ctx, ref.ID())
	if errors.Is(err, ledger.ErrAccountNotFound) {
		return ledger.Balances{}, nil
	}
	if err != nil {
		return ledger.Balances{}, ledgerError(err)
	}
	return a.Balances, nil
}

// WithdrawAsk takes a solver's ask off the book (a paused solver takes no
// job); it reports whether there was one. Jobs it had matched are not
// touched.
func (s *Service) WithdrawAsk(ctx context.Context, solverID string) (bool, error) {
	if err := CheckPartyID(solverID); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	oid, ok := s.asks[solverID]
	if !ok {
		return false, nil
	}
	delete(s.asks, solverID)
	ms, _ := s.book.Cancel(oid)
	return true, s.handleMatches(ctx, ms)
}
