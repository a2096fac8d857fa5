// Package dispute is the refereed game that settles a disagreement between
// a solver and a verifier about a run: when a verifier's replay of a
// segment ends at another state digest than the solver committed, the
// referee (the coordinator) decides who is wrong by recomputing one
// operator of one step, and the loser's bond is slashed — the cheating
// solver's, or the false accuser's.
//
// The game has two bisections. Over steps: both parties agree on the
// digest after Start steps and disagree after End; they report their
// digests at the midpoints of a shrinking interval until the step t
// remains whose start digest they agree on and whose end digest they do
// not (⌈log2(End−Start)⌉ rounds). Over operators: the step is cut into a
// fixed list of operators — an MLP's (SPEC.md §8) by spec/ref's Graph
// (quantize, forward, relu, loss, backward, update per layer), a GPT's
// (§20) by spec/gptref's (quantize per matrix, embed, per block RMSNorm,
// QKV, attention, output, RMSNorm, up, SiLU, down, then the head, the
// loss, the backward of each, the gradient norm and AdamW per parameter:
// 26·L + 12 operators for L blocks). Both graphs share spec/opgraph's
// types, and the game plays against opgraph.Graph. Each party commits to
// the hash of every tensor of its computation of step t (a Claim), the
// referee finds the first operator whose outputs the claims disagree on,
// has its inputs opened, and recomputes it (opgraph.Graph.RunOp). Whoever
// claimed the recomputed outputs wins; if neither did, both lose.
//
// Every decision is recorded as Evidence, which Check re-decides from the
// spec alone: the referee is not trusted either. The wire encodings of
// claims, openings and evidence are in wire.go.
//
// # Soundness
//
// What the referee trusts: SPEC.md (through the spec, whose hash is the
// job ID both parties signed up to), SHA-256, and nothing either party
// says without a hash check. Its argument, assuming SHA-256 is collision
// resistant:
//
//   - The state tensors of a claim hash exactly as the state digest hashes
//     them (HashTensor uses the state tree's leaves), so a claim whose
//     before-state leaves rebuild the agreed digest after t steps holds the
//     agreed state, and one whose after-state leaves rebuild the party's
//     own digest after t+1 steps is bound to that digest. A claim failing
//     either is inconsistent with the party's own statements, and the party
//     loses without anything being opened.
//   - Both claims being consistent, they hold the same state before the
//     step and different states after it. Operators are listed so that
//     each input is a source (the state, the batch) or an output of an
//     earlier operator; so the first place the claims part is the batch or
//     an operator all of whose inputs they agree on, and some output of
//     which they do not.
//   - Agreed hashes fix the inputs' values, so any opening that matches
//     them is the value, whoever supplies it; the spec makes the operator a
//     function; so exactly one output value is correct, and at most one
//     claim can hold it. A party whose claim differs from the recomputation
//     claimed something the spec does not compute from values it agreed
//     to, and loses. An honest party claims only correct values and never
//     loses, so a false accusation loses the same game a cheat does.
//   - The batch is a source the parties may disagree on. It is settled
//     against the spec alone. An MLP's: the batch order (SPEC.md §7)
//     names the sample indices and each sample comes with its inclusion
//     proof in the training-set root of the spec (§6.4). A GPT's tokens
//     and targets: §20.5 draws the windows' starts from the seed and the
//     step, and each window's T+1 bytes come with the chunks that hold
//     them and their inclusion proofs in data.text's root (§20.2).
//   - A recomputation that refuses inputs both parties signed (in range,
//     but values no valid step produces, such as a GPT product leaving
//     int64) makes both lose: their agreed values are already off the
//     spec's step, and an honest party, whose values a valid step
//     produced, never signs such inputs.
//   - One operator suffices because of the two points above: the parties'
//     own hashes reduce "who computed step t wrongly" to "who claimed a
//     wrong output of one operator from agreed inputs". The referee pays
//     one operator's work (Cost.OpWork, against Cost.StepWork for the full
//     step), the hashing of its inputs and outputs, and O(log n) digest
//     comparisons — or, for a disputed batch, one batch's Merkle proofs and
//     the derivation of its indices (a GPT's: its B window starts).
//
// Forfeits (a party not answering, or opening values that do not match the
// agreed hashes) are decided on the referee's own observation and yield no
// Evidence; the transport's signed messages and timeouts are their record.
// The digests and claims inside Evidence are what the parties sent; that
// they sent them is proven by the signed messages that carried them, not
// by this package.
package dispute
