// Package market matches clients' job bids with solvers' asks.
//
// Prices are integer micro-dollars per compute unit (CU, 10^12 integer
// multiply-accumulates, counted from the job spec: its training steps plus
// 2^10 per byte of its data, see coordinator/service.ComputeUnits). The
// book takes a bid's CU count as given. A solver's [Ask] is a
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
