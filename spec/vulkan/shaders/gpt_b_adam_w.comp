#version 450
#extension GL_GOOGLE_include_directive : require
#include "gpt_bwd.glsl"
// AdamW (SPEC.md §20.14) for one parameter, second half, from the new
// moments m', v' and the weight w before the update:
//   μ = Clamp(RoundDiv(m'·2^16, Isqrt(v') + ε), ±(2^31 − 1))
//   w' = Clamp(w − RoundShift(LR(t)·(μ + RoundShift(nλ·w, sλ)), lr_shift), ±(2^31 − 1))
// with LR(t) in S[S_IN0 + 2].
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer Wb { int64_t w[]; };
layout(std430, binding = 1) readonly buffer Mb { int64_t m2[]; };
layout(std430, binding = 2) readonly buffer Vb { int64_t v2[]; };
layout(std430, binding = 3) readonly buffer Sb { int64_t S[]; };
layout(std430, binding = 4) writeonly buffer W2b { int64_t w2[]; };
// Unsigned push constants: see gpt_b_adam_m.comp.
layout(push_constant) uniform PC { uint n; uint eps; uint nl; uint sl; uint lrShift; } pc;

void main() {
    int64_t lr = S[S_IN0 + 2u];
    int64_t nl = int64_t(pc.nl);
    for (uint i = gl_GlobalInvocationID.x; i < pc.n; i += gl_NumWorkGroups.x * 256u) {
        int64_t wi = w[i];
        int64_t den = int64_t(isqrt64(uint64_t(v2[i]))) + int64_t(pc.eps);
        int64_t mu = clamp64(roundDiv(m2[i] << 16, den), -I32MAX, I32MAX);
        w2[i] = clamp64(wi - roundShiftE(lr * (mu + roundShiftE(nl * wi, int64_t(pc.sl))), int64_t(pc.lrShift)), -I32MAX, I32MAX);
    }
}
