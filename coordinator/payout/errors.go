package payout

import "errors"

var (
	// ErrInvalidSchedule reports a schedule option out of range (a run day
	// outside 1..28, no run days, a nil location, a negative minimum).
	ErrInvalidSchedule = errors.New("payout: invalid schedule")
	// ErrInvalidPeriodID reports a period ID that is not a run date of the
	// schedule in canonical YYYY-MM-DD form.
	ErrInvalidPeriodID = errors.New("payout: invalid period id")

	// ErrInvalidRouting reports a routing number that is not nine digits
	// with a valid ABA check digit.
	ErrInvalidRouting = errors.New("payout: invalid routing number")
	// ErrInvalidAccount reports an account number that is empty, too long
	// or has characters other than letters, digits and '-'.
	ErrInvalidAccount = errors.New("payout: invalid account number")
	// ErrInvalidAccountType reports an account type other than Checking or
	// Savings.
	ErrInvalidAccountType = errors.New("payout: invalid account type")
	// ErrInvalidName reports an empty or too long name, or one with
	// characters outside printable ASCII.
	ErrInvalidName = errors.New("payout: invalid name")
	// ErrInvalidPayeeID reports a payee ID that cannot be an ACH
	// individual ID (1..15 printable ASCII characters without spaces).
	ErrInvalidPayeeID = errors.New("payout: invalid payee id")
	// ErrDuplicatePayee reports two entries for one payee in one batch.
	ErrDuplicatePayee = errors.New("payout: duplicate payee")
	// ErrInvalidAmount reports an entry amount that is not positive or
	// does not fit the ACH amount field.
	ErrInvalidAmount = errors.New("payout: invalid amount")
	// ErrTooManyEntries reports a batch with more than MaxEntries entries.
	ErrTooManyEntries = errors.New("payout: too many entries")
	// ErrNoEntries reports a batch without entries.
	ErrNoEntries = errors.New("payout: no entries")
	// ErrTotalTooLarge reports a batch whose total does not fit the ACH
	// control record's total field.
	ErrTotalTooLarge = errors.New("payout: batch total too large")
	// ErrInvalidOriginator reports a bad originator configuration.
	ErrInvalidOriginator = errors.New("payout: invalid originator")
	// ErrInvalidBatch reports a batch without a period or creation time.
	ErrInvalidBatch = errors.New("payout: invalid batch")

	// ErrACHTooLarge reports ACH input larger than MaxACHFileBytes.
	ErrACHTooLarge = errors.New("payout: ach file too large")
	// ErrMalformedACH reports ACH input the parser rejects (including a
	// panic inside the parser, recovered).
	ErrMalformedACH = errors.New("payout: malformed ach file")
	// ErrUnsupportedACH reports a well-formed ACH file with records this
	// package does not summarise (IAT or ADV batches).
	ErrUnsupportedACH = errors.New("payout: unsupported ach file")

	// ErrInvalidStatement reports a statement whose lines do not add up to
	// its closing balance, or a line whose sign contradicts its kind.
	ErrInvalidStatement = errors.New("payout: invalid statement")
)
