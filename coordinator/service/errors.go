package service

import "errors"

// The service's errors. Every error an operation returns for a reason the
// caller can act on wraps exactly one of these (test with errors.Is); the
// HTTP API answers each with its own status and code. An operation that
// fails with any of them changed nothing.
var (
	// ErrInvalid reports bad input (IDs, amounts, specs); nothing changed.
	ErrInvalid = errors.New("service: invalid request")
	// ErrNotFound reports an unknown job, account, or payout run.
	ErrNotFound = errors.New("service: not found")
	// ErrConflict reports an ID reused with different content (a bank
	// reference with another amount, a job posted again by its client at
	// another price).
	ErrConflict = errors.New("service: conflicts with an existing record")
	// ErrInsufficientFunds reports an account that cannot cover a transfer.
	ErrInsufficientFunds = errors.New("service: insufficient funds")
	// ErrOverflow reports a transfer that would take an account's balance
	// past what an int64 of micro-dollars holds.
	ErrOverflow = errors.New("service: amount would overflow an account balance")
	// ErrIllegalState reports an operation the job's state does not allow.
	ErrIllegalState = errors.New("service: operation not allowed in the job's state")
	// ErrPeriodNotDue reports a payout run for a period that has not ended.
	ErrPeriodNotDue = errors.New("service: payout period has not ended")
	// ErrNoBankDetails reports a payee without bank details.
	ErrNoBankDetails = errors.New("service: no bank details")
	// ErrLedger reports a transfer the ledger rejected for a reason that is
	// not the caller's (a bug); the operation was rolled back.
	ErrLedger = errors.New("service: ledger rejected transfer")
	// ErrBusy reports a full order book: retry later.
	ErrBusy = errors.New("service: order book full")
	// ErrUnavailable reports a ledger that is closed or whose storage
	// failed; nothing was applied, and the coordinator needs an operator
	// (a restart reopens the ledger and completes interrupted work).
	ErrUnavailable = errors.New("service: ledger unavailable")
)
