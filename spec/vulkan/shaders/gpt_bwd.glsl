// Helpers of the GPT backward and AdamW shaders (gpt_b_*.comp; SPEC.md
// §20.13–§20.14) on top of gpt_common.glsl's integer primitives.
#include "gpt_common.glsl"

// The scratch buffer of a backward operator starts with int64 slots that
// carry its scalars between dispatches (gptbwd.go names the same slots):
// copied input exponents, tensor maxima, exponent maxima and the output
// exponents that gptbwd.go copies into the graph's [1] tensors.
const uint S_IN0 = 0u;   // input exponents (S_IN0 + k)
const uint S_MAX0 = 8u;  // max |x| of tensors (S_MAX0 + k)
const uint S_E0 = 12u;   // maxima / minima of per-row values (S_E0 + k)
const uint S_OUT0 = 16u; // output exponents (S_OUT0 + k)
const uint S_EG = 20u;   // the exponent of a normalised gradient

// Push constants are unsigned in every gpt_b_*.comp, and widened to
// int64 by zero extension: Mesa 22.3's lavapipe miscompiles a comparison
// of a sign-extended push constant (with int s = 16, int64_t(s) >= 64 held),
// and RoundShift's and Norm's range checks are such comparisons.

// normQ is one element of Norm(x, ·, β) (§20.9) given the tensor's
// maximum magnitude m (as the bits of a uint64).
int64_t normQ(int64_t x, int64_t m, int64_t beta) {
    if (m == 0) return 0;
    int64_t s = ubitLen(uint64_t(m)) - beta;
    int64_t lim = (int64_t(1) << beta) - 1;
    if (s > 0) return clamp64(roundShiftE(x, s), -lim, lim);
    return x << int(-s); // |x| < 2^(β+s): exact
}

// normExp is the exponent of Norm(x, e, β) given max |x| = m.
int64_t normExp(int64_t e, int64_t m, int64_t beta) { return m == 0 ? e : e + ubitLen(uint64_t(m)) - beta; }

// satAdd is a + b saturating at 2^64 − 1.
uint64_t satAdd(uint64_t a, uint64_t b) {
    uint64_t s = a + b;
    return s < a ? 0xfffffffffffffffful : s;
}

// meanGrad is h of SPEC.md §20.14.1 for a gradient value g at exponent
// e − 30 (e is the exponent plus 30) over N = tokens positions:
// RoundDiv(Clamp(ShiftRound(g, e), −2^62, 2^62), N).
int64_t meanGrad(int64_t g, int64_t e, int64_t tokens) {
    return roundDiv(clamp64(shiftRound(g, e), -(int64_t(1) << 62), int64_t(1) << 62), tokens);
}
