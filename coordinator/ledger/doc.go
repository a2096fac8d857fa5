// Package ledger is the coordinator's money: a crash-safe double-entry
// ledger in integer micro-dollars, modelled on TigerBeetle.
//
// There are two kinds of record. An Account is a bucket of money of one
// kind (client funds, job escrow, bonds, earnings, fees, payouts in
// transit, bank clearing) with four running balances: debits pending and
// posted, credits pending and posted. A Transfer debits one account and
// credits another by the same positive amount. A Pending transfer only
// reserves the amount; a later PostPending transfer posts all or part of
// it, a VoidPending transfer releases it, or its timeout expires it:
// exactly one of these, once. Linked transfers form a chain that applies
// entirely or not at all (settlement pays solver, verifier and fee and
// refunds the client in one chain). Every applied transfer and every
// expiry is appended to a journal with a sequence number; balances and
// pending states are derived from it, and Replay recomputes them.
//
// Badger is the durable implementation; Memory is the in-memory reference
// the tests compare it with.
//
// # Guarantees
//
//   - Money is conserved: every change adds the same amount to a debit
//     column of one account and a credit column of another, so over all
//     accounts Σ debits posted = Σ credits posted and Σ debits pending =
//     Σ credits pending. CheckInvariants verifies this, the account flags,
//     and that stored balances equal a journal replay.
//   - All-or-nothing: a transfer is checked against every rule before
//     anything changes; a rejected transfer changes nothing, and neither
//     does any other transfer of its linked chain.
//   - Append-only: accounts, transfers and journal entries are never edited
//     or deleted; only balances and pending states change, and only as the
//     journal says. Corrections are new transfers.
//   - Idempotent: the transfer ID is the idempotency key. Resubmitting a
//     stored transfer with identical fields succeeds with Result.Existed and
//     changes nothing; with different fields it fails with
//     ErrExistsDifferent. The same holds for account IDs.
//   - Durable: when Badger's Submit or CreateAccounts returns without error,
//     its changes are fsynced. After a crash (kill -9 at any moment) the
//     ledger reopens with every acknowledged transfer, no transfer applied
//     twice, no chain half-applied, and balances equal to a replay. A
//     batch whose call returned an error may be partly applied, chain by
//     chain; resubmit it.
//   - No float anywhere: amounts are int64 micro-dollars, every addition is
//     overflow-checked, and no balance is ever negative.
//
// # Decisions
//
// Failed transfers do not reserve their IDs (TigerBeetle, by contrast,
// records transfers that failed for transient reasons). Beluga derives IDs
// from purposes (DeriveTransferID("settle", jobID, "solver")), so a
// settlement that failed for lack of funds must succeed when retried under
// the same ID once the funds are there; a stored failure would force a new
// ID and break exactly-once by purpose. Since an ID names a success only,
// "already exists" always means "already done".
//
// A chain is the run of Linked transfers up to and including the first
// transfer without the flag; a batch that ends inside a chain fails that
// chain with ErrLinkedChainOpen. Inside a chain, later transfers see the
// effects of earlier ones (a chain may create a pending transfer and post
// it). If one fails it reports its own error and all others
// ErrLinkedEventFailed. A member that already exists identically counts as
// a success, so retrying a whole chain that applied is a no-op. Chains hold
// at most MaxChainTransfers transfers, so each commits in one storage
// transaction; a large batch may span several transactions, split only
// between chains.
//
// Time comes from an injected clock (WithClock), never from the caller.
// Each commit takes one timestamp: the clock, but never earlier than the
// previous commit's. A pending transfer with TimeoutSec expires at its
// timestamp plus the timeout. Every commit (Submit, CreateAccounts,
// Expire) first expires, in deadline then ID order, every pending transfer
// whose deadline is not after its timestamp, writing an expiry entry to
// the journal; so a post or void arriving at or after the deadline fails
// with ErrPendingExpired, and a reservation is never held past the next
// commit after its deadline. Expire runs such a commit alone, for a timer.
//
// Post and void repeat the pending transfer's accounts and ledger
// (ErrPendingMismatch otherwise), so every stored transfer describes
// itself. A post's amount may be less than the reservation (the rest is
// released) but not more; a void's amount must equal it.
//
// # Order of checks
//
// When several rules fail, the error is the first of: ErrZeroID,
// ErrInvalidFlags, ErrLedgerAssignedField, ErrInvalidPendingID,
// ErrInvalidTimeout, ErrInvalidAmount, ErrSameAccount, ErrInvalidLedger,
// ErrInvalidCode (these need no state); then ErrExistsDifferent (or
// success with Existed); ErrAccountNotFound; ErrLedgerMismatch; for post
// and void ErrPendingNotFound, ErrNotPending, ErrPendingMismatch,
// ErrAlreadyPosted / ErrAlreadyVoided / ErrPendingExpired,
// ErrExceedsPendingAmount / ErrPendingAmountMismatch; then ErrOverflow,
// and the account limits ErrExceedsCredits (debit account) and
// ErrExceedsDebits (credit account). Accounts: ErrZeroID, ErrInvalidFlags,
// ErrLedgerAssignedField, ErrInvalidLedger, ErrInvalidCode, then
// ErrExistsDifferent.
//
// # Storage
//
// Badger stores fixed-size, versioned, CRC-32C-checked binary records (see
// encoding.go); a record that fails to decode is ErrCorrupt, never a
// panic. One writer goroutine owns all writes and commits the batches of
// concurrent callers together (group commit): one badger transaction and
// one fsync for many transfers, which is what makes thousands of durable
// transfers per second possible when one fsync costs hundreds of
// microseconds. A failed write makes the ledger refuse further work
// (ErrFailed) until reopened, rather than guess what reached the disk.
package ledger
