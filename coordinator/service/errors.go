package service

import "errors"

var (
	// ErrInvalid reports bad input (IDs, amounts, specs); nothing changed.
	ErrInvalid = errors.New("service: invalid request")
	// ErrNotFound reports an unknown job, account, or payout run.
	ErrNotFound = errors.New("service: not found")
	// ErrConflict reports an ID reused with different content (bank
	// reference, job spec posted by another client or at another price).
	ErrConflict = errors.New("service: conflicts with an existing record")
	// ErrInsufficientFunds reports an account that cannot cover a transfer.
	ErrInsufficientFunds = errors.New("service: insufficient funds")
	// ErrIllegalState reports an operation the job's state does not allow.
	ErrIllegalState = errors.New("service: operation not allowed in the job's state")
	// ErrPeriodNotDue reports a payout run for a period that has not ended.
	ErrPeriodNotDue = errors.New("service: payout period has not ended")
	// ErrNoBankDetails reports a payee without bank details.
	ErrNoBankDetails = errors.New("service: no bank details")
	// ErrLedger reports a transfer the ledger rejected for a reason that is
	// not the caller's (a bug); the operation was rolled back.
	ErrLedger = errors.New("service: ledger rejected transfer")
)
