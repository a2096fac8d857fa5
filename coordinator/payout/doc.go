// Package payout turns accrued earnings into bank payouts: it fixes the
// payout calendar (periods and their run instants), converts micro-dollar
// balances into whole cents with a minimum payout, builds and parses NACHA
// ACH files (PPD credits) and renders earnings statements.
//
// The package is pure logic: it reads no clock, no environment and no
// ledger. Callers pass times, balances and bank details in, and get
// values, bytes or errors out.
//
// # Periods and idempotency
//
// Payouts run on configured days of the month (default the 1st and the
// 15th) at local midnight in a configured time zone (default UTC). A
// [Period] is the half-open interval between two consecutive run instants;
// earnings accrued during a period are paid by the run at its end, and the
// period is named by that run's date: [Period.ID] is "2026-11-15" for the
// run at 2026-11-15 00:00.
//
// Period.ID is the idempotency key of a run. The contract for whoever
// executes runs against the ledger:
//
//   - The period to execute at time now is [Schedule.Due](now). Any run
//     started between one run instant and the next resolves to the same
//     period, so a crashed run that is re-executed (minutes or days later)
//     executes the same period, never the next one.
//   - Ledger transfer IDs for a run must be derived only from
//     (Period.ID, payee ID), for example from [Period.PayeeKey]. A re-executed
//     run then produces the same transfer IDs, which the ledger deduplicates,
//     so no payee is paid twice for one period.
//   - The ACH file must be built from the transfers the run posted (not
//     from live balances, which keep accruing) and with the file creation
//     time recorded with the run ([Batch.CreatedAt]). [BuildACH] is
//     deterministic, so a re-executed run writes byte-identical files.
//
// # Amounts
//
// Earnings accrue in micro-dollars; ACH moves cents. [SplitCents] floors a
// balance to whole cents and returns the sub-cent remainder, which stays in
// earnings. A payee is paid only when the whole-cent amount reaches the
// schedule's minimum (default $10.00, [DefaultMinimumPayoutCents]); see
// [Schedule.Payable].
//
// # Bank data handling
//
// [BankAccount.String] and [BankAccount.GoString] mask the account number,
// and validation errors never contain account numbers, so bank details do
// not leak through logs. [CheckRouting] is the one ABA check-digit
// implementation in the project; the vault package reuses it.
//
// # Parsing outside bytes
//
// [ParseACH] reads NACHA files with github.com/moov-io/ach. Input larger
// than [MaxACHFileBytes] is refused before parsing, and because the
// third-party parser is not hardened against hostile input, ParseACH
// recovers from any panic inside it and returns it as an error wrapping
// [ErrMalformedACH]. It never panics.
package payout
