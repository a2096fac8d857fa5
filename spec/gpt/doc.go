// Package gpt is the decoder-only transformer of SPEC.md §20 (job spec
// version 2): a byte-level GPT whose every operation — embeddings,
// RMSNorm, causal multi-head attention with an integer softmax, SiLU,
// residual adds, the next-token cross-entropy and integer AdamW — is
// integer arithmetic with stated rounding, so any machine reproduces a
// training step bit for bit. Trainer runs steps (and Loss evaluates);
// Generator continues text with §20.17's integer sampling. spec/gptref is
// the independent, operator-by-operator reference it is tested against.
//
// A Config with GPT2 set is a served model of GPT-2 blocks (SPEC.md §22:
// LayerNorm with gain and bias, biased products, GELU, a head tied to the
// token embedding), imported from a checkpoint trained elsewhere: its
// forward pass (gpt2.go) serves Generator and Positions; it is never
// trained (Trainer.Step refuses it with ErrServedOnly).
//
// # Numbers
//
// Tensors between operators are integers with an exponent: a tensor (q, e)
// has the values q·2^e. Operands of products (every matrix product of the
// model) are normalised to Bits magnitude bits — forward activations per
// row, so the forward pass is causal and independent of the batch's other
// windows; weights and gradients per tensor — products are summed exactly
// in 64 bits, and the result carries the sum of the operands' exponents.
// The residual stream and the inputs and outputs of RMSNorm and SiLU are
// int32 fixed point with ActFrac fractional bits; gradients are
// normalised to GradBits bits where §20.13 says. Master weights and
// AdamW's moments are in MasterFrac, MomentFrac and VarFrac fractional
// bits.
//
// Exactness does not depend on the summation order or the thread count:
// every sum is of integers inside int64 (§20.16's bounds, enforced by
// Config.Validate's limits), and the matrix products use int32 partial
// sums only over chunks short enough that they cannot overflow (gemm.go).
// The fast paths — tables, reciprocal divisions, AVX-512 loops — each
// equal the definition exactly and are tested against it.
package gpt
