#version 450
#extension GL_GOOGLE_include_directive : require
#include "gpt_bwd.glsl"
// AdamW (SPEC.md §20.14) for one parameter, first half: the clipped mean
// gradient h and the new moments
//   m' = RoundShift(n1·m + (2^s1 − n1)·h, s1)
//   v' = RoundShift(n2·v + (2^s2 − n2)·RoundShift(h², 16), s2)
// with the gradient's exponent in S[S_IN0] and ν in S[S_IN0 + 1].
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer Mb { int64_t m[]; };
layout(std430, binding = 1) readonly buffer Vb { int64_t v[]; };
layout(std430, binding = 2) readonly buffer Gb { int64_t g[]; };
layout(std430, binding = 3) readonly buffer Sb { int64_t S[]; };
layout(std430, binding = 4) writeonly buffer M2b { int64_t m2[]; };
layout(std430, binding = 5) writeonly buffer V2b { int64_t v2[]; };
// Every push constant is unsigned: Mesa 22.3's lavapipe miscompiles a
// comparison of a sign-extended push constant (int64_t(int)), which
// RoundShift's range checks are.
layout(push_constant) uniform PC { uint n; uint tokens; uint n1; uint s1; uint n2; uint s2; } pc;

void main() {
    int64_t e = S[S_IN0] + 30;
    int64_t nu = S[S_IN0 + 1u];
    int64_t s1 = int64_t(pc.s1), s2 = int64_t(pc.s2);
    int64_t n1 = int64_t(pc.n1), c1 = (int64_t(1) << pc.s1) - n1;
    int64_t n2 = int64_t(pc.n2), c2 = (int64_t(1) << pc.s2) - n2;
    for (uint i = gl_GlobalInvocationID.x; i < pc.n; i += gl_NumWorkGroups.x * 256u) {
        int64_t h = meanGrad(g[i], e, int64_t(pc.tokens));
        if (nu > 32768L) h = roundDiv(clamp64(h, -(int64_t(1) << 46), int64_t(1) << 46) << 15, nu);
        h = clamp64(h, -I32MAX, I32MAX);
        m2[i] = roundShiftE(n1 * m[i] + c1 * h, s1);
        v2[i] = roundShiftE(n2 * v[i] + c2 * roundShiftE(h * h, 16), s2);
    }
}
