#version 450
#extension GL_GOOGLE_include_directive : require
#include "gpt_bwd.glsl"
// Attention backward (SPEC.md §20.13), an invocation per (window, head,
// row i), in place over dP at S[ds ..] ([B, H, T, T], 0 above the
// diagonal):
//   δ_i = Σ_{j≤i} P_ij·dP_ij
//   dS_ij = RoundShift(P_ij·(dP_ij·2^b − δ_i), 16)·ι for j ≤ i (0 above stays 0)
layout(local_size_x = 256) in;
layout(std430, binding = 0) buffer Sb { int64_t S[]; };
layout(std430, binding = 1) readonly buffer Pb { int64_t P[]; };
layout(push_constant) uniform PC { uint rows; uint ctx; uint ds; uint bits; uint iota; } pc;

void main() {
    uint T = pc.ctx;
    int64_t iota = int64_t(pc.iota);
    for (uint w = gl_GlobalInvocationID.x; w < pc.rows; w += gl_NumWorkGroups.x * 256u) {
        uint i = w % T, row = w * T;
        int64_t delta = 0;
        for (uint j = 0u; j <= i; j++) delta += P[row + j] * S[pc.ds + row + j];
        for (uint j = 0u; j <= i; j++) {
            int64_t x = P[row + j] * ((S[pc.ds + row + j] << pc.bits) - delta);
            S[pc.ds + row + j] = roundShiftE(x, 16) * iota;
        }
    }
}
