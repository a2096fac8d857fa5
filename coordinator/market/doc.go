// Package market matches clients' job bids with solvers' asks.
//
// Prices are integer nano-dollars per compute unit (CU, 10^12 integer
// multiply-accumulates, counted from the job spec: its training steps plus
// 2^10 per byte of its data, see coordinator/service.ComputeUnits). The
// book takes a bid's CU count as given.
//
// # Price resolution
//
// A CU is cheap on a GPU: an H100 rented at $2/h ($556 µ$/s) doing about
// 5·10^14 MACs/s (dense 16-bit peak; its int8 peak is twice that) sells a
// CU for about 1.1 µ$, and at int8 speed 0.56 µ$. Whole micro-dollars per
// CU, the unit of earlier versions, could say only 0, 1 or 2 there: a 50%
// or 100% step between neighbouring prices. A nano-dollar per CU is a
// step of 0.1–0.2% at those prices, and a CPU at $0.05/h and 10^12 MACs/s
// (14,000 n$/CU) or a future GPU at 0.1 µ$/CU (100 n$) still price to
// three or more digits. Finer units buy nothing (no market quotes more
// than four digits) and shrink the range: the cap of $1/CU is 10^9 n$, and
// price × CU is computed in 128 bits (AmountMicroUSD), so only the
// resulting micro-dollar amount must fit an int64.
//
// Ledger amounts stay whole micro-dollars. Converting price × CU to them
// rounds up for what an escrow holds (EscrowMicroUSD, Book.MaxCostMicroUSD)
// and down for what a payee is paid (PayMicroUSD, Match.CostMicroUSD), so
// the escrow always covers the payment, the payer never pays more than the
// exact price, and no rounding creates money: the sub-micro-dollar
// difference goes back to the client with the rest of the escrow. A solver's [Ask] is a
// limit price or "market" (take the going price), a capacity (how many
// jobs it runs at once) and an expiry. A client's [Bid] is one job: its CU
// count and a maximum price, or "market" (any price up to the book's
// maximum).
//
// # Matching rules
//
//   - Price-time priority. Among asks with free capacity, the lowest
//     effective price wins; ties go to the earliest posted (lowest
//     [OrderID]). Among waiting bids, market bids come first, then the
//     highest maximum, then the earliest posted.
//   - A limit bid matches asks priced at or below its maximum; a market bid
//     matches any ask that has a price.
//   - A market ask's effective price is the price of the best limit ask
//     with free capacity; when there is none, the book's reference price
//     ([Book.SetReferencePrice]); when there is none either, market asks
//     wait (and so do market bids facing only market asks).
//   - Trade price: the ask's effective price when the match is made. The
//     bid's maximum is a cap, the amount the client's escrow holds, never
//     the price: the solver is paid what it asked, the client is refunded
//     the difference, and the price of a pair does not depend on which
//     order arrived first.
//   - An ask holds at most Capacity matched jobs at once; [Book.Release]
//     frees a slot when a job ends. A full ask keeps its place (its post
//     order) for when a slot frees up.
//   - Cancelling or expiring an ask stops new matches; jobs already matched
//     to it are unaffected.
//
// # Determinism and safety
//
// Order IDs are sequence numbers and are the only notion of time in
// priority; the clock (injected) only decides expiry. The same sequence of
// calls with the same clock readings gives the same matches. Every input is
// validated, including that price × CU fits an int64 (checked with
// math/bits) for the bid's worst case, before the book changes; a rejected
// call changes nothing. After every call the book is settled: no waiting
// bid could match any ask with free capacity.
package market
