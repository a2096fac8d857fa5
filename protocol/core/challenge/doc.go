// Package challenge derives which segments of a committed run get audited.
//
// A run of a job commits a trace (protocol/core/trace): the state digest after
// steps 0, k, 2k, … and the final step, k the spec's digest_interval.
// Segment i is the run between trace entries i and i+1: from the committed
// digest at entry i to the one at entry i+1. A trace of E entries has
// E − 1 segments.
//
// The audit draws its segments in two steps (SPEC.md "Challenges"):
//
//	seed = Seed(job, traceRoot, beacon)
//	segs = Sample(seed, segments, count)
//
// Seed hashes the job ID, the trace root and the coordinator's beacon; Sample
// expands the seed into count distinct segment indices with Floyd's
// algorithm over a SplitMix64 stream (spec/prng). Both are pure integer
// functions of their inputs: every party recomputes the same challenge.
//
// # Soundness
//
// The solver publishes its trace root before the coordinator publishes the
// beacon, and the beacon is fresh randomness the solver cannot predict. The
// root fixes every committed digest (a Merkle tree), so when the challenge
// becomes known the solver can no longer move honest work to where the
// samples fall: whichever segments it computed wrongly are fixed first, and
// the challenge is then a uniformly random count-subset of the segments,
// independent of them. The probability that it misses all B bad segments
// of N is exactly C(N−B, count)/C(N, count), up to the bias of Below
// (below segments/2^64 per draw) and the 64-bit key (the solver cannot
// grind it: the beacon arrives after the root).
//
// The guarantee rests on the beacon being unpredictable to the solver when
// it commits. A coordinator that colluded with a solver could choose a
// beacon that avoids the bad segments; committing to the beacon (publishing
// SHA-256 of it) before the job starts, or mixing in randomness from the
// verifiers, removes that freedom. The seed binds the job ID and the trace
// root, so a beacon reused across jobs or traces still gives unrelated
// challenges.
package challenge
