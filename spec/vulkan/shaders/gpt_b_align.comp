#version 450
#extension GL_GOOGLE_include_directive : require
#include "gpt_bwd.glsl"
// The product backward's aligned input (SPEC.md §20.13) into the scratch:
// x'[r][i] = RoundShift(xq[r][i], E − e_x[r]), E = max_r e_x[r] in S[slot].
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer Xb { int64_t xq[]; };
layout(std430, binding = 1) readonly buffer Eb { int64_t ex[]; };
layout(std430, binding = 2) buffer Sb { int64_t S[]; };
layout(push_constant) uniform PC { uint rows; uint k; uint dst; uint slot; } pc;

void main() {
    int64_t e = S[pc.slot];
    uint n = pc.rows * pc.k;
    for (uint i = gl_GlobalInvocationID.x; i < n; i += gl_NumWorkGroups.x * 256u) {
        S[pc.dst + i] = roundShiftE(xq[i], e - ex[i / pc.k]);
    }
}
