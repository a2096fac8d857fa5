#version 450
#extension GL_GOOGLE_include_directive : require
#include "gpt_bwd.glsl"
// Attention backward (SPEC.md §20.13): dV[bT+j][c] = Σ_{i≥j} P_ij·dOq[bT+i][c]
// (P, not P'; P_ij = 0 for i < j), an invocation per element of dV, dOq in
// the scratch at S[doq ..].
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer Sb { int64_t S[]; };
layout(std430, binding = 1) readonly buffer Pb { int64_t P[]; };
layout(std430, binding = 2) writeonly buffer Vb { int64_t dv[]; };
layout(push_constant) uniform PC { uint batch; uint heads; uint ctx; uint dim; uint dh; uint doq; } pc;

void main() {
    uint T = pc.ctx;
    uint n = pc.batch * T * pc.dim;
    for (uint e = gl_GlobalInvocationID.x; e < n; e += gl_NumWorkGroups.x * 256u) {
        uint col = e % pc.dim, rj = e / pc.dim;
        uint j = rj % T, b = rj / T, h = col / pc.dh;
        uint pbase = (b * pc.heads + h) * T * T + j; // P[b][h][i][j] = P[pbase + i·T]
        int64_t acc = 0;
        for (uint i = j; i < T; i++) {
            acc += int64_t(int(P[pbase + i * T]) * int(S[pc.doq + (b * T + i) * pc.dim + col]));
        }
        dv[e] = acc;
    }
}
