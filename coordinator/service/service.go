package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/beluga-compute/beluga/coordinator/ledger"
	"github.com/beluga-compute/beluga/coordinator/market"
	"github.com/beluga-compute/beluga/coordinator/payout"
	"github.com/beluga-compute/beluga/coordinator/vault"
)

// Ledger is what the service needs of a ledger: writes and the auditor's
// account scan (payout runs list earnings accounts).
type Ledger interface {
	ledger.Ledger
	ledger.Auditor
}

// Policy holds the money rules for jobs. All amounts are micro-dollars.
type Policy struct {
	// FeePPM is the platform fee in millionths of the solver cost
	// (default 50_000: 5%).
	FeePPM int64
	// VerifierRatePPM is what a verifier is paid per compute unit it
	// replays, in millionths of the job's trade price (default
	// DefaultVerifierRatePPM: 125%; at most MaxVerifierRatePPM). An audit
	// pays rate × price × CU × the planner's replayed fraction (PlanAudit),
	// and the job escrows that at its maximum price as its audit budget.
	//
	// The rate follows the market through the job's own trade price, not
	// verifiers' asks: auditors are drawn by the beacon so that nobody can
	// choose who audits a job, and a price competition among verifiers
	// would let a solver's accomplice win its audits by underbidding.
	// Replaying a step is the same computation as training it, so the
	// solver's price is the market price of the verifier's compute; the
	// premium pays for fetching and hashing checkpoints and the bond the
	// verifier locks.
	VerifierRatePPM int64
	// BondPPM sizes a solver's bond in millionths of the job's maximum cost,
	// at least MinBondMicroUSD (defaults 500_000 and $10).
	BondPPM         int64
	MinBondMicroUSD int64
	// VerifierBondMicroUSD is locked when a verifier disputes (default $20).
	VerifierBondMicroUSD int64
	// BountyPPM is the share of a slashed solver bond paid to the verifier
	// that proved the fraud; the rest compensates the client (default
	// 500_000).
	BountyPPM int64
}

// DefaultPolicy returns the documented defaults.
func DefaultPolicy() Policy {
	return Policy{
		FeePPM: 50_000, VerifierRatePPM: DefaultVerifierRatePPM,
		BondPPM: 500_000, MinBondMicroUSD: 10_000_000, VerifierBondMicroUSD: 20_000_000,
		BountyPPM: 500_000,
	}
}

func (p Policy) validate() error {
	for _, v := range []int64{p.FeePPM, p.BondPPM, p.BountyPPM} {
		if v < 0 || v > 1_000_000 {
			return fmt.Errorf("%w: ppm %d not in 0..10^6", ErrInvalid, v)
		}
	}
	if p.VerifierRatePPM < 0 || p.VerifierRatePPM > MaxVerifierRatePPM {
		return fmt.Errorf("%w: verifier rate %d ppm not in 0..%d", ErrInvalid, p.VerifierRatePPM, MaxVerifierRatePPM)
	}
	if p.MinBondMicroUSD <= 0 || p.VerifierBondMicroUSD <= 0 {
		return fmt.Errorf("%w: policy amounts", ErrInvalid)
	}
	return nil
}

type config struct {
	now        func() time.Time
	policy     Policy
	schedule   *payout.Schedule
	originator payout.Originator
	vault      *vault.Vault
	bookOpts   []market.Option
	ledgerOpts []ledger.Option
	log        *slog.Logger
}

// Option configures a Service.
type Option func(*config)

// WithClock sets the clock (default time.Now); Open passes it to the
// ledger too.
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// WithPolicy sets the money rules (default DefaultPolicy()).
func WithPolicy(p Policy) Option { return func(c *config) { c.policy = p } }

// WithSchedule sets the payout calendar (default payout.NewSchedule()).
func WithSchedule(s *payout.Schedule) Option { return func(c *config) { c.schedule = s } }

// WithOriginator sets the ACH originator; payout runs with payees need it.
func WithOriginator(o payout.Originator) Option { return func(c *config) { c.originator = o } }

// WithVault sets the vault that seals bank details; without one, bank
// details cannot be stored and runs pay nobody.
func WithVault(v *vault.Vault) Option { return func(c *config) { c.vault = v } }

// WithLogger sets where the service logs what an operator must hear of
// (payees skipped by a payout run, for one; default: nowhere).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// WithBookOptions configures the order book.
func WithBookOptions(o ...market.Option) Option {
	return func(c *config) { c.bookOpts = append(c.bookOpts, o...) }
}

// WithLedgerOptions passes options to the ledger Open creates.
func WithLedgerOptions(o ...ledger.Option) Option {
	return func(c *config) { c.ledgerOpts = append(c.ledgerOpts, o...) }
}

// Service is the coordinator's business logic. It is safe for concurrent
// use; operations are serialised.
type Service struct {
	mu    sync.Mutex
	led   Ledger
	store *Store
	cfg   config
	book  *market.Book
	known map[ledger.AccountID]bool
	// In-memory book state, rebuilt on open: waiting bid per job, match per
	// job, ask per solver.
	bids    map[string]market.OrderID
	matches map[string]market.MatchID
	asks    map[string]market.OrderID
	owned   bool // Close closes led and store
	// postingKey keys the posting tags that make jobs per client (see
	// PostJob); it is drawn once and kept in the store, so that a client's
	// re-post finds its job after a restart.
	postingKey []byte
	// rate caches the market's going rate (overview.go).
	rate goingRate
}

// Open opens the ledger (dir/ledger) and the store (dir/state) and
// returns a recovered service that owns both.
func Open(ctx context.Context, dir string, opts ...Option) (*Service, error) {
	c := newConfig(opts)
	led, err := ledger.OpenBadger(filepath.Join(dir, "ledger"), append([]ledger.Option{ledger.WithClock(c.now)}, c.ledgerOpts...)...)
	if err != nil {
		return nil, err
	}
	st, err := OpenStore(filepath.Join(dir, "state"))
	if err != nil {
		led.Close()
		return nil, err
	}
	s, err := New(ctx, led, st, opts...)
	if err != nil {
		st.Close()
		led.Close()
		return nil, err
	}
	s.owned = true
	return s, nil
}

func newConfig(opts []Option) config {
	c := config{now: time.Now, policy: DefaultPolicy()}
	for _, o := range opts {
		o(&c)
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c
}

// New returns a service over led and store: it creates the platform
// accounts, completes every interrupted job transition and payout run, and
// puts jobs waiting for a solver back on the book.
func New(ctx context.Context, led Ledger, store *Store, opts ...Option) (*Service, error) {
	c := newConfig(opts)
	if err := c.policy.validate(); err != nil {
		return nil, err
	}
	if c.schedule == nil {
		sch, err := payout.NewSchedule()
		if err != nil {
			return nil, err
		}
		c.schedule = sch
	}
	book, err := market.NewBook(c.now, c.bookOpts...)
	if err != nil {
		return nil, err
	}
	s := &Service{
		led: led, store: store, cfg: c, book: book,
		known: make(map[ledger.AccountID]bool),
		bids:  make(map[string]market.OrderID), matches: make(map[string]market.MatchID),
		asks: make(map[string]market.OrderID),
	}
	if err := s.ensureAccounts(ctx, AccountRef{Kind: KindBankClearing}, AccountRef{Kind: KindPlatformFees}, AccountRef{Kind: KindPayoutsInTransit}); err != nil {
		return nil, err
	}
	key, err := store.postingKey()
	if err != nil {
		return nil, err
	}
	s.postingKey = key
	if err := s.recover(ctx); err != nil {
		return nil, fmt.Errorf("recover: %w", err)
	}
	return s, nil
}

// Close closes the ledger and store if Open opened them.
func (s *Service) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.owned {
		return nil
	}
	return errors.Join(s.store.Close(), s.led.Close())
}

// Ledger returns the ledger (read access for statements and audits).
func (s *Service) Ledger() Ledger { return s.led }

// Store returns the state table (API keys, idempotency records).
func (s *Service) Store() *Store { return s.store }

// Now reads the service clock.
func (s *Service) Now() time.Time { return s.cfg.now() }

// HasVault reports whether a vault is configured: without one, bank
// details cannot be stored and payout runs pay nobody.
func (s *Service) HasVault() bool { return s.cfg.vault != nil }

// Originator returns the ACH originator payout runs write (the zero
// Originator when none is configured: runs with payees are refused).
func (s *Service) Originator() payout.Originator { return s.cfg.originator }

// Schedule returns the payout calendar.
func (s *Service) Schedule() *payout.Schedule { return s.cfg.schedule }

// Deposit is a bank credit: money that arrived for a party.
type Deposit struct {
	// BankRef is the bank's reference for the credit; it is the idempotency
	// key ("deposit"/<bank-ref>).
	BankRef string
	// Account is the client funds, solver bond or verifier bond account
	// credited.
	Account        AccountRef
	AmountMicroUSD int64
}

// MaxBankRefLen bounds bank references.
const MaxBankRefLen = 64

// DepositResult says what a deposit did.
type DepositResult struct {
	TransferID string `json:"transfer_id"`
	// Existed is true when the deposit had already been recorded.
	Existed bool `json:"existed"`
}

// RecordDeposit moves AmountMicroUSD from bank clearing to the party's
// account. Recording the same bank reference again is a no-op; with other
// fields it fails with ErrConflict.
func (s *Service) RecordDeposit(ctx context.Context, d Deposit) (DepositResult, error) {
	if d.BankRef == "" || len(d.BankRef) > MaxBankRefLen {
		return DepositResult{}, fmt.Errorf("%w: bank reference length %d not in 1..%d", ErrInvalid, len(d.BankRef), MaxBankRefLen)
	}
	switch d.Account.Kind {
	case KindClientFunds, KindSolverBond, KindVerifierBond:
	default:
		return DepositResult{}, fmt.Errorf("%w: deposits credit client, solver_bond or verifier_bond accounts, not %q", ErrInvalid, d.Account.Kind)
	}
	if err := d.Account.Validate(); err != nil {
		return DepositResult{}, err
	}
	if d.AmountMicroUSD <= 0 {
		return DepositResult{}, fmt.Errorf("%w: amount must be positive", ErrInvalid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.ensureAccounts(ctx, d.Account); err != nil {
		return DepositResult{}, err
	}
	t := ledger.Transfer{
		ID:              ledger.DeriveTransferID("deposit", d.BankRef),
		DebitAccountID:  AccountRef{Kind: KindBankClearing}.ID(),
		CreditAccountID: d.Account.ID(),
		AmountMicroUSD:  d.AmountMicroUSD,
		Ledger:          ledger.LedgerUSD,
		Code:            CodeDeposit,
	}
	copy(t.UserData[:], d.BankRef)
	res, err := s.submit(ctx, []ledger.Transfer{t})
	if err != nil {
		return DepositResult{}, fmt.Errorf("deposit %s: %w", d.BankRef, err)
	}
	return DepositResult{TransferID: t.ID.String(), Existed: res[0].Existed}, nil
}

// submit applies ts; a fatal ledger error comes back classified by
// ledgerError, a rejected transfer as a *rejection naming the first
// per-transfer error (the chain applied nothing).
func (s *Service) submit(ctx context.Context, ts []ledger.Transfer) ([]ledger.Result, error) {
	res, err := s.led.Submit(ctx, ts)
	if err != nil {
		return nil, fmt.Errorf("submit: %w", ledgerError(err))
	}
	for i, r := range res {
		if r.Err != nil && !errors.Is(r.Err, ledger.ErrLinkedEventFailed) {
			return res, &rejection{kind: ledgerError(r.Err), cause: r.Err, msg: fmt.Sprintf("transfer %d (%s)", i, CodeName(ts[i].Code))}
		}
	}
	return res, nil
}

// rejection is a transfer the ledger refused: nothing of its chain
// applied. It wraps the service sentinel and the ledger's error.
type rejection struct {
	kind, cause error
	msg         string
}

func (r *rejection) Error() string   { return fmt.Sprintf("%v: %s: %v", r.kind, r.msg, r.cause) }
func (r *rejection) Unwrap() []error { return []error{r.kind, r.cause} }

// rejected reports whether err is a per-transfer rejection (nothing
// changed) rather than a fatal ledger error.
func rejected(err error) bool {
	var r *rejection
	return errors.As(err, &r)
}

// ledgerError classifies an error of the ledger under the service's
// sentinels, keeping the ledger's error in the chain: money rules the
// caller broke (funds, overflow, an ID reused), states a transition no
// longer finds (a reservation posted, voided or expired), storage
// failures (unavailable), and everything else, which only a bug in this
// package can produce (ErrLedger).
func ledgerError(err error) error {
	var kind error
	switch {
	case errors.Is(err, ledger.ErrExceedsCredits):
		kind = ErrInsufficientFunds
	case errors.Is(err, ledger.ErrOverflow):
		kind = ErrOverflow
	case errors.Is(err, ledger.ErrInvalidAmount):
		kind = ErrInvalid
	case errors.Is(err, ledger.ErrExistsDifferent):
		kind = ErrConflict
	case errors.Is(err, ledger.ErrAccountNotFound), errors.Is(err, ledger.ErrTransferNotFound):
		kind = ErrNotFound
	case errors.Is(err, ledger.ErrPendingNotFound), errors.Is(err, ledger.ErrNotPending),
		errors.Is(err, ledger.ErrAlreadyPosted), errors.Is(err, ledger.ErrAlreadyVoided),
		errors.Is(err, ledger.ErrPendingExpired):
		kind = ErrIllegalState
	case errors.Is(err, ledger.ErrClosed), errors.Is(err, ledger.ErrFailed),
		errors.Is(err, ledger.ErrCorrupt), errors.Is(err, ledger.ErrInvariant):
		kind = ErrUnavailable
	default:
		kind = ErrLedger
	}
	return fmt.Errorf("%w: %w", kind, err)
}
