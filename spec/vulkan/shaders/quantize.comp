#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// Forward weights from master weights (SPEC.md §8.3):
// wq = Clamp(RoundShift(w, master_frac - weight_frac), ±W).
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer W { int w[]; };
layout(std430, binding = 1) writeonly buffer Q { int wq[]; };
layout(push_constant) uniform PC { uint n; int qshift; int wmax; } pc;

void main() {
    uint stride = gl_NumWorkGroups.x * 256u;
    for (uint i = gl_GlobalInvocationID.x; i < pc.n; i += stride) {
        wq[i] = int(clamp64(roundShift(int64_t(w[i]), pc.qshift), -pc.wmax, pc.wmax));
    }
}
