// Package model is one interface over the two kinds of job a spec can
// describe: version 1's MLP (trained by spec/engine) and version 2's
// byte-level GPT (trained by spec/gpt). A solver's training loop, a
// resuming run and the command line see only Data, a Runner and the
// canonical spec.State, and never ask which kind they run.
//
// # Guarantees
//
//   - LoadData and NewTextData check the bytes they find against the
//     spec's commitments (dataset roots, counts, sizes) before anything
//     trains on them; a mismatch wraps ErrDataMismatch.
//   - A Runner's State is the canonical state (spec.State): what is
//     digested, checkpointed and compared. For an MLP it is the engine's
//     state; for a GPT it is spec.GPTTensors of the model's state, kept in
//     sync after every Step, so a digest or checkpoint taken between steps
//     is that of the model that trains.
//   - Step t's batch depends only on the spec (seed, data) and t, so a run
//     resumed from a checkpoint reaches the same state as one that was not
//     interrupted.
//   - Nothing here uses floating point (internal/archtest): losses are
//     integers in Q16 nats, and a GPT's validation loss is reported as the
//     exact sum SPEC.md §20.7 divides to get bits per byte.
package model
