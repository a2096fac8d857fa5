// Package inferdispute is the refereed game that settles a verifier's
// accusation that an inference receipt is fraud (SPEC.md §21.4): instead
// of re-running the forward pass, the referee (the coordinator) narrows
// the disagreement down to ONE operator of the pass and recomputes only
// that one, as protocol/core/dispute does for a training step; the loser's
// bond is slashed — the cheating solver's (its client refunded), or the
// false accuser's.
//
// # The game
//
// A case is a record: the request, the output and the solver's signed
// receipt. Its graph (Graph) is spec/gptref's forward graph over the
// window prompt + output (n = p + m ≤ T tokens, batch 1: the pass is
// causal and row-local, §20.11, so its rows are exactly what generation
// saw), whose sources are the model's weights — the state's P tensors,
// with the training graph's names and order — and the tokens, followed by
// two operators of §21: sample (§20.17's draw of byte k from the logits
// row p−1+k, with the request's seed and temperature) and positions (the
// root over the leaves of §21.2). For L blocks it has 12L + 6 operators:
// 4L + 1 quantize, embed, 8 per block, final rmsnorm, head, sample and
// positions. A model of GPT-2 blocks (§22, imported and served) plays the
// same game over gptref's forward graph of §22.3, whose sources are its
// weights with the gains and biases (state tensors too, so the claims'
// leaves rebuild its digest) and whose operators are 4L + 1 quantize (the
// tied head's over tok_emb in place of the head's), embed, 8 per block (layernorm,
// qkv.bias, attn, residual.bias, layernorm, up.bias, gelu,
// residual.bias), the final layernorm, the head, sample and positions:
// 12L + 6 operators as well.
//
// The referee first checks what needs no model (inference.CheckReceipt:
// signature, bindings, counts, the stop rule); a receipt false on its
// face loses the solver the game. Then each party commits to its pass (a
// Claim: dispute.HashTensor of every tensor of the graph, the weights
// hashing to their state-tree leaves, and the leaves of the checkpoint's
// moments P.m and P.v). A claim is consistent when its weights' and
// moments' leaves rebuild the model's state digest (commit.Digest of the
// checkpoint's job and step), its tokens hash to the record's text, and
// its sampled bytes and root are the receipt's output and root (the
// solver's, who signed them) or are not (the verifier's, who says the
// model computes something else). An inconsistent claim loses without
// anything being opened. Otherwise the referee finds the first operator
// whose outputs the claims differ on, has its inputs opened (the solver
// first, the verifier if the solver's opening fails), checks them
// against the agreed hashes, recomputes that operator (Graph.RunOp) and
// compares with both claims. Every decision is recorded as Evidence,
// which Check re-decides from the model's configuration and checkpoint
// name alone; forfeits (no answer, openings that do not match) yield none.
//
// # Soundness
//
// What the referee trusts: SPEC.md (the model's configuration, from the
// spec that hashes to the checkpoint's job), SHA-256, and nothing either
// party says without a hash check. Assuming SHA-256 collision resistant:
//
//   - The sources are fixed by public data. The weights' hashes are the
//     state tree's leaves (dispute.HashTensor), so a claim whose leaves
//     rebuild the published state digest holds the published weights;
//     the tokens are the record's text, hashed by the referee itself. Two
//     consistent claims therefore agree on every source.
//   - The ends are fixed by signed data. The solver signed the receipt's
//     output and root, so its consistent claim ends with them; the
//     verifier accuses, so its consistent claim does not. Two consistent
//     claims therefore differ at the end.
//   - Operators are listed so that each input is a source or an output of
//     an earlier operator, so the first operator whose outputs the claims
//     differ on has inputs they all agree on. Agreed hashes fix the
//     inputs' values, whoever opens them; the spec makes the operator a
//     function; so exactly one output value is correct, and at most one
//     claim holds it. An honest party claims only correct values and
//     never loses: a false accusation loses the same game a cheat does.
//   - Integer inference is deterministic (§20), so an honest solver's
//     receipt is exactly the honest pass's end, and an honest verifier
//     accuses only receipts that are not: then the solver's consistent
//     claim must leave the spec's pass at some operator. Each way of
//     cheating ends at one operator or at the sources: other weights or
//     another model give other logits (the head, or whichever operator
//     the cheater's claim first departs from the spec at, or the weights'
//     leaves if it claims the weights it used); a truncated context other
//     logits (the head, or the tokens if claimed); other sampling or
//     made-up bytes another byte (sample); a wrong root (positions).
//   - A recomputation that refuses inputs both parties signed (in range,
//     but values no valid pass produces) makes both lose: an honest party
//     never signs such inputs.
//
// # Cost
//
// The referee pays one operator's Work (Cost.OpWork, against
// Cost.PassWork for the whole graph), the hashing of its inputs and
// outputs and of the three public tensors, and one state-root rebuild
// from 3·(4L + 3) leaves; it needs no weights. Measured on the example GPT
// (4 blocks, context 128, width 128; a 64-byte prompt and 64 bytes
// generated; TestRefereeCost, BELUGA_SLOW=1, on a shared 2-core VM): a
// cheater with a truncated context loses at the head, Work 4,194,304 of
// the pass's 123,207,680 (3.4%), recomputed by the reference in 5.5 ms,
// with 659 KB hashed, against 22.8 ms for the engine's teacher-forced pass
// that the old referee ran. Other sampling and made-up bytes lose at
// sample, Work m·256 (16,384: 0.013%). The largest operator of the graph
// (an MLP up or down product, 6.8% of the pass) bounds what any dispute
// costs. Each party recomputes its whole pass (the reference's, from the
// record) to answer — 0.34 s for its claim there (a second run: 4.6 ms
// for the head, 17 ms for the engine's pass): the cost of the game falls
// on the parties.
package inferdispute
