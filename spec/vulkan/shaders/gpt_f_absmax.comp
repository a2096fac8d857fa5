#version 450
#extension GL_GOOGLE_include_directive : require
#define GPT_WG 256
#include "gpt_common.glsl"
// The first pass of Norm over a whole tensor (SPEC.md §20.9): workgroup g
// writes the largest |x[e]| over its elements (e ≡ g·256 + lane, strided by
// the dispatch) to partial[g].
layout(local_size_x = GPT_WG) in;
layout(std430, binding = 0) readonly buffer X { int64_t x[]; };
layout(std430, binding = 1) writeonly buffer P { uint64_t partial[]; };
layout(push_constant) uniform PC { int n; } pc;

void main() {
    uint64_t m = 0UL;
    for (uint e = gl_GlobalInvocationID.x; e < uint(pc.n); e += gl_NumWorkGroups.x * GPT_WG) {
        uint64_t a = gUabs(x[e]);
        m = a > m ? a : m;
    }
    m = wgMaxU(m);
    if (gl_LocalInvocationID.x == 0u) partial[gl_WorkGroupID.x] = m;
}
