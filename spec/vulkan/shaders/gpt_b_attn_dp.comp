#version 450
#extension GL_GOOGLE_include_directive : require
#include "gpt_bwd.glsl"
// Attention backward (SPEC.md §20.13), an invocation per (window, head,
// i, j):
//   dP_ij = RoundShift(Σ_c dOq[bT+i][c]·V[bT+j][c], EV − eV[bT+j]) for j ≤ i, 0 above
// into the scratch at S[ds ..] (laid out as P, [B, H, T, T]), from dOq at
// S[doq ..] and EV in S[S_E0 + 2]. Both factors are below 2^b, so each
// product fits int32.
layout(local_size_x = 256) in;
layout(std430, binding = 0) buffer Sb { int64_t S[]; };
layout(std430, binding = 1) readonly buffer Vb { int64_t V[]; };
layout(std430, binding = 2) readonly buffer Eb { int64_t ev[]; };
layout(push_constant) uniform PC { uint batch; uint heads; uint ctx; uint dim; uint dh; uint doq; uint ds; } pc;

void main() {
    uint T = pc.ctx;
    uint n = pc.batch * pc.heads * T * T;
    int64_t EV = S[S_E0 + 2u];
    for (uint e = gl_GlobalInvocationID.x; e < n; e += gl_NumWorkGroups.x * 256u) {
        uint j = e % T, i = (e / T) % T, bh = e / (T * T);
        uint h = bh % pc.heads, b = bh / pc.heads;
        int64_t dp = 0;
        if (j <= i) {
            uint oi = pc.doq + (b * T + i) * pc.dim + h * pc.dh;
            uint vj = (b * T + j) * pc.dim + h * pc.dh;
            int64_t acc = 0;
            for (uint c = 0u; c < pc.dh; c++) acc += int64_t(int(S[oi + c]) * int(V[vj + c]));
            dp = roundShiftE(acc, EV - ev[b * T + j]);
        }
        S[pc.ds + e] = dp;
    }
}
