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

void main() {
    uint lid = gl_LocalInvocationID.x;
    uint64_t acc = 0;
    for (uint i = lid; i < pc.n; i += 256u) acc = satAdd(acc, uint64_t(S[pc.src + i]));
    red[lid] = acc;
    barrier();
    for (uint s = 128u; s > 0u; s >>= 1) {
        if (lid < s) red[lid] = satAdd(red[lid], red[lid + s]);
        barrier();
    }
    if (lid == 0u) {
        uint64_t m = red[0] > 0x7ffffffffffffffful ? 0x7ffffffffffffffful : red[0];
        nu = int64_t(isqrt64(m));
    }
}
