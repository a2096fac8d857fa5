// Package service is the coordinator's business on top of the ledger:
// deposits, job escrow, matching and bonds, settlement, slashing, payout
// runs and statements. It owns no money of its own: every balance lives in
// coordinator/ledger; this package decides which transfers to make and
// keeps the small amount of non-money state (job records, payout runs,
// sealed bank details, API keys, idempotency records) in its own badger
// table (Store).
//
// # Accounts
//
// Every account ID is derived from a purpose (ledger.DeriveAccountID(kind,
// party)): "client"/acme is acme's client funds, "escrow"/<job> a job's
// escrow. Client funds, escrow, bonds, earnings, fees and payouts in
// transit carry DebitsMustNotExceedCredits; the bank clearing account, the
// outside world's side of deposits, carries no flag. Accounts are created
// on first use (CreateAccounts is idempotent).
//
// # Jobs are per client
//
// A job's protocol ID, which solvers train and commit their traces to, is
// the hash of the spec the coordinator offers (spec.Spec.ID). PostJob
// offers the client's spec with a posting tag appended to its name: "#"
// and 16 hex digits of HMAC-SHA-256, under a key drawn once and kept in
// the store, of the client and the posted spec's ID. Two clients posting
// one spec therefore get two jobs (two IDs, escrows and market orders)
// that train the same thing, since the name takes no part in training;
// the network sees two unrelated jobs and cannot tell who posted either.
// A client's re-post of a spec finds its own job (same tag), and no client
// can learn, by posting or by asking, whether another posted a spec.
//
// # Exactly once
//
// Every transfer ID is derived from what it is for: "deposit"/<bank-ref>,
// ("job", <job>, <transition seq>, <action>, <party>) for job money, and
// ("payout", <period>, <payee>) for payouts. A job transition is written
// as an intent first (the job record holds the next record and the exact
// transfers), then the transfers are submitted, then the next record is
// stored. Open re-runs every intent it finds: the ledger deduplicates
// transfers that did apply, so a crash at any instant moves money at most
// once, and a transition whose chain the ledger rejects is rolled back
// (the chain changed nothing). Payout runs work the same way: the run
// record with its payees and amounts is stored before any transfer, so a
// re-executed run submits the same transfers and builds byte-identical
// ACH bytes.
//
// # Decisions
//
//   - Prices are nano-dollars per CU, amounts micro-dollars. Job escrow =
//     ⌈max price × CU⌉ + the fee on that + the audit budget (one audit of
//     the planner's replayed share of the CU at the verifier rate, rounded
//     up: Terms, PlanAudit); POST /v1/quote shows exactly that (QuoteJob).
//     At settlement the solvers get ⌊trade price × CU⌋ (split by committed
//     steps with lifecycle.ProRata, at the price of the first match), the
//     auditor the compute it replayed at the verifier rate, rounded down
//     (VerifierAuditMicroUSD), the platform its fee on the actual cost, and
//     the client the rest, in one linked chain: escrow rounds up, payments
//     down, so the escrow ends at zero and no rounding creates money.
//   - Solver bonds and the auditing verifier's bond are pending transfers
//     into the job's escrow account, so everything at stake for a job sits
//     in one account; a slash posts the bond and pays it out in the same
//     chain. A verifier audits only when enrolled (an API key of the
//     verifier role for its party) and its bond (VerifierBond: at least the
//     audit plan's deterrent bond for the job) is locked by AssignAudit; a
//     dispute holds that bond, and settlement pays only that auditor.
//   - A job that outlives its deadline (the coordinator node's JobTimeout)
//     expires from any state that is not terminal (Expire): the escrow is
//     refunded and every bond released, nobody paid.
//   - Compute units are ceil(MACs per step × steps / 10^12), at least 1.
//   - The order book is in memory: after a restart, jobs waiting for a
//     solver are bid again; solvers re-post their asks.
//   - Payout amounts are earnings available at the run (posted credits
//     minus debits), floored to cents; payees without bank details wait,
//     named in the run (Run.Skipped) and logged at WARN. A payout.Scheduler
//     over PayoutExecutor runs each period by itself (coordinatord).
//   - Operations are serialised by one mutex: the ledger wants one writer
//     for hot accounts anyway, and it makes the intent protocol simple.
//
// # Not yet
//
// Settling payouts in transit against bank clearing when the bank
// confirms; ACH returns; ledger-level pending timeouts on escrow and
// bonds (jobs expire through Expire, driven by the node); HTTP
// endpoints for asks, lifecycle events and disputes (the service has
// them); a persisted order book; a payout run scans every
// account (fine for thousands of payees, not millions).
package service
