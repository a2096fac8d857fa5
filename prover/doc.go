// Package prover turns the circuits of circuits/ into proofs a third party
// checks without seeing the solver's values: Groth16 over BN254 with keys
// from a multi-party setup ceremony (ceremony.go), PLONK with a KZG SRS
// taken from the same ceremony's powers of tau (plonk.go), and a
// content-addressed key cache (cache.go).
//
// # Security
//
// Groth16 keys are only as good as their setup: whoever knows the setup's
// toxic waste can forge proofs. The ceremony (gnark's mpcsetup: phase 1,
// powers of tau; phase 2, per circuit) is sound if at least one
// contributor destroyed its randomness; every contribution carries a proof
// of knowledge and is verified against its predecessor before the keys are
// extracted, and a final public beacon seals each phase. The coordinator
// is just one contributor among others. PLONK's SRS is the ceremony's
// phase-1 powers of τ, so the same trust assumption covers it.
//
// Everything read from outside (proofs, keys, contributions) is bounded in
// size before decoding and validated by the decoder (points on the curve
// and in the subgroup); a public witness is never taken from the prover:
// the verifier assembles the public inputs itself.
//
// Full-size proving is slow (seconds); tests that do it run only with
// BELUGA_SLOW=1 (spectest.Slow).
package prover
