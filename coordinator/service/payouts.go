package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/beluga-compute/beluga/coordinator/ledger"
	"github.com/beluga-compute/beluga/coordinator/payout"
)

// Run is a payout run: who is paid what for one period. It is stored
// before any money moves, so a re-executed run pays the same amounts.
type Run struct {
	Period string `json:"period"`
	// CreatedAt is the ACH file creation time, fixed when the run is
	// planned.
	CreatedAt time.Time  `json:"created_at"`
	Payees    []RunPayee `json:"payees"`
	// Skipped are the payees with a payable balance the run could not pay
	// (no bank details, or no vault to open them); their earnings wait
	// for the next run.
	Skipped []RunSkip `json:"skipped,omitempty"`
	// Posted is true once every transfer applied and the ACH file was
	// built.
	Posted     bool   `json:"posted"`
	TotalCents int64  `json:"total_cents"`
	ACH        []byte `json:"ach,omitempty"`
}

// RunPayee is one payee of a run.
type RunPayee struct {
	PayeeID    string `json:"payee_id"`
	Account    string `json:"account"`
	Cents      int64  `json:"cents"`
	TransferID string `json:"transfer_id"`
}

// RunSkip is a payee a run skipped, and why.
type RunSkip struct {
	PayeeID string `json:"payee_id"`
	Account string `json:"account"`
	// Cents is what the run would have paid.
	Cents  int64  `json:"cents"`
	Reason string `json:"reason"`
}

// Reasons a run skips a payee.
const (
	SkipNoBankDetails = "no bank details registered (PUT /v1/parties/{id}/bank, or beluga solver|verifier bank)"
	SkipNoVault       = "no vault key configured on the coordinator (--vault-key-file), so no bank details can be read"
)

func runKey(period string) string { return "run/" + period }

// payoutTransferID is the transfer ID of a payee's payout for a period:
// derived only from (period, payee), as payout.Period.PayeeKey requires.
func payoutTransferID(p payout.Period, payee string) ledger.TransferID {
	return ledger.DeriveTransferID(p.PayeeKey(payee))
}

// SetBankDetails seals a payee's bank details (for an earnings account)
// with the vault; the store holds only the sealed record.
func (s *Service) SetBankDetails(ctx context.Context, earnings AccountRef, d payout.BankAccount) error {
	if err := checkEarnings(earnings); err != nil {
		return err
	}
	if s.cfg.vault == nil {
		return fmt.Errorf("%w: %w", ErrInvalid, errNoVault)
	}
	blob, err := s.cfg.vault.Seal(payeeID(earnings), d)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.store.PutRaw("bank/"+payeeID(earnings), blob)
}

// errNoVault says why bank details cannot be stored, in the words a
// payee reads.
var errNoVault = errors.New("this coordinator has no vault key configured, so it cannot store bank details; its operator must start it with --vault-key-file or --vault-key-env")

func checkEarnings(earnings AccountRef) error {
	if earnings.Kind != KindSolverEarnings && earnings.Kind != KindVerifierEarnings {
		return fmt.Errorf("%w: bank details belong to an earnings account", ErrInvalid)
	}
	return earnings.Validate()
}

// BankDetails returns the bank details registered for an earnings
// account, opened from the vault; false if there are none.
func (s *Service) BankDetails(_ context.Context, earnings AccountRef) (payout.BankAccount, bool, error) {
	if err := checkEarnings(earnings); err != nil {
		return payout.BankAccount{}, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bankDetails(payeeID(earnings))
}

func (s *Service) bankDetails(payee string) (payout.BankAccount, bool, error) {
	blob, ok, err := s.store.GetRaw("bank/" + payee)
	if err != nil || !ok || s.cfg.vault == nil {
		return payout.BankAccount{}, false, err
	}
	d, err := s.cfg.vault.Open(payee, blob)
	if err != nil {
		return payout.BankAccount{}, false, fmt.Errorf("open bank details of %s: %w", payee, err)
	}
	return d, true, nil
}

// RunPayouts executes the payout run of a period (a run day, YYYY-MM-DD)
// that has ended: every solver and verifier earnings balance that
// schedule.Payable accepts, for a payee with bank details, moves to
// payouts in transit, and the ACH file is built from those transfers.
// A payee with a payable balance and no bank details is skipped: it is
// named in Run.Skipped and logged at WARN ("payout skipped"), and its
// earnings wait. A run with payees and no valid ACH originator is refused
// (ErrInvalid) before any money moves. Re-running a period is a no-op
// that returns the same run and ACH bytes.
func (s *Service) RunPayouts(ctx context.Context, periodID string) (*Run, error) {
	p, err := s.cfg.schedule.ParsePeriodID(periodID)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var r Run
	ok, err := s.store.get(runKey(periodID), &r)
	if err != nil {
		return nil, err
	}
	if !ok {
		now := s.cfg.now()
		if now.Before(p.End()) {
			return nil, fmt.Errorf("%w: %s ends at %s", ErrPeriodNotDue, periodID, p.End().Format(time.RFC3339))
		}
		if err := s.planRun(ctx, p, now, &r); err != nil {
			return nil, err
		}
	}
	if !r.Posted {
		if err := s.postRun(ctx, p, &r); err != nil {
			return nil, err
		}
	}
	return &r, nil
}

// planRun snapshots payable balances into a stored run.
func (s *Service) planRun(ctx context.Context, p payout.Period, now time.Time, r *Run) error {
	*r = Run{Period: p.ID(), CreatedAt: now.In(p.End().Location()).Truncate(time.Minute), Payees: []RunPayee{}}
	err := s.led.ScanAccounts(ctx, func(a ledger.Account) error {
		var kind Kind
		switch a.Code {
		case ledger.CodeSolverEarnings:
			kind = KindSolverEarnings
		case ledger.CodeVerifierEarnings:
			kind = KindVerifierEarnings
		default:
			return nil
		}
		ref := AccountRef{Kind: kind, Party: partyOf(a)}
		if ref.ID() != a.ID {
			return fmt.Errorf("%w: account %s does not match its user data", ErrLedger, a.ID)
		}
		cents, _, ok := s.cfg.schedule.Payable(a.AvailableMicroUSD())
		if !ok {
			return nil
		}
		payee := payeeID(ref)
		if _, has, err := s.bankDetails(payee); err != nil {
			return err
		} else if !has {
			reason := SkipNoBankDetails
			if s.cfg.vault == nil {
				reason = SkipNoVault
			}
			r.Skipped = append(r.Skipped, RunSkip{PayeeID: payee, Account: ref.String(), Cents: cents, Reason: reason})
			return nil
		}
		r.Payees = append(r.Payees, RunPayee{PayeeID: payee, Account: ref.String(), Cents: cents, TransferID: payoutTransferID(p, payee).String()})
		r.TotalCents += cents
		return nil
	})
	if err != nil {
		return fmt.Errorf("plan payout run %s: %w", p.ID(), err)
	}
	slices.SortFunc(r.Payees, func(a, b RunPayee) int { return cmpString(a.PayeeID, b.PayeeID) })
	slices.SortFunc(r.Skipped, func(a, b RunSkip) int { return cmpString(a.PayeeID, b.PayeeID) })
	if len(r.Payees) > payout.MaxEntries {
		r.Payees = r.Payees[:payout.MaxEntries] // the rest wait for the next run
	}
	if len(r.Payees) > 0 {
		if err := s.cfg.originator.Validate(); err != nil {
			return fmt.Errorf("%w: payout run %s has %d payees but no ACH originator is configured (the --ach-* flags of beluga coordinator): %w", ErrInvalid, p.ID(), len(r.Payees), err)
		}
	}
	for _, sk := range r.Skipped {
		s.cfg.log.LogAttrs(ctx, slog.LevelWarn, "payout skipped", slog.String("period", p.ID()), slog.String("payee", sk.PayeeID),
			slog.String("account", sk.Account), slog.Int64("cents", sk.Cents), slog.String("reason", sk.Reason))
	}
	return s.store.put(runKey(p.ID()), r)
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func partyOf(a ledger.Account) string {
	n := 0
	for n < len(a.UserData) && a.UserData[n] != 0 {
		n++
	}
	return string(a.UserData[:n])
}

// postRun submits the run's transfers (idempotently), checks them against
// the ledger, builds the ACH file and marks the run posted.
func (s *Service) postRun(ctx context.Context, p payout.Period, r *Run) error {
	ts := make([]ledger.Transfer, len(r.Payees))
	for i, py := range r.Payees {
		ref, err := ParseAccountRef(py.Account)
		if err != nil {
			return err
		}
		ts[i] = ledger.Transfer{
			ID: payoutTransferID(p, py.PayeeID), DebitAccountID: ref.ID(),
			CreditAccountID: AccountRef{Kind: KindPayoutsInTransit}.ID(),
			AmountMicroUSD:  py.Cents * payout.MicroUSDPerCent, Ledger: ledger.LedgerUSD, Code: CodePayout,
		}
		copy(ts[i].UserData[:], p.ID())
	}
	for lo := 0; lo < len(ts); lo += 1000 {
		if _, err := s.submit(ctx, ts[lo:min(lo+1000, len(ts))]); err != nil {
			return fmt.Errorf("payout run %s: %w", p.ID(), err)
		}
	}
	ach, err := s.buildACH(ctx, p, r)
	if err != nil {
		return err
	}
	r.ACH, r.Posted = ach, true
	return s.store.put(runKey(p.ID()), r)
}

// buildACH builds the run's file from its posted transfers: each amount is
// read back from the ledger.
func (s *Service) buildACH(ctx context.Context, p payout.Period, r *Run) ([]byte, error) {
	if len(r.Payees) == 0 {
		return nil, nil
	}
	b := payout.Batch{Originator: s.cfg.originator, Period: p, CreatedAt: r.CreatedAt}
	for _, py := range r.Payees {
		t, err := s.led.Transfer(ctx, payoutTransferID(p, py.PayeeID))
		if err != nil {
			return nil, fmt.Errorf("payout %s/%s: %w", p.ID(), py.PayeeID, err)
		}
		if t.AmountMicroUSD != py.Cents*payout.MicroUSDPerCent || t.CreditAccountID != (AccountRef{Kind: KindPayoutsInTransit}).ID() {
			return nil, fmt.Errorf("%w: payout %s/%s in the ledger differs from the run", ErrLedger, p.ID(), py.PayeeID)
		}
		d, ok, err := s.bankDetails(py.PayeeID)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("%w: %s", ErrNoBankDetails, py.PayeeID)
		}
		b.Payees = append(b.Payees, payout.Payee{ID: py.PayeeID, Account: d, AmountCents: py.Cents})
	}
	ach, err := payout.BuildACH(b)
	if err != nil {
		return nil, fmt.Errorf("build ach for %s: %w", p.ID(), err)
	}
	return ach, nil
}

// PayoutRun returns a stored run.
func (s *Service) PayoutRun(ctx context.Context, periodID string) (*Run, error) {
	if _, err := s.cfg.schedule.ParsePeriodID(periodID); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var r Run
	ok, err := s.store.get(runKey(periodID), &r)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: no payout run for %s", ErrNotFound, periodID)
	}
	return &r, nil
}

// RebuildACH builds a posted run's ACH file again from the ledger (for
// checking that it is identical to the one sent).
func (s *Service) RebuildACH(ctx context.Context, periodID string) ([]byte, error) {
	r, err := s.PayoutRun(ctx, periodID)
	if err != nil {
		return nil, err
	}
	if !r.Posted {
		return nil, fmt.Errorf("%w: run %s not posted", ErrIllegalState, periodID)
	}
	p, _ := s.cfg.schedule.ParsePeriodID(periodID)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buildACH(ctx, p, r)
}

// recoverRuns completes runs planned but not posted.
func (s *Service) recoverRuns(ctx context.Context) error {
	var runs []Run
	if err := s.store.scan("run/", func(_ string, v []byte) error {
		var r Run
		if err := json.Unmarshal(v, &r); err != nil {
			return err
		}
		if !r.Posted {
			runs = append(runs, r)
		}
		return nil
	}); err != nil {
		return err
	}
	for i := range runs {
		p, err := s.cfg.schedule.ParsePeriodID(runs[i].Period)
		if err != nil {
			return err
		}
		if err := s.postRun(ctx, p, &runs[i]); err != nil && !errors.Is(err, ErrNoBankDetails) {
			return err
		}
	}
	return nil
}

// PayoutExecutor returns the service as a payout.Executor, for a
// payout.Scheduler: Run is RunPayouts, Done whether the period's run is
// stored and posted.
func (s *Service) PayoutExecutor() payout.Executor { return payoutExec{s} }

type payoutExec struct{ s *Service }

func (e payoutExec) Run(ctx context.Context, p payout.Period) (payout.Report, error) {
	r, err := e.s.RunPayouts(ctx, p.ID())
	if err != nil {
		return payout.Report{}, err
	}
	return payout.Report{Period: r.Period, Payees: len(r.Payees), TotalCents: r.TotalCents, Skipped: len(r.Skipped)}, nil
}

func (e payoutExec) Done(ctx context.Context, p payout.Period) (bool, error) {
	r, err := e.s.PayoutRun(ctx, p.ID())
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return r.Posted, nil
}
