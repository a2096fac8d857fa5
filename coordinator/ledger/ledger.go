package ledger

import (
	"context"
	"fmt"
	"math"
	"math/bits"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Ledger is a double-entry ledger of accounts and transfers. Both
// implementations (Badger, Memory) pass the same conformance suite.
type Ledger interface {
	// CreateAccounts creates accounts, one Result per account in order.
	// The error is fatal (closed, storage failure, context): then some
	// accounts may have been created, and retrying is safe.
	CreateAccounts(ctx context.Context, accts []Account) ([]Result, error)
	// Submit applies transfers in order, one Result per transfer, and
	// first expires every pending transfer whose deadline has passed. When
	// Submit returns without error the applied transfers are durable. The
	// error is fatal: then some chains may have applied, and resubmitting
	// the same batch is safe (transfer IDs are idempotency keys).
	Submit(ctx context.Context, ts []Transfer) ([]Result, error)
	// Expire expires every pending transfer whose deadline is not after the
	// ledger's clock and returns their IDs (also those expired by the same
	// commit on behalf of another caller).
	Expire(ctx context.Context) ([]TransferID, error)
	// Account returns an account with its current balances, or
	// ErrAccountNotFound.
	Account(ctx context.Context, id AccountID) (Account, error)
	// Transfer returns a stored transfer, or ErrTransferNotFound.
	Transfer(ctx context.Context, id TransferID) (Transfer, error)
	// Pending returns the state of a pending transfer: ErrTransferNotFound
	// if there is no such transfer, ErrNotPending if it is not Pending.
	Pending(ctx context.Context, id TransferID) (PendingStatus, error)
	// AccountTransfers returns the transfers that debit or credit an
	// account, in journal order, starting after the transfer `after` (any
	// stored transfer serves as a cursor; the zero ID starts at the
	// beginning), at most limit of them (clamped to MaxPageTransfers).
	// Expiries are journal entries, not transfers, and are not listed.
	AccountTransfers(ctx context.Context, id AccountID, after TransferID, limit int) ([]Transfer, error)
	// Close releases the ledger. Calls after Close return ErrClosed.
	Close() error
}

// Auditor is the read access CheckInvariants and Replay need. Both
// implementations provide it; for a view that stays consistent while
// writers run, use their Verify method.
type Auditor interface {
	// ScanAccounts calls fn for every account, in ID order.
	ScanAccounts(ctx context.Context, fn func(Account) error) error
	// ScanJournal calls fn for every journal entry with Seq > afterSeq,
	// in order.
	ScanJournal(ctx context.Context, afterSeq uint64, fn func(Entry) error) error
	// ScanPending calls fn for the status of every pending transfer.
	ScanPending(ctx context.Context, fn func(PendingStatus) error) error
	// Transfer looks a transfer up by ID.
	Transfer(ctx context.Context, id TransferID) (Transfer, error)
}

var (
	_ Ledger  = (*Badger)(nil)
	_ Auditor = (*Badger)(nil)
	_ Ledger  = (*Memory)(nil)
	_ Auditor = (*Memory)(nil)
)

// Limits.
const (
	// MaxChainTransfers bounds a linked chain, which must commit in one
	// storage transaction.
	MaxChainTransfers = 1024
	// MaxPageTransfers bounds one AccountTransfers page.
	MaxPageTransfers = 10_000
)

// Option configures a ledger.
type Option func(*config)

type config struct {
	now        func() time.Time
	inMemory   bool
	badgerOpts func(badger.Options) badger.Options
}

func newConfig(opts []Option) config {
	c := config{now: time.Now}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// WithClock sets the clock that stamps transfers and drives expiry
// (default time.Now). The ledger never lets its time run backwards: a
// commit's timestamp is the larger of the clock and the last one stored.
func WithClock(now func() time.Time) Option {
	return func(c *config) { c.now = now }
}

// WithInMemory makes OpenBadger keep everything in memory (tests): nothing
// survives Close and nothing is fsynced. Memory ignores it.
func WithInMemory() Option {
	return func(c *config) { c.inMemory = true }
}

// WithBadgerOptions lets f adjust the badger options OpenBadger uses (cache
// sizes, compaction). Changes to SyncWrites, InMemory and conflict
// detection are overridden. Memory ignores it.
func WithBadgerOptions(f func(badger.Options) badger.Options) Option {
	return func(c *config) { c.badgerOpts = f }
}

// commitTime is the timestamp of the next commit: the clock, but never
// before the last commit or before 1970.
func commitTime(now func() time.Time, last int64) int64 {
	return max(now().UnixNano(), last, 0)
}

// expiresAt is the deadline of a pending transfer made at now; 0 for none.
func expiresAt(now int64, timeoutSec uint32) (int64, error) {
	if timeoutSec == 0 {
		return 0, nil
	}
	d := int64(timeoutSec) * int64(time.Second)
	if now > math.MaxInt64-d {
		return 0, ErrOverflow
	}
	return now + d, nil
}

// checkAccount applies the rules that need no stored state, in the
// documented order.
func checkAccount(a *Account) error {
	switch {
	case a.ID.IsZero():
		return ErrZeroID
	case a.Flags&^knownAccountFlags != 0, a.Flags == knownAccountFlags:
		return ErrInvalidFlags
	case a.Balances != Balances{}, a.TimestampUnixNano != 0:
		return ErrLedgerAssignedField
	case a.Ledger == 0:
		return ErrInvalidLedger
	case a.Code == 0 || a.Code > maxAccountCode:
		return ErrInvalidCode
	}
	return nil
}

// checkTransfer applies the rules that need no stored state, in the
// documented order. Ledger-assigned fields are checked only if assigned.
func checkTransfer(t *Transfer, assigned bool) error {
	kind := t.Flags & (Pending | PostPending | VoidPending)
	resolves := t.Flags&(PostPending|VoidPending) != 0
	switch {
	case t.ID.IsZero():
		return ErrZeroID
	case t.Flags&^knownTransferFlags != 0, bits.OnesCount16(uint16(kind)) > 1:
		return ErrInvalidFlags
	case assigned && (t.Seq != 0 || t.TimestampUnixNano != 0):
		return ErrLedgerAssignedField
	case resolves && (t.PendingID.IsZero() || t.PendingID == t.ID), !resolves && !t.PendingID.IsZero():
		return ErrInvalidPendingID
	case t.TimeoutSec != 0 && t.Flags&Pending == 0:
		return ErrInvalidTimeout
	case t.AmountMicroUSD <= 0:
		return ErrInvalidAmount
	case t.DebitAccountID == t.CreditAccountID:
		return ErrSameAccount
	case t.Ledger == 0:
		return ErrInvalidLedger
	case t.Code == 0:
		return ErrInvalidCode
	}
	return nil
}

// span is one linked chain of a batch: transfers [lo, hi), and the error
// every one of them gets without being tried, if any.
type span struct {
	lo, hi int
	err    error
}

// chains splits a batch into its linked chains (an unlinked transfer is a
// chain of one).
func chains(ts []Transfer) []span {
	var out []span
	lo := 0
	for i := range ts {
		if ts[i].Flags&Linked != 0 && i+1 < len(ts) {
			continue
		}
		s := span{lo: lo, hi: i + 1}
		switch {
		case ts[i].Flags&Linked != 0:
			s.err = ErrLinkedChainOpen
		case s.hi-s.lo > MaxChainTransfers:
			s.err = ErrChainTooLong
		}
		out = append(out, s)
		lo = i + 1
	}
	return out
}

// errNegative: a balance would go below zero, which only corrupt state can
// cause (a pending balance always covers the pending transfers it holds).
var errNegative = fmt.Errorf("%w: balance would go negative", ErrCorrupt)

// add returns a+b, or ErrOverflow if it leaves [0, MaxInt64].
func add(a, b int64) (int64, error) {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) || s < 0 {
		return 0, ErrOverflow
	}
	return s, nil
}

// applyBalances returns the balances of the debit and credit accounts after
// a transfer of kind flags moving amount, where pendingAmount is the amount
// of the pending transfer a post or void resolves. It enforces the
// accounts' flags. A negative pending balance means corrupt state and is
// reported as errNegative.
func applyBalances(dr, cr Account, flags TransferFlags, amount, pendingAmount int64) (Balances, Balances, error) {
	d, c := dr.Balances, cr.Balances
	var err error
	step := func(p *int64, delta int64) {
		if err != nil {
			return
		}
		var v int64
		if v, err = add(*p, delta); err == nil {
			*p = v
		} else if delta < 0 {
			err = errNegative
		}
	}
	switch {
	case flags&Pending != 0:
		step(&d.DebitsPendingMicroUSD, amount)
		step(&c.CreditsPendingMicroUSD, amount)
	case flags&PostPending != 0:
		step(&d.DebitsPendingMicroUSD, -pendingAmount)
		step(&c.CreditsPendingMicroUSD, -pendingAmount)
		step(&d.DebitsPostedMicroUSD, amount)
		step(&c.CreditsPostedMicroUSD, amount)
	case flags&VoidPending != 0:
		step(&d.DebitsPendingMicroUSD, -pendingAmount)
		step(&c.CreditsPendingMicroUSD, -pendingAmount)
	default:
		step(&d.DebitsPostedMicroUSD, amount)
		step(&c.CreditsPostedMicroUSD, amount)
	}
	if err != nil {
		return d, c, err
	}
	if err := flagsHold(dr.Flags, d); err != nil {
		return d, c, err
	}
	return d, c, flagsHold(cr.Flags, c)
}

// flagsHold checks balances against an account's flags (and that its
// totals fit in int64).
func flagsHold(f AccountFlags, b Balances) error {
	debits, err1 := add(b.DebitsPendingMicroUSD, b.DebitsPostedMicroUSD)
	credits, err2 := add(b.CreditsPendingMicroUSD, b.CreditsPostedMicroUSD)
	switch {
	case err1 != nil || err2 != nil:
		return ErrOverflow
	case f&DebitsMustNotExceedCredits != 0 && debits > b.CreditsPostedMicroUSD:
		return ErrExceedsCredits
	case f&CreditsMustNotExceedDebits != 0 && credits > b.DebitsPostedMicroUSD:
		return ErrExceedsDebits
	}
	return nil
}
