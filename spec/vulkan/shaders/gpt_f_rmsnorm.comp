#version 450
#extension GL_GOOGLE_include_directive : require
#define GPT_WG 64
#include "gpt_common.glsl"
// rmsnorm (SPEC.md §20.11.2), one workgroup per row: s = max(0, top bits −
// 24), xs = RoundShift(x, s), ρ = Isqrt(Σ xs² / D), y = RoundDiv(xs·2^16, ρ)
// (0 for a zero row), and (yq, e) = NormRow(y, −16, b).
layout(local_size_x = GPT_WG) in;
layout(std430, binding = 0) readonly buffer X { int64_t x[]; };
layout(std430, binding = 1) writeonly buffer Y { int64_t y[]; };
layout(std430, binding = 2) writeonly buffer R { int64_t rho[]; };
layout(std430, binding = 3) writeonly buffer S { int64_t shift[]; };
layout(std430, binding = 4) writeonly buffer Q { int64_t yq[]; };
layout(std430, binding = 5) writeonly buffer E { int64_t ye[]; };
layout(push_constant) uniform PC { int n; int d; int bits; } pc;

void main() {
    uint li = gl_LocalInvocationID.x, d = uint(pc.d);
    for (uint r = gl_WorkGroupID.x; r < uint(pc.n); r += gl_NumWorkGroups.x) {
        uint base = r * d;
        int64_t top = 0;
        for (uint i = li; i < d; i += GPT_WG) top = max(top, gBitLen(x[base + i]));
        top = wgMaxI(top);
        int64_t s = max(int64_t(0), top - RMS_BITS);
        int64_t sum = 0; // ≤ D·2^48
        for (uint i = li; i < d; i += GPT_WG) {
            int64_t v = gRoundShift(x[base + i], s);
            sum += v * v;
        }
        sum = wgSum(sum);
        int64_t rh = int64_t(isqrt64(uint64_t(sum) / uint64_t(d)));
        uint64_t m = 0UL;
        for (uint i = li; i < d; i += GPT_WG) {
            int64_t v = rh == 0 ? 0 : gRoundDiv(gRoundShift(x[base + i], s) << 16, rh);
            y[base + i] = v;
            uint64_t a = gUabs(v);
            m = a > m ? a : m;
        }
        m = wgMaxU(m);
        int64_t ns = m == 0UL ? 0 : normShiftU(m, pc.bits);
        for (uint i = li; i < d; i += GPT_WG) {
            int64_t v = rh == 0 ? 0 : gRoundDiv(gRoundShift(x[base + i], s) << 16, rh);
            yq[base + i] = m == 0UL ? 0 : normValue(v, ns, pc.bits);
        }
        if (li == 0u) {
            rho[r] = rh;
            shift[r] = s;
            ye[r] = -ACT_FRAC + ns;
        }
    }
}
