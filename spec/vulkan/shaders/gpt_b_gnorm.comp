#version 450
#extension GL_GOOGLE_include_directive : require
#include "gpt_bwd.glsl"
// AdamW's global norm (SPEC.md §20.14.1–2), first pass over one
// parameter's gradient (G, e): per workgroup the sum, saturating at
// 2^64 − 1, of t² with h = RoundDiv(Clamp(ShiftRound(G, e + 30), ±2^62), N)
// and t = Clamp(RoundShift(h, 15), ±2^31), into S[dst + workgroup]. A sum
// saturating at a bound is min(bound, exact sum) for non-negative terms:
// it does not depend on the order.
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer Gb { int64_t g[]; };
layout(std430, binding = 1) readonly buffer Eb { int64_t eg; };
layout(std430, binding = 2) buffer Sb { int64_t S[]; };
layout(push_constant) uniform PC { uint n; uint tokens; uint dst; } pc;

shared uint64_t red[256];
shared uint64_t red16[16];

void main() {
    uint lid = gl_LocalInvocationID.x;
    int64_t e = eg + 30;
    uint64_t acc = 0;
    for (uint i = gl_WorkGroupID.x * 256u + lid; i < pc.n; i += gl_NumWorkGroups.x * 256u) {
        int64_t h = meanGrad(g[i], e, int64_t(pc.tokens));
        int64_t t = clamp64(roundShiftE(h, 15), -2147483648L, 2147483648L);
        acc = satAdd(acc, uint64_t(t * t));
    }
    // Two sixteen-way steps (2 barriers, not 8).
    red[lid] = acc;
    barrier();
    if (lid < 16u) {
        uint64_t t = red[16u * lid];
        for (uint q = 1u; q < 16u; q++) t = satAdd(t, red[16u * lid + q]);
        red16[lid] = t;
    }
    barrier();
    if (lid == 0u) {
        uint64_t t = red16[0];
        for (uint q = 1u; q < 16u; q++) t = satAdd(t, red16[q]);
        S[pc.dst + gl_WorkGroupID.x] = int64_t(t);
    }
}
