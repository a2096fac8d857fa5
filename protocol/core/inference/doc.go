// Package inference is verified inference (SPEC.md §21): the request a
// client's text is generated for, the receipt a solver signs over what it
// generated, and the exact check that re-runs ONE teacher-forced forward
// pass of the GPT (§20.11) over prompt + output and compares.
//
// A receipt (Receipt, 218 bytes whatever the length of the text) binds,
// under the solver's Ed25519 identity key, the model's state digest, the
// request's hash, the sampling seed and temperature, the token counts,
// why generation stopped, and the Merkle root over one leaf per generated
// position: the logits row the solver computed there, with its exponent,
// and the byte it sampled from it.
//
// # Soundness
//
// Integer inference is deterministic (§20): for a model, a request and a
// seed there is exactly one correct output and exactly one correct root.
// Generate produces them; Check recomputes every position's logits in one
// forward pass — the pass is causal and row-local, so each position's
// logits equal what generation saw there — re-samples every byte, and
// rebuilds the root. Any difference (another model or other weights:
// other logits; a truncated context: other logits; other sampling or
// made-up bytes: another byte; a premature or late stop: the stop rule)
// is a receipt the solver signed that no honest run produces, which is
// proof of fraud on its own. Nothing is approximated: a mismatch is never
// noise, so there are no false positives.
//
// Generation is limited to one window (len(prompt) + max_tokens ≤ the
// model's context T), so that one pass covers every position; §20.17's
// sliding window would need a pass per shifted position.
package inference
