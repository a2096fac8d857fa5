// Package plan is the audit planner: how many segments of a run to replay
// so that a cheater is caught with the client's confidence, how large a
// bond makes cheating a losing bet, and which digest interval makes the
// whole scheme cheapest.
//
// A run of n steps with digest interval k has N = ⌈n/k⌉ segments
// (protocol/core/challenge). The policy (SPEC.md §2, audit.*) says: a solver that
// computes at least the fraction f of the steps wrongly must be caught with
// probability at least c. The audit samples s distinct segments uniformly
// (challenge.Sample) and replays each; a segment holding a wrong step ends
// at a digest the replay does not reproduce.
//
// # Soundness
//
// SampleCount sizes s against a Model. Clustered, the default, is the worst
// case for a cheater of at least ⌈f·n⌉ wrong steps: only the number of
// segments that hold a wrong step matters (the sample is uniform over
// segments), and the fewest such segments is B = ⌈f·n/k⌉, so
//
//	P(miss) = C(N−B, s) / C(N, s) = ∏_{i<s} (N−B−i)/(N−i) ≤ (1 − B/N)^s.
//
// The right-hand side is sampling with replacement, whose detection
// probability at k = 1 is the familiar 1 − (1−f)^(qn) for a sampled
// fraction q of the n steps: without replacement never does worse, so the
// clustered count is at most the with-replacement count (448 against 459
// for n = 10,000, f = 1%, c = 99%).
//
// The count is exact: the least s with P(miss) ≤ 1 − c, compared as
// rationals, with no floating point. P(miss) is carried as two 128-bit
// fixed-point bounds, one rounded up and one down at every factor; each
// factor is ≤ 1, so after s ≤ MaxSamples = 2^20 factors both bounds are
// within s·2^−128 < 2^−108 of the true value. When 1 − c falls between them
// (in practice only on exact ties, such as N = 100, B = 1, c = 99%, where
// P(miss) at s = 99 is exactly 1/100), the shorter of the two products
// above is multiplied out in integers and compared exactly. Independent
// counts are found by bisection (its P(miss) does not increase with s) on
// the same two-bound scheme, powers by squaring; the exact fallback there
// multiplies out powers up to exponent 2^18 and, beyond that, counts a
// straddle as a miss, which can only raise s. Both models are therefore
// exact for every policy where that last branch is not reached, and sound
// for all.
//
// That P(miss) does not increase with s under Independent: with
// a = (1−f)^k ≤ b = (1−f)^r, P(s+1)/P(s) = a·(1 + (b−a)/((N−s)a + s·b))
// ≤ a + (b−a)/N ≤ b ≤ 1.
//
// A count above MaxSamples is refused (ErrTooManySamples): one challenge
// draws at most that many segments.
//
// # Deterrence
//
// Let G be what a solver gains by cheating (the compute it saves; at most
// the job's compute cost), Pay the job's payment, b the bond and p ≥ c the
// chance of being caught. Settlement comes after the audit window, so a
// caught cheater forfeits both Pay (the escrow goes back to the client)
// and b (slashed), while the compute it saved stays saved. Against running honestly, cheating changes the solver's expected
// wealth by
//
//	G − p·(Pay + b).
//
// Bond(G, c) returns the least b with (1 − p)·G − p·b < 0 for every
// p ≥ c: the bet in which an uncaught cheater ends G ahead and a caught one
// b behind. That is the real bet, or a worse one for the cheater, because
// the forfeited payment is at least the gain: a solver takes a job only if
// Pay covers its cost, so Pay ≥ G, and then
//
//	G − p·(Pay + b) ≤ G − p·(G + b) = (1 − p)·G − p·b < 0.
//
// The forfeited payment offsets the fraction p of the gain and the bond
// the rest, which is why b ≈ G·(1−c)/c is small (about 1% of G at
// c = 99%). If a payment could ever be out of reach before an audit
// completes, the bond alone must cover the gain, p·b > G: use
// Bond(G, c) + G.
//
// Cheaters below the policy's fraction are deterred too when G is at least
// the cost of the B·k steps the policy's cheater gets wrong (true when G is
// the job's price): with B′ ≤ B bad segments, P(detect) is concave in B′
// (its increments shrink by the factor (N−s−B′)/(N−B′−1) ≤ 1), so it is at
// least (B′/B)·c, while the gain is at most (B′/B)·G, and
// (B′/B)·G < (B′/B)·c·(Pay + b) ≤ P(detect)·(Pay + b).
//
// # Choosing the digest interval
//
// A larger k makes the solver hash fewer states ((N+1) digests instead of
// n+1) but makes every replayed segment longer, and the clustered cheater
// can hide the same wrong steps in fewer segments. ChooseInterval prices
// both in nanoseconds from measured step, digest, replay and per-segment
// costs, and returns the cheapest k together with the whole curve. Costs
// are measurements, so they only steer the choice; sample counts and bonds
// are exact.
package plan
