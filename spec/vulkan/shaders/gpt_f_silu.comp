#version 450
#extension GL_GOOGLE_include_directive : require
#define GPT_WG 64
#include "gpt_common.glsl"
// silu (SPEC.md §20.11.3), one workgroup per row: h = RoundShift(u·σ(u),
// 15), (hq, e) = NormRow(h, −16, b).
layout(local_size_x = GPT_WG) in;
layout(std430, binding = 0) readonly buffer U { int64_t u[]; };
layout(std430, binding = 1) writeonly buffer Q { int64_t hq[]; };
layout(std430, binding = 2) writeonly buffer E { int64_t he[]; };
layout(push_constant) uniform PC { int n; int f; int bits; } pc;

int64_t h(int64_t v) { return gRoundShift(v * sigmaQ15(v), 15); }

void main() {
    uint li = gl_LocalInvocationID.x, f = uint(pc.f);
    for (uint r = gl_WorkGroupID.x; r < uint(pc.n); r += gl_NumWorkGroups.x) {
        uint base = r * f;
        uint64_t m = 0UL;
        for (uint i = li; i < f; i += GPT_WG) {
            uint64_t a = gUabs(h(u[base + i]));
            m = a > m ? a : m;
        }
        m = wgMaxU(m);
        int64_t s = m == 0UL ? 0 : normShiftU(m, pc.bits);
        for (uint i = li; i < f; i += GPT_WG) hq[base + i] = m == 0UL ? 0 : normValue(h(u[base + i]), s, pc.bits);
        if (li == 0u) he[r] = -ACT_FRAC + s;
    }
}
