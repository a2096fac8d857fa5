#version 450
#extension GL_GOOGLE_include_directive : require
#include "gpt_bwd.glsl"
// The position embedding's gradient (SPEC.md §20.13.3):
// dpos[j][i] = Σ_b dx[bT + j][i].
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer Xb { int64_t dx[]; };
layout(std430, binding = 1) writeonly buffer Ob { int64_t dpos[]; };
layout(push_constant) uniform PC { uint batch; uint ctx; uint dim; } pc;

void main() {
    uint n = pc.ctx * pc.dim;
    for (uint e = gl_GlobalInvocationID.x; e < n; e += gl_NumWorkGroups.x * 256u) {
        int64_t acc = 0;
        for (uint b = 0u; b < pc.batch; b++) acc += dx[b * n + e];
        dpos[e] = acc;
    }
}
