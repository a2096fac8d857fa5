#version 450
#extension GL_GOOGLE_include_directive : require
#include "gpt_bwd.glsl"
// A deterministic reduction of n int64 values x[src .. src+n) to one per
// workgroup, S[dst + workgroup]: mode 0 max |x| (unsigned), 1 max, 2 min,
// 3 unsigned max (the second pass of mode 0). Integer maxima and minima
// do not depend on the order, so neither does the result; gptbwd.go runs
// a second one-workgroup pass over the partial results.
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer Xb { int64_t x[]; };
layout(std430, binding = 1) buffer Sb { int64_t S[]; };
layout(push_constant) uniform PC { uint n; uint src; uint dst; uint mode; } pc;

shared int64_t red[256];
shared int64_t red16[16];

int64_t comb(int64_t a, int64_t b) {
    if (pc.mode == 1u) return a > b ? a : b;
    if (pc.mode == 2u) return a < b ? a : b;
    return uint64_t(a) > uint64_t(b) ? a : b;
}

void main() {
    uint lid = gl_LocalInvocationID.x;
    int64_t acc = pc.mode == 1u ? -9223372036854775807L - 1L : (pc.mode == 2u ? 9223372036854775807L : 0L);
    for (uint i = gl_WorkGroupID.x * 256u + lid; i < pc.n; i += gl_NumWorkGroups.x * 256u) {
        int64_t v = x[pc.src + i];
        if (pc.mode == 0u) v = int64_t(gUabs(v));
        acc = comb(acc, v);
    }
    // Two sixteen-way steps (2 barriers, not 8).
    red[lid] = acc;
    barrier();
    if (lid < 16u) {
        int64_t t = red[16u * lid];
        for (uint q = 1u; q < 16u; q++) t = comb(t, red[16u * lid + q]);
        red16[lid] = t;
    }
    barrier();
    if (lid == 0u) {
        int64_t t = red16[0];
        for (uint q = 1u; q < 16u; q++) t = comb(t, red16[q]);
        S[pc.dst + gl_WorkGroupID.x] = t;
    }
}
