#version 450
#extension GL_GOOGLE_include_directive : require
#include "gpt_bwd.glsl"
// Attention backward (SPEC.md §20.13): dSq = Norm(dS, ·, b) (max |dS| in
// S[S_MAX0 + 1]) and its two alignments, in the scratch, laid out as P
// ([B, H, T, T]):
//   S[ds + ·]  becomes RoundShift(dSq_ij, EK − eK[bT+j])  (for dQ)
//   S[dsq + ·] gets    RoundShift(dSq_ij, EQ − eQ[bT+i])  (for dK)
// with EQ, EK in S[S_E0], S[S_E0 + 1]. dS is 0 above the diagonal, and so
// are both results.
layout(local_size_x = 256) in;
layout(std430, binding = 0) buffer Sb { int64_t S[]; };
layout(std430, binding = 1) readonly buffer Qb { int64_t eq[]; };
layout(std430, binding = 2) readonly buffer Kb { int64_t ek[]; };
layout(push_constant) uniform PC { uint batch; uint heads; uint ctx; uint ds; uint dsq; uint bits; } pc;

void main() {
    uint T = pc.ctx;
    uint n = pc.batch * pc.heads * T * T;
    int64_t m = S[S_MAX0 + 1u];
    int64_t EQ = S[S_E0], EK = S[S_E0 + 1u];
    for (uint e = gl_GlobalInvocationID.x; e < n; e += gl_NumWorkGroups.x * 256u) {
        uint j = e % T, i = (e / T) % T, b = e / (pc.heads * T * T);
        int64_t q = normQ(S[pc.ds + e], m, int64_t(pc.bits));
        S[pc.ds + e] = roundShiftE(q, EK - ek[b * T + j]);
        S[pc.dsq + e] = roundShiftE(q, EQ - eq[b * T + i]);
    }
}
