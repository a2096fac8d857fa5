// Package gpt is the decoder-only transformer of SPEC.md (version 2): a
// byte-level GPT whose every operation — embeddings, RMSNorm, causal
// multi-head attention with an integer softmax, SiLU, residual adds, the
// next-token cross-entropy and integer AdamW — is integer arithmetic with
// stated rounding, so any machine reproduces a training step bit for bit.
//
// # Numbers
//
// Tensors between operators are integers with an exponent: a tensor (q, e)
// has the values q·2^e. Operands of products (every matrix product of the
// model) are normalised per tensor to Bits magnitude bits (Norm), products
// are summed exactly in 64 bits, and the result carries the sum of the
// operands' exponents. The residual stream and the inputs of the
// non-linear operators are int32 fixed point with ActFrac fractional bits;
// gradients between operators are normalised to GradBits bits. Master
// weights, AdamW's moments and the optimizer's fixed formats are in
// MasterFrac, MomentFrac and VarFrac fractional bits.
//
// Exactness does not depend on the summation order: every sum is of
// integers and stays far inside int64 (the bounds are in Config.Validate),
// and the matrix products use int32 partial sums only over chunks short
// enough that they cannot overflow (gemm.go).
package gpt
