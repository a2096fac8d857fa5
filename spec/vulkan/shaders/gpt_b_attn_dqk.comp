#version 450
#extension GL_GOOGLE_include_directive : require
#include "gpt_bwd.glsl"
// Attention backward (SPEC.md §20.13), the last part, an invocation per
// output element, with dSq = Norm(dS, ·, b) formed on the fly from dS in
// the scratch at S[ds ..] (max |dS| in S[S_MAX0 + 1]):
//   mode 0: dQ[bT+i][c] = Σ_{j≤i} RoundShift(dSq_ij, EK − eK[bT+j])·K[bT+j][c]
//   mode 1: dK[bT+j][c] = Σ_{i≥j} RoundShift(dSq_ij, EQ − eQ[bT+i])·Q[bT+i][c]
// X and ex are K and eK (mode 0) or Q and eQ (mode 1); EK, EQ in
// S[S_E0 + 1], S[S_E0].
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer Sb { int64_t S[]; };
layout(std430, binding = 1) readonly buffer Xb { int64_t X[]; };
layout(std430, binding = 2) readonly buffer Eb { int64_t ex[]; };
layout(std430, binding = 3) writeonly buffer Ob { int64_t o[]; };
layout(push_constant) uniform PC { uint batch; uint heads; uint ctx; uint dim; uint dh; uint ds; int bits; uint mode; } pc;

void main() {
    uint T = pc.ctx;
    uint n = pc.batch * T * pc.dim;
    int64_t m = S[S_MAX0 + 1u];
    int64_t E = pc.mode == 0u ? S[S_E0 + 1u] : S[S_E0];
    for (uint e = gl_GlobalInvocationID.x; e < n; e += gl_NumWorkGroups.x * 256u) {
        uint col = e % pc.dim, ra = e / pc.dim;
        uint a = ra % T, b = ra / T, h = col / pc.dh;
        uint sbase = pc.ds + (b * pc.heads + h) * T * T;
        uint lo = pc.mode == 0u ? 0u : a, hi = pc.mode == 0u ? a + 1u : T;
        int64_t acc = 0;
        for (uint k = lo; k < hi; k++) {
            uint rk = b * T + k;
            int64_t s = normQ(S[sbase + (pc.mode == 0u ? a * T + k : k * T + a)], m, pc.bits);
            acc += roundShiftE(s, E - ex[rk]) * X[rk * pc.dim + col];
        }
        o[e] = acc;
    }
}
