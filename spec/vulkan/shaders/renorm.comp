#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// The input gradient renormalised to grad_bits (SPEC.md §8.5), in place:
// Clamp(RoundShift(dx, s), ±G) with s = max(0, BitLen(peak) - grad_bits).
layout(local_size_x = 256) in;
layout(std430, binding = 0) buffer D { int dx[]; };
layout(std430, binding = 1) readonly buffer P { int peaks[]; };
layout(push_constant) uniform PC { uint n; int peak; int gradBits; int gmax; } pc;

void main() {
    int s = max(0, bitLen64(int64_t(peaks[pc.peak])) - pc.gradBits);
    uint stride = gl_NumWorkGroups.x * 256u;
    for (uint i = gl_GlobalInvocationID.x; i < pc.n; i += stride) {
        dx[i] = int(clamp64(roundShift(int64_t(dx[i]), s), -pc.gmax, pc.gmax));
    }
}
