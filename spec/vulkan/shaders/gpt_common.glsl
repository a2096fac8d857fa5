// The numbers of SPEC.md §1 and §20.9 on int64, exactly as spec/gptref
// (num.go) computes them, for the GPT operators' shaders (gpt_*.comp).
// Names carry a g prefix where common.glsl (the MLP's, whose roundShift
// assumes 0 ≤ s < 63 and no overflow) or GLSL has the plain one.
//
// GPUs leave a shift by ≥ 64 (or by a negative amount) undefined, and
// GLSL leaves % of negative operands undefined: every helper guards both.
#extension GL_EXT_shader_explicit_arithmetic_types_int64 : require
#include "common.glsl"

const int64_t I64MAX = 9223372036854775807L;
const int64_t ACT_FRAC = 16;    // A: residual stream, RMSNorm and SiLU outputs
const int64_t MASTER_FRAC = 24; // master weights
const int64_t GRAD_BITS = 24;   // G: a gradient between operators
const int64_t RMS_BITS = 24;    // RMSNorm keeps a row's top 24 bits
const int64_t MOMENT_FRAC = 30; // AdamW's first moment and mean gradient
const int64_t PROB_BITS = 15;   // the loss's probabilities (Q15)

// gUabs is |x| as an unsigned number (exact for the smallest int64 too).
uint64_t gUabs(int64_t x) { return x < 0 ? uint64_t(-(x + 1)) + 1UL : uint64_t(x); }

// ubitLen is bits.Len64: the bits of u (0 for 0).
int64_t ubitLen(uint64_t u) {
    uint hi = uint(u >> 32);
    uint lo = uint(u & 0xffffffffUL);
    return int64_t(hi != 0u ? 33 + findMSB(hi) : findMSB(lo) + 1);
}

// gBitLen is bitLen of §1: the bits of |x|.
int64_t gBitLen(int64_t x) { return ubitLen(gUabs(x)); }

// gRoundShift is RoundShift(x, s) of §1 for any s: x for s ≤ 0, 0 for
// s ≥ 64, else ⌊(x + 2^(s−1)) / 2^s⌋ without forming the sum.
int64_t gRoundShift(int64_t x, int64_t s) {
    if (s <= 0) return x;
    if (s >= 64) return 0;
    int sh = int(s);
    int64_t q = x >> sh; // arithmetic: ⌊x / 2^s⌋
    uint64_t r = uint64_t(x) & ((1UL << sh) - 1UL);
    if (r >= (1UL << (sh - 1))) q++;
    return q;
}

// gShiftRound is ShiftRound(x, k) of §20.9: x·2^k saturated to
// ±(2^63 − 1) for k ≥ 0, RoundShift(x, −k) for k < 0.
int64_t gShiftRound(int64_t x, int64_t k) {
    if (k < 0) return gRoundShift(x, -k);
    if (x == 0) return 0;
    if (k >= 63 || gBitLen(x) + k > 63) return x > 0 ? I64MAX : -I64MAX;
    return x << int(k);
}

// gRoundDiv is RoundDiv(a, d) of §20.9 for d > 0: ⌊(2a + d) / (2d)⌋, by
// floor division on magnitudes (GLSL's signed division truncates).
int64_t gRoundDiv(int64_t a, int64_t d) {
    uint64_t ud = uint64_t(d);
    uint64_t ua = gUabs(a);
    uint64_t q0 = ua / ud, r0 = ua - q0 * ud;
    int64_t q;
    uint64_t r;
    if (a >= 0) {
        q = int64_t(q0);
        r = r0;
    } else if (r0 == 0UL) {
        q = -int64_t(q0);
        r = 0UL;
    } else {
        q = -int64_t(q0) - 1; // floor: 0 ≤ r < d
        r = ud - r0;
    }
    if (r >= ud - r) q++;
    return q;
}

// gClamp is fixed.Clamp.
int64_t gClamp(int64_t x, int64_t lo, int64_t hi) { return x < lo ? lo : (x > hi ? hi : x); }

// gSat32 is Sat32 of §1: x saturated to the int32 range (kept in int64).
int64_t gSat32(int64_t x) { return gClamp(x, I32MIN, I32MAX); }

// capExp is min(x, 2^32): the cap on an exponential's argument.
int64_t capExp(int64_t x) { return x > 4294967296L ? 4294967296L : x; }

// isqrt64 is fixed.Isqrt: ⌊√x⌋ of a uint64, by Newton's method from an
// over-estimate (which converges downward to the floor).
uint64_t isqrt64(uint64_t x) {
    if (x < 2UL) return x;
    uint64_t r = 1UL << int((ubitLen(x) + 1) / 2);
    for (;;) {
        uint64_t n = (r + x / r) / 2UL;
        if (n >= r) return r;
        r = n;
    }
    return r;
}

// sigmaQ15 is σ(u) of §20.9: the logistic function of an int32 u with A
// fractional bits, in Q15 (σ(−u) = 2^15 − σ(u)).
int64_t sigmaQ15(int64_t u) {
    int64_t a = u < 0 ? -u : u;
    int64_t z = capExp(gRoundShift(a * LOG2E_Q16, 16));
    int64_t s = gRoundDiv(1L << 30, (1L << 15) + exp2NegQ15(z));
    return u < 0 ? (1L << 15) - s : s;
}

// normShift is the shift of Norm(x, e, β) of §20.9 for a tensor whose
// largest magnitude is m > 0: BitLen(m) − β (the exponent grows by it).
int64_t normShiftU(uint64_t m, int beta) { return ubitLen(m) - int64_t(beta); }

// normValue is one element of Norm(x, e, β) of §20.9 at shift s:
// Clamp(RoundShift(v, s), ±(2^β − 1)) for s > 0, v·2^(−s) otherwise.
int64_t normValue(int64_t v, int64_t s, int beta) {
    int64_t lim = (1L << beta) - 1;
    if (s > 0) return gClamp(gRoundShift(v, s), -lim, lim);
    return v << int(-s);
}

// The contract's names for the same helpers (gpt_bwd.glsl uses them).
int bitLen(int64_t x) { return int(gBitLen(x)); }
int64_t roundShiftE(int64_t x, int64_t s) { return gRoundShift(x, s); }
int64_t shiftRound(int64_t x, int64_t k) { return gShiftRound(x, k); }
int64_t roundDiv(int64_t a, int64_t d) { return gRoundDiv(a, d); }
int64_t sigma(int64_t u) { return sigmaQ15(u); }

// Workgroup reductions, for shaders that define GPT_WG (their
// local_size_x, a multiple of 8) before including this file: every
// invocation of the workgroup calls them (uniform control flow) and gets
// the result. Two levels of eight-way combining, so two barriers a call
// (barriers are what a CPU device such as lavapipe pays most for); the
// next call's first barrier orders its writes after this call's reads.
// Integer maxima and sums do not depend on the order, so they are
// deterministic; a sum is exact when the true sum fits int64 (uint64
// addition wraps as int64's does).
#ifdef GPT_WG
shared uint64_t gptRed[GPT_WG];
shared uint64_t gptRed2[GPT_WG / 8];

uint64_t wgMaxU(uint64_t v) {
    uint li = gl_LocalInvocationID.x;
    gptRed[li] = v;
    barrier();
    if (li < GPT_WG / 8) {
        uint64_t m = gptRed[8u * li];
        for (uint i = 1u; i < 8u; i++) m = max(m, gptRed[8u * li + i]);
        gptRed2[li] = m;
    }
    barrier();
    uint64_t r = gptRed2[0];
    for (uint i = 1u; i < GPT_WG / 8; i++) r = max(r, gptRed2[i]);
    return r;
}

// wgMaxI is the maximum of signed values (by the order-preserving flip of
// the sign bit).
int64_t wgMaxI(int64_t v) {
    return int64_t(wgMaxU(uint64_t(v) ^ 0x8000000000000000UL) ^ 0x8000000000000000UL);
}

int64_t wgSum(int64_t v) {
    uint li = gl_LocalInvocationID.x;
    gptRed[li] = uint64_t(v);
    barrier();
    if (li < GPT_WG / 8) {
        uint64_t m = 0UL;
        for (uint i = 0u; i < 8u; i++) m += gptRed[8u * li + i];
        gptRed2[li] = m;
    }
    barrier();
    uint64_t r = 0UL;
    for (uint i = 0u; i < GPT_WG / 8; i++) r += gptRed2[i];
    return int64_t(r);
}
#endif
