#version 450
#extension GL_GOOGLE_include_directive : require
#include "gpt_bwd.glsl"
// Add (SPEC.md §20.9) of two gradients: ShiftRound(x, ex − E) +
// ShiftRound(v, ey − E), with ex, ey in S[S_IN0], S[S_IN0 + 1] and E in
// S[S_EG] (an all-zero operand adds 0 whatever E).
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer Xb { int64_t x[]; };
layout(std430, binding = 1) readonly buffer Vb { int64_t v[]; };
layout(std430, binding = 2) readonly buffer Sb { int64_t S[]; };
layout(std430, binding = 3) writeonly buffer Ob { int64_t o[]; };
layout(push_constant) uniform PC { uint n; } pc;

void main() {
    int64_t e = S[S_EG];
    int64_t kx = S[S_IN0] - e, kv = S[S_IN0 + 1u] - e;
    for (uint i = gl_GlobalInvocationID.x; i < pc.n; i += gl_NumWorkGroups.x * 256u) {
        o[i] = shiftRound(x[i], kx) + shiftRound(v[i], kv);
    }
}
