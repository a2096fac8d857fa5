// Package gptref is the independent reference of the GPT training step of
// SPEC.md §20: the step written from the SPEC's text alone, as a fixed
// graph of operators, so that a dispute referee can recompute one operator
// instead of a whole step, and so that the fast engine (spec/gpt) has a
// second implementation to agree with bit for bit.
//
// # The graph
//
// The graph depends on the model's configuration only (every step has the
// same one). Its tensors are the sources — the state before the step
// (§20.10: P, P.m, P.v per parameter, in parameter order) and the batch
// (tokens and targets, [N] bytes) — and the outputs of its operators. Each
// operator is one formula block of §20.11–§20.14: a pure function of its
// named inputs (and the step number, for the learning rate) to its named
// outputs. Exponents are tensors too: [1] for a per-tensor exponent, [N]
// for per-row exponents. Every tensor has a fixed shape and a value range;
// an operator checks each input against them before computing anything,
// fails with ErrOverflow instead of leaving int64, and checks its outputs,
// so hostile inputs give an error, never a panic. The graph is an
// opgraph.Graph (spec/opgraph, shared with the MLP's spec/ref): the
// dispute game (protocol/core/dispute) recomputes one of its operators.
//
// The operators, for a configuration with L layers (l = 0 … L−1), in order:
//
//	quantize.P   P → P.wq, P.wq.exp                                 (§20.10, each matrix P)
//	embed        tok_emb, pos_emb, tokens → act.0.x                   (§20.11.1)
//	l.ln1        act.l.x → act.l.ln1.{y, rho, s, yq, yq.exp}           (RMSNorm)
//	l.qkv        act.l.ln1.yq[.exp], qkv.wq[.exp] → act.l.{Q, K, V}[.exp]
//	l.attn       act.l.{Q, K, V}[.exp] → act.l.attn.P, act.l.attn.Oq[.exp]
//	l.out        act.l.attn.Oq[.exp], out.wq[.exp], act.l.x → act.l.xmid
//	l.ln2        act.l.xmid → act.l.ln2.{…}
//	l.up         act.l.ln2.yq[.exp], up.wq[.exp] → act.l.u
//	l.silu       act.l.u → act.l.hq[.exp]
//	l.down       act.l.hq[.exp], down.wq[.exp], act.l.xmid → act.(l+1).x
//	final.ln     act.L.x → act.final.{…}
//	head         act.final.yq[.exp], head.wq[.exp] → act.logits[.exp]
//	loss         act.logits[.exp], targets → loss.grad[.exp], loss.sum   (§20.12)
//	head.bwd     loss.grad[.exp], act.final.yq[.exp], head.wq[.exp] → grad.head[.exp], grad.final.dy[.exp]
//	final.ln.bwd grad.final.dy[.exp], act.final.{y, rho, s} → grad.L.x[.exp]
//	  for l = L−1 … 0:
//	l.down.bwd   grad.(l+1).x[.exp], act.l.hq[.exp], down.wq[.exp] → grad.down[.exp], grad.l.dh[.exp]
//	l.silu.bwd   grad.l.dh[.exp], act.l.u → grad.l.du[.exp]
//	l.up.bwd     grad.l.du[.exp], act.l.ln2.yq[.exp], up.wq[.exp] → grad.up[.exp], grad.l.dy2[.exp]
//	l.ln2.bwd    grad.l.dy2[.exp], act.l.ln2.{y, rho, s} → grad.l.dn2[.exp]
//	l.add2       grad.(l+1).x[.exp], grad.l.dn2[.exp] → grad.l.xmid[.exp]
//	l.out.bwd    grad.l.xmid[.exp], act.l.attn.Oq[.exp], out.wq[.exp] → grad.out[.exp], grad.l.dO[.exp]
//	l.attn.bwd   grad.l.dO[.exp], act.l.attn.P, act.l.{Q, K, V}[.exp] → grad.l.{dQ, dK, dV}[.exp]
//	l.qkv.bwd    grad.l.{dQ, dK, dV}[.exp], act.l.ln1.yq[.exp], qkv.wq[.exp] → grad.qkv[.exp], grad.l.dy1[.exp]
//	l.ln1.bwd    grad.l.dy1[.exp], act.l.ln1.{y, rho, s} → grad.l.dn1[.exp]
//	l.add1       grad.l.xmid[.exp], grad.l.dn1[.exp] → grad.l.x[.exp]
//	embed.bwd    grad.0.x[.exp], tokens → grad.tok_emb[.exp], grad.pos_emb[.exp]   (§20.13.3)
//	adamw.norm   grad.P[.exp] for every P → adamw.norm                 (§20.14.1–2)
//	adamw.P      P, P.m, P.v, grad.P[.exp], adamw.norm → next.P, next.P.m, next.P.v (§20.14, each P)
//
// NewForwardGraph is the forward pass alone, over one window of n ≤ T
// tokens, as inference computes it (§21): the weights P and the tokens as
// sources, the operators quantize.P through head above with batch 1 and n
// rows; the inference dispute (protocol/core/inferdispute) recomputes one
// of them.
//
// For a model of GPT-2 blocks (SPEC.md §22: served, never trained, so
// NewGraph refuses it with ErrGPT2) NewForwardGraph builds §22.3's pass,
// written from §22.2's text: the sources are §22.1's parameters — the
// gains and biases (vectors, [1, n] Q16) are state tensors named by their
// state names, like the matrices — and the tokens; the operators are
//
//	quantize.P   P → P.wq, P.wq.exp             (each matrix P, and tok_emb for the tied head)
//	embed        tok_emb, pos_emb, tokens → act.0.x
//	l.ln1        act.l.x, ln1.{gain, bias} → act.l.ln1.{y, yq, yq.exp}   (layernorm)
//	l.qkv        act.l.ln1.yq[.exp], qkv.wq[.exp], qkv.bias → act.l.{Q, K, V}[.exp]   (qkv.bias)
//	l.attn       as above
//	l.out        act.l.attn.Oq[.exp], out.wq[.exp], act.l.x, out.bias → act.l.xmid   (residual.bias)
//	l.ln2        act.l.xmid, ln2.{gain, bias} → act.l.ln2.{…}
//	l.up         act.l.ln2.yq[.exp], up.wq[.exp], up.bias → act.l.u   (up.bias)
//	l.gelu       act.l.u → act.l.hq[.exp]
//	l.down       act.l.hq[.exp], down.wq[.exp], act.l.xmid, down.bias → act.(l+1).x   (residual.bias)
//	final.ln     act.L.x, ln_f.{gain, bias} → act.final.{…}
//	head         act.final.yq[.exp], tok_emb.wq[.exp] → act.logits[.exp]
//
// Here "act.l" abbreviates "act.<l>", a parameter name such as qkv stands
// for blocks.<l>.attn.qkv, and X[.exp] is the pair X, X.exp.
package gptref
