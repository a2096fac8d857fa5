package ledger

import "errors"

// Fatal and lookup errors. These come back as the error return of a method,
// usually wrapped with context; test with errors.Is.
var (
	// ErrClosed: the ledger was closed.
	ErrClosed = errors.New("ledger: closed")
	// ErrFailed: a write to storage failed. The ledger refuses further work
	// until it is reopened, because it cannot tell what the storage kept.
	ErrFailed = errors.New("ledger: storage failed, reopen the ledger")
	// ErrCorrupt: a stored record does not decode.
	ErrCorrupt = errors.New("ledger: corrupt record")
	// ErrInvariant: CheckInvariants found a violation.
	ErrInvariant = errors.New("ledger: invariant violated")
	// ErrTransferNotFound: no transfer has this ID.
	ErrTransferNotFound = errors.New("ledger: transfer not found")
)

// Per-item errors, returned unwrapped in Result.Err; an item that gets one
// changed nothing. When several apply, the first in this list wins (the
// order is the order of the checks; see doc.go).
var (
	// ErrZeroID: the account or transfer ID is zero.
	ErrZeroID = errors.New("ledger: id must not be zero")
	// ErrInvalidFlags: unknown flag bits, or flags that exclude each other
	// (both account limits; more than one of Pending, PostPending,
	// VoidPending).
	ErrInvalidFlags = errors.New("ledger: invalid flags")
	// ErrLedgerAssignedField: a field the ledger assigns (balances, Seq,
	// timestamps) is not zero.
	ErrLedgerAssignedField = errors.New("ledger: ledger-assigned fields must be zero")
	// ErrInvalidPendingID: PendingID is missing on a PostPending or
	// VoidPending transfer, equals the transfer's own ID, or is set on any
	// other transfer.
	ErrInvalidPendingID = errors.New("ledger: invalid pending id")
	// ErrInvalidTimeout: TimeoutSec on a transfer that is not Pending.
	ErrInvalidTimeout = errors.New("ledger: timeout only applies to pending transfers")
	// ErrInvalidAmount: AmountMicroUSD ≤ 0.
	ErrInvalidAmount = errors.New("ledger: amount must be positive")
	// ErrSameAccount: the debit and credit accounts are the same.
	ErrSameAccount = errors.New("ledger: debit and credit accounts must differ")
	// ErrInvalidLedger: the ledger code is zero.
	ErrInvalidLedger = errors.New("ledger: invalid ledger code")
	// ErrInvalidCode: the code is zero (transfers) or not a known
	// AccountCode (accounts).
	ErrInvalidCode = errors.New("ledger: invalid code")
	// ErrExistsDifferent: the ID is taken by an item with different fields.
	ErrExistsDifferent = errors.New("ledger: id exists with different fields")
	// ErrAccountNotFound: the debit or credit account does not exist
	// (also returned by lookups).
	ErrAccountNotFound = errors.New("ledger: account not found")
	// ErrLedgerMismatch: the transfer and its accounts are not all on the
	// same ledger.
	ErrLedgerMismatch = errors.New("ledger: accounts and transfer must share a ledger")
	// ErrPendingNotFound: PendingID names no transfer.
	ErrPendingNotFound = errors.New("ledger: pending transfer not found")
	// ErrNotPending: PendingID names a transfer that is not Pending (also
	// returned by the Pending lookup).
	ErrNotPending = errors.New("ledger: transfer is not pending")
	// ErrPendingMismatch: the debit account, credit account or ledger
	// differ from the pending transfer's.
	ErrPendingMismatch = errors.New("ledger: accounts differ from the pending transfer")
	// ErrAlreadyPosted: the pending transfer was already posted.
	ErrAlreadyPosted = errors.New("ledger: pending transfer already posted")
	// ErrAlreadyVoided: the pending transfer was already voided.
	ErrAlreadyVoided = errors.New("ledger: pending transfer already voided")
	// ErrPendingExpired: the pending transfer expired.
	ErrPendingExpired = errors.New("ledger: pending transfer expired")
	// ErrExceedsPendingAmount: a post asks for more than is reserved.
	ErrExceedsPendingAmount = errors.New("ledger: amount exceeds the pending amount")
	// ErrPendingAmountMismatch: a void's amount is not the pending amount.
	ErrPendingAmountMismatch = errors.New("ledger: void amount must equal the pending amount")
	// ErrOverflow: a balance (or the pending deadline) would overflow int64.
	ErrOverflow = errors.New("ledger: balance overflow")
	// ErrExceedsCredits: the debit account has DebitsMustNotExceedCredits
	// and the transfer would break it.
	ErrExceedsCredits = errors.New("ledger: debits would exceed credits")
	// ErrExceedsDebits: the credit account has CreditsMustNotExceedDebits
	// and the transfer would break it.
	ErrExceedsDebits = errors.New("ledger: credits would exceed debits")
	// ErrLinkedEventFailed: another transfer of the same linked chain
	// failed, so this one did not apply.
	ErrLinkedEventFailed = errors.New("ledger: linked transfer failed")
	// ErrLinkedChainOpen: the batch ends with a Linked transfer, so its
	// chain is not closed; no transfer of that chain applied.
	ErrLinkedChainOpen = errors.New("ledger: linked chain not closed")
	// ErrChainTooLong: a linked chain has more than MaxChainTransfers
	// transfers; none of it applied.
	ErrChainTooLong = errors.New("ledger: linked chain too long")
)
