#version 450
#extension GL_GOOGLE_include_directive : require
#include "gpt_bwd.glsl"
// NormParts (SPEC.md §20.9) of [dQ | dK | dV] ([rows, 3D]) to β bits into
// the scratch, S[dst + r·3D + c]: every element of block k becomes
// Clamp(ShiftRound(x, e_k − E), ±(2^β − 1)) with E in S[S_EG] (the block
// exponents e_k in S[S_IN0 + k]). An all-zero block gives zeros whatever E.
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer Qb { int64_t dq[]; };
layout(std430, binding = 1) readonly buffer Kb { int64_t dk[]; };
layout(std430, binding = 2) readonly buffer Vb { int64_t dv[]; };
layout(std430, binding = 3) buffer Sb { int64_t S[]; };
layout(push_constant) uniform PC { uint rows; uint d; uint dst; uint beta; } pc;

void main() {
    int64_t e = S[S_EG];
    int64_t lim = (int64_t(1) << pc.beta) - 1;
    uint w = 3u * pc.d;
    uint n = pc.rows * w;
    for (uint i = gl_GlobalInvocationID.x; i < n; i += gl_NumWorkGroups.x * 256u) {
        uint r = i / w, c = i % w;
        uint k = c / pc.d;
        uint j = r * pc.d + c % pc.d;
        int64_t x = k == 0u ? dq[j] : (k == 1u ? dk[j] : dv[j]);
        S[pc.dst + i] = clamp64(shiftRound(x, S[S_IN0 + k] - e), -lim, lim);
    }
}
