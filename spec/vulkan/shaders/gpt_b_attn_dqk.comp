#version 450
#extension GL_GOOGLE_include_directive : require
#include "gpt_bwd.glsl"
// Attention backward (SPEC.md §20.13), the last part, an invocation per
// output element, from the aligned dSq of gpt_b_attn_dsq at S[ds ..]
// ([B, H, T, T]):
//   mode 0: dQ[bT+i][c] = Σ_{j≤i} RoundShift(dSq_ij, EK − eK[bT+j])·K[bT+j][c]
//   mode 1: dK[bT+j][c] = Σ_{i≥j} RoundShift(dSq_ij, EQ − eQ[bT+i])·Q[bT+i][c]
// with X = K (mode 0) or Q (mode 1). Both factors are below 2^b (b ≤ 12),
// so each product fits int32.
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer Sb { int64_t S[]; };
layout(std430, binding = 1) readonly buffer Xb { int64_t X[]; };
layout(std430, binding = 2) writeonly buffer Ob { int64_t o[]; };
layout(push_constant) uniform PC { uint batch; uint heads; uint ctx; uint dim; uint dh; uint ds; uint mode; } pc;

void main() {
    uint T = pc.ctx;
    uint n = pc.batch * T * pc.dim;
    for (uint e = gl_GlobalInvocationID.x; e < n; e += gl_NumWorkGroups.x * 256u) {
        uint col = e % pc.dim, ra = e / pc.dim;
        uint a = ra % T, b = ra / T, h = col / pc.dh;
        uint sbase = pc.ds + (b * pc.heads + h) * T * T;
        int64_t acc = 0;
        if (pc.mode == 0u) {
            for (uint k = 0u; k <= a; k++) acc += int64_t(int(S[sbase + a * T + k]) * int(X[(b * T + k) * pc.dim + col]));
        } else {
            for (uint k = a; k < T; k++) acc += int64_t(int(S[sbase + k * T + a]) * int(X[(b * T + k) * pc.dim + col]));
        }
        o[e] = acc;
    }
}
