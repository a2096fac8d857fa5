#version 450
#extension GL_GOOGLE_include_directive : require
#include "gpt_bwd.glsl"
// Attention backward (SPEC.md §20.13), first part, a workgroup per
// (window, head, row i):
//   dP_ij = RoundShift(Σ_c dOq[bT+i][c]·V[bT+j][c], EV − eV[bT+j])
//   δ_i = Σ_{j≤i} P_ij·dP_ij
//   dS_ij = RoundShift(P_ij·(dP_ij·2^b − δ_i), 16)·ι for j ≤ i, 0 for j > i
// dOq is in the scratch at S[doq ..], dS goes to S[ds ..] (laid out as
// P, [B, H, T, T]), EV in S[S_E0 + 2].
layout(local_size_x = 256) in;
layout(std430, binding = 0) buffer Sb { int64_t S[]; };
layout(std430, binding = 1) readonly buffer Pb { int64_t P[]; };
layout(std430, binding = 2) readonly buffer Vb { int64_t V[]; };
layout(std430, binding = 3) readonly buffer Eb { int64_t ev[]; };
layout(push_constant) uniform PC {
    uint batch; uint heads; uint ctx; uint dim; uint dh; uint doq; uint ds; int bits; int iota;
} pc;

shared int o[128]; // the row of dOq in the head (Dh ≤ 128)
shared int64_t red[256];

void main() {
    uint lid = gl_LocalInvocationID.x;
    int64_t EV = S[S_E0 + 2u];
    uint T = pc.ctx;
    uint rowsAll = pc.batch * pc.heads * T;
    for (uint w = gl_WorkGroupID.x; w < rowsAll; w += gl_NumWorkGroups.x) {
        uint i = w % T, bh = w / T;
        uint h = bh % pc.heads, b = bh / pc.heads;
        uint ri = b * T + i;
        uint col = h * pc.dh;
        for (uint c = lid; c < pc.dh; c += 256u) o[c] = int(S[pc.doq + ri * pc.dim + col + c]);
        barrier();
        uint prow = w * T; // P[b][h][i][·]
        int64_t part = 0;
        for (uint j = lid; j <= i; j += 256u) {
            uint rj = b * T + j;
            int64_t acc = 0;
            for (uint c = 0u; c < pc.dh; c++) acc += int64_t(o[c] * int(V[rj * pc.dim + col + c]));
            int64_t dp = roundShiftE(acc, EV - ev[rj]);
            S[pc.ds + prow + j] = dp; // dP for now; this invocation reads it back below
            part += P[prow + j] * dp;
        }
        red[lid] = part;
        barrier();
        for (uint s = 128u; s > 0u; s >>= 1) {
            if (lid < s) red[lid] += red[lid + s];
            barrier();
        }
        int64_t delta = red[0];
        for (uint j = lid; j < T; j += 256u) {
            int64_t v = 0;
            if (j <= i) {
                int64_t x = P[prow + j] * ((S[pc.ds + prow + j] << pc.bits) - delta);
                v = roundShiftE(x, 16) * int64_t(pc.iota);
            }
            S[pc.ds + prow + j] = v;
        }
        barrier(); // o and red are reused by the next row
    }
}
