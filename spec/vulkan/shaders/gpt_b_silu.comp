#version 450
#extension GL_GOOGLE_include_directive : require
#include "gpt_bwd.glsl"
// SiLU backward (SPEC.md §20.13): σ' = RoundShift(σ·(2^15 +
// RoundShift(u·(2^15 − σ), 16)), 15) and du = dh·σ' at exponent e_h − 15.
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer Hb { int64_t dh[]; };
layout(std430, binding = 1) readonly buffer Eb { int64_t eh; };
layout(std430, binding = 2) readonly buffer Ub { int64_t u[]; };
layout(std430, binding = 3) writeonly buffer Db { int64_t du[]; };
layout(std430, binding = 4) writeonly buffer Fb { int64_t edu; };
layout(push_constant) uniform PC { uint n; } pc;

void main() {
    if (gl_GlobalInvocationID.x == 0u) edu = eh - 15;
    for (uint i = gl_GlobalInvocationID.x; i < pc.n; i += gl_NumWorkGroups.x * 256u) {
        int64_t x = u[i];
        int64_t s = sigma(x);
        int64_t ds = roundShiftE(s * (32768L + roundShiftE(x * (32768L - s), 16)), 15);
        du[i] = dh[i] * ds;
    }
}
