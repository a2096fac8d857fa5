#version 450
#extension GL_GOOGLE_include_directive : require
#include "gpt_bwd.glsl"
// AdamW's global norm, second pass (one workgroup): the saturating sum of
// the n partial sums S[src ..], then ν = Isqrt(min(sum, 2^63 − 1)).
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer Sb { int64_t S[]; };
layout(std430, binding = 1) writeonly buffer Ob { int64_t nu; };
layout(push_constant) uniform PC { uint n; uint src; } pc;

shared uint64_t red[256];
shared uint64_t red16[16];

void main() {
    uint lid = gl_LocalInvocationID.x;
    uint64_t acc = 0;
    for (uint i = lid; i < pc.n; i += 256u) acc = satAdd(acc, uint64_t(S[pc.src + i]));
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
        uint64_t m = t > 0x7ffffffffffffffful ? 0x7ffffffffffffffful : t;
        nu = int64_t(isqrt64(m));
    }
}
