#version 450
#extension GL_GOOGLE_include_directive : require
#include "gpt_common.glsl"
// The second pass of Norm(x, e0, β) over a whole tensor (SPEC.md §20.9,
// gptref's quantize): the maximum of the first pass's partials, then every
// element; q[e] for every e and exponent[0] = e0 + shift.
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer X { int64_t x[]; };
layout(std430, binding = 1) readonly buffer P { uint64_t partial[]; };
layout(std430, binding = 2) writeonly buffer Q { int64_t q[]; };
layout(std430, binding = 3) writeonly buffer E { int64_t exponent[]; };
layout(push_constant) uniform PC { int n; int parts; int bits; int e0; } pc;

void main() {
    uint64_t m = 0UL;
    for (int g = 0; g < pc.parts; g++) m = partial[g] > m ? partial[g] : m;
    int64_t s = m == 0UL ? 0 : normShiftU(m, pc.bits);
    if (gl_GlobalInvocationID.x == 0u) exponent[0] = int64_t(pc.e0) + s;
    for (uint e = gl_GlobalInvocationID.x; e < uint(pc.n); e += gl_NumWorkGroups.x * 256u) {
        q[e] = m == 0UL ? 0 : normValue(x[e], s, pc.bits);
    }
}
