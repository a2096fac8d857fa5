package ledger

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
)

// AccountID names an account. It is 128 bits, like TigerBeetle's, and
// callers derive it deterministically (DeriveAccountID) so that the same
// purpose always maps to the same account. The zero ID is invalid.
type AccountID [16]byte

// TransferID names a transfer and is its idempotency key. Callers derive it
// from what the transfer is for (DeriveTransferID("settle", jobID, "solver")),
// so a retry after a crash or a timeout reuses the ID and cannot pay twice.
// The zero ID is invalid.
type TransferID [16]byte

// IsZero reports whether id is the (invalid) zero ID.
func (id AccountID) IsZero() bool { return id == AccountID{} }

// String returns id in lower-case hex.
func (id AccountID) String() string { return hex.EncodeToString(id[:]) }

// IsZero reports whether id is the (invalid) zero ID.
func (id TransferID) IsZero() bool { return id == TransferID{} }

// String returns id in lower-case hex.
func (id TransferID) String() string { return hex.EncodeToString(id[:]) }

// DeriveAccountID returns the account ID for a purpose, e.g.
// DeriveAccountID("client", clientID) or DeriveAccountID("escrow", jobID).
// Parts are length-prefixed, so ("ab","c") and ("a","bc") differ, and the
// hash is domain-separated from DeriveTransferID.
func DeriveAccountID(parts ...string) AccountID {
	var id AccountID
	copy(id[:], derive("beluga/ledger/account/v1", parts))
	return id
}

// DeriveTransferID returns the transfer ID (idempotency key) for a purpose,
// e.g. DeriveTransferID("settle", jobID, "solver").
func DeriveTransferID(parts ...string) TransferID {
	var id TransferID
	copy(id[:], derive("beluga/ledger/transfer/v1", parts))
	return id
}

func derive(domain string, parts []string) []byte {
	h := sha256.New()
	var n [8]byte
	for _, p := range append([]string{domain}, parts...) {
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write([]byte(p))
	}
	return h.Sum(nil)
}

// LedgerCode is the currency an account holds; transfers only move money
// between accounts of the same ledger.
type LedgerCode uint32

// LedgerUSD is US dollars, counted in micro-dollars (ISO 4217 numeric 840).
const LedgerUSD LedgerCode = 840

// AccountCode is the kind of an account. The ledger accepts only the codes
// below; it does not attach behaviour to them beyond that (the flags do).
type AccountCode uint16

// Account kinds. The suggested flags are what the coordinator uses; the
// ledger enforces whatever flags an account was created with.
const (
	// CodeClientFunds holds a client's deposited, uncommitted money
	// (DebitsMustNotExceedCredits).
	CodeClientFunds AccountCode = 1
	// CodeJobEscrow holds the money locked for one job
	// (DebitsMustNotExceedCredits).
	CodeJobEscrow AccountCode = 2
	// CodeSolverBond holds a solver's bond (DebitsMustNotExceedCredits).
	CodeSolverBond AccountCode = 3
	// CodeVerifierBond holds a verifier's bond (DebitsMustNotExceedCredits).
	CodeVerifierBond AccountCode = 4
	// CodeSolverEarnings accrues what a solver is owed until payout
	// (DebitsMustNotExceedCredits).
	CodeSolverEarnings AccountCode = 5
	// CodeVerifierEarnings accrues what a verifier is owed until payout
	// (DebitsMustNotExceedCredits).
	CodeVerifierEarnings AccountCode = 6
	// CodePlatformFees accrues the operator's fees
	// (DebitsMustNotExceedCredits).
	CodePlatformFees AccountCode = 7
	// CodePayoutsInTransit holds payouts sent to the bank in an ACH file
	// and not yet settled (DebitsMustNotExceedCredits).
	CodePayoutsInTransit AccountCode = 8
	// CodeBankClearing is the operator's bank account seen from inside:
	// deposits debit it, settled payouts credit it. Its debit balance is the
	// money the bank holds for the ledger (no flags: it is the outside
	// world's side of every entry).
	CodeBankClearing AccountCode = 9

	maxAccountCode = CodeBankClearing
)

// AccountFlags constrain an account's balances. They are checked before any
// transfer applies, against the balances the transfer would leave.
type AccountFlags uint16

const (
	// DebitsMustNotExceedCredits: debits_pending + debits_posted must not
	// exceed credits_posted. Pending credits do not count, so money on hold
	// towards an account cannot be spent before it is posted.
	DebitsMustNotExceedCredits AccountFlags = 1 << iota
	// CreditsMustNotExceedDebits: credits_pending + credits_posted must not
	// exceed debits_posted.
	CreditsMustNotExceedDebits

	knownAccountFlags = DebitsMustNotExceedCredits | CreditsMustNotExceedDebits
)

// TransferFlags select what a transfer does.
type TransferFlags uint16

const (
	// Linked joins a transfer to the next one in the same batch: a chain is
	// a run of Linked transfers closed by one without the flag, and it
	// applies entirely or not at all.
	Linked TransferFlags = 1 << iota
	// Pending reserves the amount (adds it to debits_pending and
	// credits_pending) until a PostPending or VoidPending transfer resolves
	// it or its timeout expires it.
	Pending
	// PostPending moves up to the reserved amount of PendingID from pending
	// to posted and releases the rest.
	PostPending
	// VoidPending releases the whole reservation of PendingID.
	VoidPending

	knownTransferFlags = Linked | Pending | PostPending | VoidPending
)

// Balances are an account's four running totals, in micro-dollars. They
// only change through transfers and expiries; each is ≥ 0.
type Balances struct {
	DebitsPendingMicroUSD  int64
	DebitsPostedMicroUSD   int64
	CreditsPendingMicroUSD int64
	CreditsPostedMicroUSD  int64
}

// CreditBalanceMicroUSD is credits_posted - debits_posted: what a
// credit-normal account (client funds, escrow, earnings, fees) holds.
func (b Balances) CreditBalanceMicroUSD() int64 {
	return b.CreditsPostedMicroUSD - b.DebitsPostedMicroUSD
}

// AvailableMicroUSD is what a DebitsMustNotExceedCredits account may still
// send: credits_posted - debits_posted - debits_pending.
func (b Balances) AvailableMicroUSD() int64 {
	return b.CreditsPostedMicroUSD - b.DebitsPostedMicroUSD - b.DebitsPendingMicroUSD
}

// Account is a named bucket of money. Everything but the balances is fixed
// at creation.
type Account struct {
	ID       AccountID
	Ledger   LedgerCode
	Code     AccountCode
	Flags    AccountFlags
	UserData [32]byte // e.g. the owner's ID; opaque to the ledger
	Balances

	// TimestampUnixNano is assigned by the ledger at creation; it must be
	// zero in CreateAccounts, as must the balances.
	TimestampUnixNano int64
}

// Transfer moves AmountMicroUSD from DebitAccountID to CreditAccountID.
// Stored transfers are never edited or deleted: corrections are new
// transfers.
type Transfer struct {
	ID              TransferID
	DebitAccountID  AccountID
	CreditAccountID AccountID
	// AmountMicroUSD is > 0. For PostPending it is the amount posted
	// (≤ the pending amount; the rest is released); for VoidPending it
	// must equal the pending amount.
	AmountMicroUSD int64
	// PendingID is the pending transfer a PostPending or VoidPending
	// transfer resolves; zero otherwise.
	PendingID TransferID
	UserData  [32]byte // e.g. the job ID; opaque to the ledger
	// TimeoutSec, only on Pending transfers, expires the reservation that
	// many seconds after the transfer's timestamp; 0 means never.
	TimeoutSec uint32
	Ledger     LedgerCode
	Code       uint16 // what the transfer is for; caller-defined, non-zero
	Flags      TransferFlags

	// Seq (position in the journal, from 1) and TimestampUnixNano are
	// assigned by the ledger; they must be zero in Submit.
	Seq               uint64
	TimestampUnixNano int64
}

// sameRequest reports whether t and u ask for the same thing: every field a
// caller sets is equal (the ledger-assigned ones are ignored).
func (t Transfer) sameRequest(u Transfer) bool {
	t.Seq, t.TimestampUnixNano = 0, 0
	u.Seq, u.TimestampUnixNano = 0, 0
	return t == u
}

func (a Account) sameRequest(b Account) bool {
	a.Balances, a.TimestampUnixNano = Balances{}, 0
	b.Balances, b.TimestampUnixNano = Balances{}, 0
	return a == b
}

// Result is the outcome of one account or transfer in a batch.
type Result struct {
	// Err is nil when the item applied or already existed identically;
	// otherwise it is one of the package's sentinel errors (unwrapped) and
	// the item changed nothing.
	Err error
	// Existed reports an idempotent retry: an item with this ID and
	// identical fields was already stored, and nothing changed.
	Existed bool
	// Seq and TimestampUnixNano are those of the stored transfer (new or
	// existing); zero on failure and for accounts (Seq).
	Seq               uint64
	TimestampUnixNano int64
}

// PendingState is where a pending transfer is in its life.
type PendingState uint8

const (
	// StatePending: the reservation is held.
	StatePending PendingState = 1 + iota
	// StatePosted: a PostPending transfer resolved it.
	StatePosted
	// StateVoided: a VoidPending transfer resolved it.
	StateVoided
	// StateExpired: its timeout passed before it was resolved.
	StateExpired
)

func (s PendingState) String() string {
	switch s {
	case StatePending:
		return "pending"
	case StatePosted:
		return "posted"
	case StateVoided:
		return "voided"
	case StateExpired:
		return "expired"
	}
	return fmt.Sprintf("PendingState(%d)", s)
}

// PendingStatus is the state of one pending transfer. It is derived state,
// like balances: a replay of the journal recomputes it.
type PendingStatus struct {
	ID    TransferID
	State PendingState
	// ExpiresAtUnixNano is when the reservation expires; 0 means never.
	ExpiresAtUnixNano int64
	// ResolvedBy is the PostPending or VoidPending transfer that resolved
	// it (zero while pending and after expiry); ResolvedSeq is the journal
	// entry that resolved it (a transfer or an expiry).
	ResolvedBy  TransferID
	ResolvedSeq uint64
	// PostedMicroUSD is the amount posted (StatePosted only).
	PostedMicroUSD int64
}

// EntryKind tells what a journal entry records.
type EntryKind uint8

const (
	// EntryTransfer records an applied transfer.
	EntryTransfer EntryKind = 1
	// EntryExpiry records the expiry of a pending transfer.
	EntryExpiry EntryKind = 2
)

// Entry is one event in the journal, the ordered record of every balance
// change. Replaying the journal from zero balances gives every account's
// balances and every pending transfer's state.
type Entry struct {
	Kind              EntryKind
	Seq               uint64
	TimestampUnixNano int64
	Transfer          Transfer   // EntryTransfer: the stored transfer
	ExpiredID         TransferID // EntryExpiry: the pending transfer that expired
}
