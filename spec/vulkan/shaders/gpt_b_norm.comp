#version 450
#extension GL_GOOGLE_include_directive : require
#include "gpt_bwd.glsl"
// Norm (SPEC.md §20.9) of a tensor x of n values to β bits into the
// scratch, S[dst + i], given its max |x| in S[slot].
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer Xb { int64_t x[]; };
layout(std430, binding = 1) buffer Sb { int64_t S[]; };
layout(push_constant) uniform PC { uint n; uint dst; uint slot; uint beta; } pc;

void main() {
    int64_t m = S[pc.slot];
    for (uint i = gl_GlobalInvocationID.x; i < pc.n; i += gl_NumWorkGroups.x * 256u) {
        S[pc.dst + i] = normQ(x[i], m, int64_t(pc.beta));
    }
}
